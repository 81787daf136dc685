import datetime as dt
import hashlib
import importlib.util
import logging
import os
from pathlib import Path

import pandas as pd
import pytest

from forecasting.errors import (
    ConfigurationError,
    EmptyDataError,
    PriceFileError,
    PriceValidationError,
    TickerNotFoundError,
)
from forecasting.prices.sources import (
    CsvSource,
    SampleSource,
    load_prices,
    parse_source,
    source_for_ticker,
)
from forecasting.prices.validation import PRICE_COLUMNS
from forecasting.prices.yahoo import YahooSource

UTC = dt.UTC
DATA = Path(__file__).parent / "data"
YAHOO_2001 = DATA / "nvda_yahoo_2001.csv"
YAHOO_2025 = DATA / "nvda_yahoo_2025.csv"  # ends with the partial bar of 2025-02-12
ROOT = Path(__file__).resolve().parents[2]
ORIGINAL = Path(os.environ.get("NVDA_ORIGINAL_CSV", "/work/shared/data/NVDA.csv"))
AFTER_CLOSE = dt.datetime(2025, 2, 13, 12, 0, tzinfo=UTC)


def test_parse_source_names_each_source(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yahoo, sample, csv = parse_source(" Yahoo "), parse_source("sample"), parse_source("csv:x.csv")
    assert (yahoo.name, yahoo.uri) == ("yahoo", "yahoo")
    assert (sample.name, sample.uri) == ("sample", "sample:nvda_sample.csv.gz")
    assert (csv.name, csv.uri) == ("csv", f"csv:{tmp_path / 'x.csv'}")
    assert csv == CsvSource(tmp_path / "x.csv")
    assert isinstance(yahoo, YahooSource) and isinstance(sample, SampleSource)


@pytest.mark.parametrize("spec", ["", "csv:", "yahoo:NVDA", "file.csv", "stooq"])
def test_an_unknown_source_lists_the_valid_forms(spec):
    with pytest.raises(ConfigurationError, match=r"use yahoo, sample or csv:PATH \(e\.g\. csv:"):
        parse_source(spec)


def test_the_sample_is_the_cleaned_nvda_history():
    prices = load_prices("sample", "NVDA", now=AFTER_CLOSE)
    assert len(prices) == 6555
    assert (prices.index[0], prices.index[-1]) == (
        pd.Timestamp("1999-01-22"),
        pd.Timestamp("2025-02-11"),
    )
    assert tuple(prices.columns) == PRICE_COLUMNS and (prices.dtypes == "float64").all()
    assert prices.index.name == "date" and prices.index.is_monotonic_increasing
    assert not prices.isna().any().any()
    assert pd.Timestamp("2001-09-12") not in prices.index
    # Values are the original's, digit for digit.
    assert prices.loc["2025-02-11", "close"] == 132.8000030517578
    assert prices.loc["1999-01-22", "volume"] == 2714688000.0


def test_the_sample_honours_as_of_and_start():
    prices = load_prices("sample", start=dt.date(2020, 1, 6), as_of=dt.date(2020, 3, 14))
    assert prices.index[0] == pd.Timestamp("2020-01-06")
    assert prices.index[-1] == pd.Timestamp("2020-03-13")  # as_of is a Saturday
    # A datetime as_of counts as its date.
    again = load_prices("sample", as_of=dt.datetime(2020, 3, 13, 23, 59))
    assert again.index[-1] == pd.Timestamp("2020-03-13")


def test_the_sample_refuses_other_tickers_and_empty_windows():
    with pytest.raises(
        TickerNotFoundError, match="the bundled sample holds NVDA, AVGO, QCOM, TXN, not AMD; use"
    ):
        load_prices("sample", "AMD")
    with pytest.raises(
        EmptyDataError, match=r"nvda_sample\.csv\.gz has no NVDA rows from the start to 1990-01-01"
    ):
        load_prices("sample", as_of=dt.date(1990, 1, 1))
    with pytest.raises(
        ConfigurationError, match="start 2021-01-01 is after the as-of date 2020-01-01"
    ):
        load_prices("sample", start=dt.date(2021, 1, 1), as_of=dt.date(2020, 1, 1))
    with pytest.raises(ConfigurationError, match="'NVDA AMD' is not a ticker symbol"):
        load_prices("sample", "NVDA AMD")


@pytest.mark.skipif(
    not ORIGINAL.is_file(), reason="the original NVDA export is not on this machine"
)
def test_the_sample_is_rebuilt_byte_for_byte_from_the_original():
    spec = importlib.util.spec_from_file_location(
        "make_sample", ROOT / "scripts" / "make_sample.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    built = script.build(ORIGINAL.read_bytes())
    assert built == (ROOT / "forecasting" / "data" / "nvda_sample.csv.gz").read_bytes()
    assert hashlib.sha256(ORIGINAL.read_bytes()).hexdigest() == script.ORIGINAL_SHA256


def test_a_csv_whose_last_row_is_partial_is_refused_with_the_way_out():
    with pytest.raises(PriceValidationError) as caught:
        load_prices(f"csv:{YAHOO_2025}", now=AFTER_CLOSE)
    message = str(caught.value)
    assert message.startswith(
        "nvda_yahoo_2025.csv line 26 (2025-02-12): the last row looks like a partial bar"
    )
    assert "--as-of 2025-02-11" in message
    # The way out the message gives works.
    prices = load_prices(f"csv:{YAHOO_2025}", as_of=dt.date(2025, 2, 11), now=AFTER_CLOSE)
    assert prices.index[-1] == pd.Timestamp("2025-02-11") and len(prices) == 24


def test_a_csv_read_during_the_session_drops_the_open_bar(caplog):
    during = dt.datetime(2025, 2, 12, 18, 0, tzinfo=UTC)
    with caplog.at_level(logging.WARNING, logger="forecasting.prices.validation"):
        prices = load_prices(f"csv:{YAHOO_2025}", now=during)
    assert prices.index[-1] == pd.Timestamp("2025-02-11")
    assert "line 26 (2025-02-12): the session had not closed" in caplog.text


def test_a_csv_with_the_empty_september_12_row_loads_without_it(caplog):
    with caplog.at_level(logging.WARNING, logger="forecasting.prices.validation"):
        prices = load_prices(f"csv:{YAHOO_2001}", start=dt.date(2001, 9, 10))
    assert [f"{day:%m-%d}" for day in prices.index[:3]] == ["09-10", "09-17", "09-18"]
    assert "nvda_yahoo_2001.csv line 42 (2001-09-12): every value is empty" in caplog.text


def test_a_missing_csv_is_a_price_file_error(tmp_path):
    source = parse_source(f"csv:{tmp_path / 'gone.csv'}")
    with pytest.raises(PriceFileError, match=r"gone\.csv: does not exist; check the path"):
        source.fetch("NVDA")


@pytest.mark.parametrize("ticker", ["AVGO", "QCOM", "TXN"])
def test_the_sample_bundles_three_peers_for_the_many_ticker_demo(ticker):
    after_close = dt.datetime(2026, 6, 13, 12, 0, tzinfo=UTC)
    prices = load_prices("sample", ticker.lower(), now=after_close)
    watchlist = Path("/work/shared/data/watchlist") / f"{ticker}.csv"
    assert prices.index[-1] == pd.Timestamp("2026-06-12")
    assert parse_source("sample").uri_for(ticker) == f"sample:{ticker.lower()}_sample.csv.gz"
    if watchlist.is_file():  # byte for byte the watchlist's file (forecasting/data/README.md)
        assert prices.equals(load_prices(f"csv:{watchlist}", ticker, now=after_close))


def test_a_csv_path_may_name_a_file_per_ticker(tmp_path):
    template = f"csv:{tmp_path}/{{ticker}}.csv"
    assert source_for_ticker(template, "AVGO") == f"csv:{tmp_path}/AVGO.csv"
    assert source_for_ticker("sample", "AVGO") == "sample"
    with pytest.raises(ConfigurationError, match=r"names a file per ticker; give the ticker"):
        parse_source(template)
    with pytest.raises(PriceFileError, match=r"AVGO\.csv"):
        load_prices(template, "AVGO")
