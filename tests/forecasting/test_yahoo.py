import datetime as dt
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
import yfinance as yf
import yfinance.cache
import yfinance.data
from curl_cffi.requests import exceptions as curl_errors
from pandas.errors import Pandas4Warning
from yfinance import exceptions as yf_errors

from forecasting.errors import (
    EmptyDataError,
    RateLimitedError,
    SourceUnavailableError,
    TickerNotFoundError,
)
from forecasting.prices.sources import load_prices
from forecasting.prices.validation import PRICE_COLUMNS
from forecasting.prices.yahoo import YahooSource, frame_from_yfinance

UTC = dt.UTC
DATA = Path(__file__).parent / "data"
YAHOO_2025 = DATA / "nvda_yahoo_2025.csv"  # ends with the partial bar of 2025-02-12
AFTER_CLOSE = dt.datetime(2025, 2, 13, 12, 0, tzinfo=UTC)


def history_frame(path: Path = YAHOO_2025) -> pd.DataFrame:
    """What yfinance 1.7's ``Ticker.history(auto_adjust=False, actions=False)`` returns."""
    rows = pd.read_csv(path, index_col="Date", parse_dates=True).dropna()
    index = pd.DatetimeIndex(rows.index).as_unit("s").tz_localize("America/New_York")
    rows.index = index.rename("Date")
    rows["Volume"] = rows["Volume"].astype("int64")
    return rows[["Open", "High", "Low", "Close", "Adj Close", "Volume"]]


@pytest.fixture
def yahoo(monkeypatch):
    """Replace ``yf.Ticker.history``; record each call's arguments; answer or raise."""
    calls: list[dict] = []
    answer: dict = {"frame": history_frame(), "error": None}

    def history(self, **kwargs):
        calls.append({"ticker": self.ticker, **kwargs})
        if answer["error"] is not None:
            raise answer["error"]
        return answer["frame"].copy()

    monkeypatch.setattr(yf.Ticker, "history", history)
    yield calls, answer


@pytest.fixture(autouse=True)
def yfinance_config():
    """Start each test from yfinance's default (errors hidden) and restore what it was."""
    saved = yf.config.debug.hide_exceptions
    yf.config.debug.hide_exceptions = True
    yield
    yf.config.debug.hide_exceptions = saved


def test_yahoo_is_asked_for_unadjusted_daily_bars_up_to_as_of(yahoo):
    calls, _ = yahoo
    prices = load_prices("yahoo", "NVDA", as_of=dt.date(2025, 2, 11), now=AFTER_CLOSE)

    assert calls == [
        {
            "ticker": "NVDA",
            "period": "max",
            "end": dt.date(2025, 2, 12),  # exclusive, so 2025-02-11 is included
            "interval": "1d",
            "auto_adjust": False,
            "back_adjust": False,
            "actions": False,
            "repair": False,
            "keepna": False,
            "prepost": False,
            "rounding": False,
            "timeout": 30.0,
        }
    ]
    assert yf.config.debug.hide_exceptions is False
    # The partial 2025-02-12 bar Yahoo also sent is after as_of: never returned.
    assert prices.index[-1] == pd.Timestamp("2025-02-11") and len(prices) == 24
    assert tuple(prices.columns) == PRICE_COLUMNS and prices.index.tz is None
    assert prices.loc["2025-02-11", "volume"] == 178355800.0


def test_yahoo_fetches_only_from_start(yahoo):
    calls, _ = yahoo
    prices = YahooSource().fetch("NVDA", start=dt.date(2025, 2, 5), now=AFTER_CLOSE)
    assert calls[0]["start"] == dt.date(2025, 2, 5) and "period" not in calls[0]
    assert calls[0]["end"] == dt.date(2025, 2, 14)  # today in New York, plus one
    assert prices.index[0] == pd.Timestamp("2025-02-05")


@pytest.mark.parametrize(
    ("now", "last"),
    [
        (dt.datetime(2025, 2, 12, 18, 0, tzinfo=UTC), "2025-02-11"),  # during the session
        (dt.datetime(2025, 2, 12, 22, 0, tzinfo=UTC), "2025-02-12"),  # after close and settling
    ],
)
def test_yahoo_drops_the_bar_of_a_session_not_closed_at_fetch_time(yahoo, now, last):
    calls, _ = yahoo
    prices = load_prices("yahoo", now=now)
    assert calls[0]["end"] == dt.date(2025, 2, 13)
    assert prices.index[-1] == pd.Timestamp(last)


def test_yahoo_returning_nothing_is_empty_data(yahoo):
    _, answer = yahoo
    answer["frame"] = yf.utils.empty_df()  # what history returns when errors are hidden
    with pytest.raises(
        EmptyDataError, match="Yahoo Finance returned no NVDA bars from 2025-02-12 to 2025-02-13"
    ):
        load_prices("yahoo", start=dt.date(2025, 2, 12), now=AFTER_CLOSE - dt.timedelta(hours=1))


def http_error(kind, status: int) -> Exception:
    response = requests.Response()
    response.status_code = status
    return kind(f"HTTP Error {status}", response=response)


@pytest.mark.parametrize(
    ("error", "start", "typed", "message"),
    [
        (yf_errors.YFRateLimitError(), None, RateLimitedError, "rate-limiting requests"),
        (
            yf_errors.YFTzMissingError("NVDAX"),
            None,
            TickerNotFoundError,
            "does not know the ticker",
        ),
        (
            yf_errors.YFPricesMissingError("NVDA", "(1d 1999-01-01 -> 2025-02-13)"),
            None,
            TickerNotFoundError,
            "does not know",
        ),
        (
            yf_errors.YFPricesMissingError("NVDA", "(1d 2025-02-13 -> 2025-02-13)"),
            dt.date(2025, 2, 13),
            EmptyDataError,
            "has no NVDA bars from 2025-02-13 to 2025-02-13",
        ),
        (
            yf_errors.YFDataException("*** YAHOO! FINANCE IS CURRENTLY DOWN! ***"),
            None,
            SourceUnavailableError,
            "could not be reached",
        ),
        (
            curl_errors.ConnectionError("Failed to connect to query2.finance.yahoo.com"),
            None,
            SourceUnavailableError,
            "(ConnectionError: Failed to connect",
        ),
        (
            curl_errors.Timeout("Operation timed out\nafter 30001 ms"),
            None,
            SourceUnavailableError,
            "Operation timed out after 30001 ms",
        ),
        (
            requests.exceptions.ReadTimeout("read timed out"),
            None,
            SourceUnavailableError,
            "ReadTimeout",
        ),
        (
            http_error(curl_errors.HTTPError, 404),
            None,
            TickerNotFoundError,
            "does not know the ticker",
        ),
        (http_error(requests.exceptions.HTTPError, 429), None, RateLimitedError, "rate-limiting"),
        (http_error(curl_errors.HTTPError, 502), None, SourceUnavailableError, "HTTP Error 502"),
        (KeyError("chart"), None, SourceUnavailableError, "(yfinance failed, KeyError: 'chart')"),
    ],
    ids=[
        "rate-limit",
        "no-timezone",
        "no-history",
        "no-new-bars",
        "yahoo-down",
        "connection",
        "timeout",
        "requests-timeout",
        "http-404",
        "http-429",
        "http-502",
        "parsing-bug",
    ],
)
def test_each_yfinance_failure_becomes_a_typed_error(yahoo, error, start, typed, message):
    _, answer = yahoo
    answer["error"] = error
    with pytest.raises(typed) as caught:
        load_prices("yahoo", start=start, now=AFTER_CLOSE)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.__cause__ is error


def test_yfinance_download_frames_are_read_too(monkeypatch):
    flat = history_frame()
    monkeypatch.setattr(yf.Ticker, "history", lambda self, **_: flat.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Pandas4Warning)  # yfinance's own use of inplace=True
        downloaded = yf.download(
            "NVDA",
            start="2025-01-01",
            end="2025-02-13",
            auto_adjust=False,
            progress=False,
            threads=False,
        )
    assert list(downloaded.columns.names) == ["Price", "Ticker"] and downloaded.index.tz is None
    pd.testing.assert_frame_equal(
        frame_from_yfinance(downloaded, "NVDA"), frame_from_yfinance(flat, "NVDA")
    )
    with pytest.raises(TickerNotFoundError, match="returned NVDA but no AMD"):
        frame_from_yfinance(downloaded, "AMD")
    with pytest.raises(SourceUnavailableError, match="without adj_close"):
        frame_from_yfinance(flat.drop(columns="Adj Close"), "NVDA")


class FakeResponse:
    def __init__(self, payload: dict, status: int = 200) -> None:
        self.payload, self.status_code = payload, status
        self.text, self.url = json.dumps(payload), "https://query2.finance.yahoo.com/"

    def json(self) -> dict:
        return self.payload

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise curl_errors.HTTPError(f"HTTP Error {self.status_code}", response=self)


def chart(bars: pd.DataFrame) -> dict:
    """Yahoo's v8 chart answer for daily bars (timestamps at the 09:30 New York open)."""
    opens = bars.index.tz_convert(None) + pd.Timedelta(hours=14, minutes=30)
    quote = {
        name.lower(): bars[name].tolist() for name in ["Open", "High", "Low", "Close", "Volume"]
    }
    meta = {
        "currency": "USD",
        "symbol": "NVDA",
        "instrumentType": "EQUITY",
        "exchangeTimezoneName": "America/New_York",
        "gmtoffset": -18000,
        "priceHint": 2,
        "validRanges": ["1d", "5d", "1mo", "max"],
    }
    return {
        "chart": {
            "result": [
                {
                    "meta": meta,
                    "timestamp": [int(t.timestamp()) for t in opens],
                    "indicators": {
                        "quote": [quote],
                        "adjclose": [{"adjclose": bars["Adj Close"].tolist()}],
                    },
                }
            ],
            "error": None,
        }
    }


class NoTzCache:
    def lookup(self, ticker):
        return None

    def store(self, ticker, tz):
        pass


@pytest.fixture
def yahoo_http(monkeypatch):
    """Run yfinance's own code with its HTTP calls answered here (no network, no tz cache file)."""
    answers: dict[str, FakeResponse] = {}

    def get(self, url, params=None, timeout=30):
        return answers["quote" if "quoteSummary" in url else "chart"]

    monkeypatch.setattr(yfinance.data.YfData, "get", get)
    monkeypatch.setattr(yfinance.data.YfData, "cache_get", get)
    monkeypatch.setattr(yfinance.cache, "get_tz_cache", NoTzCache)
    return answers


@pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
def test_through_yfinance_itself_the_bars_arrive_intact(yahoo_http):
    flat = history_frame()
    yahoo_http["chart"] = FakeResponse(chart(flat))
    prices = load_prices("yahoo", as_of=dt.date(2025, 2, 11), now=AFTER_CLOSE)
    assert len(prices) == 24 and prices.index[-1] == pd.Timestamp("2025-02-11")
    expected = flat.iloc[:-1].to_numpy(dtype="float64")
    np.testing.assert_array_equal(
        prices[["open", "high", "low", "close", "adj_close", "volume"]].to_numpy(), expected
    )


@pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
def test_through_yfinance_itself_an_unknown_ticker_is_not_found(yahoo_http):
    missing = {
        "chart": {
            "result": None,
            "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
        }
    }
    yahoo_http["chart"] = FakeResponse(missing, 404)
    yahoo_http["quote"] = FakeResponse({"quoteSummary": {"result": None}}, 404)
    with pytest.raises(TickerNotFoundError, match="Yahoo Finance does not know the ticker NVDAX"):
        load_prices("yahoo", "NVDAX", now=AFTER_CLOSE)
