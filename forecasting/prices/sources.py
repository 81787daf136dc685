"""Where prices come from: Yahoo Finance (``forecasting.prices.yahoo``), a CSV file, or the
bundled sample.

``load_prices(source, ticker, start=, as_of=, now=, adjust_splits=)`` is the one entry point:
``source`` is the ``--source`` value (``yahoo``, ``sample`` or ``csv:PATH``). Every source returns
a validated price frame (``forecasting.prices.validation``) holding nothing after ``as_of``, or
raises a typed error from ``forecasting.errors``; never an empty frame. Only
``forecasting.prices.yahoo`` touches the network.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from forecasting.errors import (
    ConfigurationError,
    PriceFileError,
    TickerNotFoundError,
)
from forecasting.prices.base import PriceRequest, PriceSource, require_rows
from forecasting.prices.price_files import LINE_NUMBERS, SPLITS, read_price_csv
from forecasting.prices.validation import validate_prices
from forecasting.prices.yahoo import YahooSource

logger = logging.getLogger(__name__)

SAMPLE_FILE = "nvda_sample.csv.gz"
SAMPLE_TICKER = "NVDA"
# The bundled sample: NVDA, and three semiconductor peers for the many-ticker demo
# (forecasting/data/README.md says where each file comes from).
SAMPLE_FILES = {
    "NVDA": SAMPLE_FILE,
    "AVGO": "avgo_sample.csv.gz",
    "QCOM": "qcom_sample.csv.gz",
    "TXN": "txn_sample.csv.gz",
}
SAMPLE_TICKERS = tuple(SAMPLE_FILES)
TICKER_FIELD = "{ticker}"
_SOURCES = "yahoo, sample or csv:PATH (e.g. csv:data/NVDA.csv or csv:data/{ticker}.csv)"


def source_for_ticker(spec: str, ticker: str) -> str:
    """``spec`` with ``{ticker}`` in a ``csv:`` path replaced by the ticker (as given).

    ``csv:../shared/data/watchlist/{ticker}.csv`` names one file per ticker of a many-ticker
    run; every other source is returned unchanged.
    """
    return spec.replace(TICKER_FIELD, ticker) if spec.strip()[:4].lower() == "csv:" else spec


def parse_source(spec: str) -> PriceSource:
    """The source a ``--source`` value names: ``yahoo``, ``sample`` or ``csv:PATH``.

    Parameters
    ----------
    spec
        The value; a relative ``PATH`` is taken from the current folder.

    Returns
    -------
    PriceSource
        ``forecasting.prices.yahoo.YahooSource``, ``SampleSource`` or ``CsvSource``; nothing is
        read yet.

    Raises
    ------
    ConfigurationError
        For anything else, listing the valid forms.
    """
    text = spec.strip()
    if text.lower() == "yahoo":
        return YahooSource()
    if text.lower() == "sample":
        return SampleSource()
    if text[:4].lower() == "csv:" and text[4:].strip():
        if TICKER_FIELD in text:
            raise ConfigurationError(
                f"{spec!r} names a file per ticker; give the ticker (--ticker or --tickers) so "
                f"that {TICKER_FIELD} can be filled in"
            )
        return CsvSource(Path(text[4:].strip()).expanduser().resolve())
    raise ConfigurationError(f"unknown price source {spec!r}; use {_SOURCES}")


def load_prices(
    source: str,
    ticker: str = "NVDA",
    *,
    start: dt.date | None = None,
    as_of: dt.date | None = None,
    now: dt.datetime | None = None,
    adjust_splits: bool = False,
) -> pd.DataFrame:
    """Validated daily bars of ``ticker`` from ``source``, nothing after ``as_of``.

    Parameters
    ----------
    source
        ``yahoo``, ``sample`` or ``csv:PATH``.
    ticker
        The ticker, as Yahoo spells it.
    start
        First date wanted; Yahoo fetches only from there, the other sources filter.
    as_of
        Behave as if today were this date: later rows are never returned (backfills, replays).
    now
        The fetch time (naive means UTC), default the clock: the bar of a session not closed
        by then is dropped.
    adjust_splits
        Divide the prices before an unadjusted split by its ratio (and multiply the volume)
        instead of refusing the bars; ``attrs[forecasting.prices.splits.SPLITS_APPLIED]`` of the
        result then lists the splits (docs/data.md, "Unadjusted splits").

    Returns
    -------
    pandas.DataFrame
        A price frame (``forecasting.prices.validation.PRICE_COLUMNS``), at least one row.

    Raises
    ------
    ConfigurationError, DataSourceError, PriceValidationError
        The typed errors of ``forecasting.errors``; each message says what to do.
    """
    frame = parse_source(source_for_ticker(source, ticker)).fetch(
        ticker, start=start, as_of=as_of, now=now, adjust_splits=adjust_splits
    )
    logger.info(
        "%d bars of %s from %s (%s to %s)",
        len(frame),
        ticker,
        source,
        f"{frame.index[0]:%Y-%m-%d}",
        f"{frame.index[-1]:%Y-%m-%d}",
    )
    return frame


@dataclass(frozen=True)
class CsvSource(PriceSource):
    """A CSV file of one ticker's daily bars (``--source csv:PATH``)."""

    path: Path
    name: ClassVar[str] = "csv"

    @property
    def uri(self) -> str:
        return f"csv:{self.path}"

    def _fetch(self, request: PriceRequest) -> pd.DataFrame:
        frame = read_price_csv(self.path, ticker=request.ticker)
        return _from_file(frame, self.path.name, request, check_last_bar=True)


@dataclass(frozen=True)
class SampleSource(PriceSource):
    """The bundled histories (``--source sample``; see forecasting/data/README.md)."""

    name: ClassVar[str] = "sample"

    @property
    def uri(self) -> str:
        return f"sample:{SAMPLE_FILE}"

    def uri_for(self, ticker: str) -> str:
        return f"sample:{SAMPLE_FILES.get(ticker.upper(), SAMPLE_FILE)}"

    def _fetch(self, request: PriceRequest) -> pd.DataFrame:
        ticker = request.ticker
        file = SAMPLE_FILES.get(ticker.upper())
        if file is None:
            raise TickerNotFoundError(
                f"the bundled sample holds {', '.join(SAMPLE_TICKERS)}, not {ticker}; "
                f"use --source yahoo or --source csv:PATH for {ticker}"
            )
        return _from_file(_sample(ticker.upper()), file, request, check_last_bar=False)


@lru_cache(maxsize=len(SAMPLE_FILES))
def _sample(ticker: str = SAMPLE_TICKER) -> pd.DataFrame:
    file = SAMPLE_FILES[ticker]
    resource = importlib.resources.files("forecasting").joinpath("data", file)
    if not resource.is_file():
        raise PriceFileError(
            f"the bundled sample {file} is missing from the installed package; "
            "reinstall nvda-forecast"
        )
    with importlib.resources.as_file(resource) as path:
        return read_price_csv(path, ticker=ticker)


def _from_file(
    frame: pd.DataFrame, origin: str, request: PriceRequest, *, check_last_bar: bool
) -> pd.DataFrame:
    """Cut at ``as_of``, validate (a partial last row included), then keep from ``start``."""
    ticker, start, as_of = request.ticker, request.start, request.as_of
    lines = np.asarray(frame.attrs[LINE_NUMBERS])
    splits = frame.attrs.get(SPLITS)
    visible = np.ones(len(frame), dtype=bool)
    if as_of is not None:
        visible = np.asarray(frame.index <= pd.Timestamp(as_of))
    # Rows before start are validated too: the partial-row test needs the sessions before it.
    prices = validate_prices(
        frame[visible],
        ticker=ticker,
        origin=origin,
        lines=lines[visible],
        now=request.now,
        check_last_bar=check_last_bar and bool(visible[-1]),
        splits=None if splits is None else np.asarray(splits)[visible],
        adjust_splits=request.adjust_splits,
    )
    if start is not None:
        prices = prices[prices.index >= pd.Timestamp(start)]
    return require_rows(prices, f"{origin} has no {ticker} rows", start, as_of)
