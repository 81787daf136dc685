"""Prices in: the sources (Yahoo, CSV files, the bundled sample), reading and validating bars,
partial bars, unadjusted splits and restatements. ``forecasting.prices.sources.load_prices`` is
the entry point; only ``forecasting.prices.yahoo`` touches the network."""
