"""Where prices come from: Yahoo Finance (through yfinance), a CSV file, or the bundled sample.

``load_prices(source, ticker, start=, as_of=, now=)`` is the one entry point: ``source`` is the
``--source`` value (``yahoo``, ``sample`` or ``csv:PATH``). Every source returns a validated price
frame (``forecasting.validation``) holding nothing after ``as_of``, or raises a typed error from
``forecasting.errors``; never an empty frame. This is the only module that touches the network.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import logging
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from forecasting.errors import (
    ConfigurationError,
    DataSourceError,
    EmptyDataError,
    PriceFileError,
    RateLimitedError,
    SourceUnavailableError,
    TickerNotFoundError,
)
from forecasting.price_files import LINE_NUMBERS, canonical_column, read_price_csv
from forecasting.validation import INDEX_NAME, PRICE_COLUMNS, validate_prices

logger = logging.getLogger(__name__)

SAMPLE_FILE = "nvda_sample.csv.gz"
SAMPLE_TICKER = "NVDA"
YAHOO_TIMEOUT = 30.0
_NEW_YORK = "America/New_York"
_TICKER = re.compile(r"[A-Za-z0-9^][A-Za-z0-9.\-=^]{0,19}")
_SOURCES = "yahoo, sample or csv:PATH (e.g. csv:data/NVDA.csv)"


class PriceSource(ABC):
    """A parsed ``--source``: ``name`` goes in ``prices.source``, ``uri`` in the ingestion."""

    name: ClassVar[str]

    @property
    @abstractmethod
    def uri(self) -> str:
        """Where the rows came from, for the ingestion record."""

    def fetch(
        self,
        ticker: str,
        *,
        start: dt.date | None = None,
        as_of: dt.date | None = None,
        now: dt.datetime | None = None,
    ) -> pd.DataFrame:
        """Validated bars from ``start`` to ``as_of``; the arguments are ``load_prices``'s."""
        ticker = ticker.strip() if isinstance(ticker, str) else ticker
        if not isinstance(ticker, str) or not _TICKER.fullmatch(ticker):
            raise ConfigurationError(
                f"{ticker!r} is not a ticker symbol; give one symbol as Yahoo spells it, e.g. NVDA"
            )
        start, as_of = _day(start), _day(as_of)
        if start is not None and as_of is not None and start > as_of:
            raise ConfigurationError(f"start {start} is after the as-of date {as_of}; swap them")
        moment = pd.Timestamp.now("UTC") if now is None else pd.Timestamp(now)
        moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
        return self._fetch(ticker, start, as_of, moment)

    @abstractmethod
    def _fetch(
        self, ticker: str, start: dt.date | None, as_of: dt.date | None, now: pd.Timestamp
    ) -> pd.DataFrame: ...


def parse_source(spec: str) -> PriceSource:
    """The source a ``--source`` value names: ``yahoo``, ``sample`` or ``csv:PATH``.

    Parameters
    ----------
    spec
        The value; a relative ``PATH`` is taken from the current folder.

    Returns
    -------
    PriceSource
        ``YahooSource``, ``SampleSource`` or ``CsvSource``; nothing is read yet.

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
        return CsvSource(Path(text[4:].strip()).expanduser().resolve())
    raise ConfigurationError(f"unknown price source {spec!r}; use {_SOURCES}")


def load_prices(
    source: str,
    ticker: str = "NVDA",
    *,
    start: dt.date | None = None,
    as_of: dt.date | None = None,
    now: dt.datetime | None = None,
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

    Returns
    -------
    pandas.DataFrame
        A price frame (``forecasting.validation.PRICE_COLUMNS``), at least one row.

    Raises
    ------
    ConfigurationError, DataSourceError, PriceValidationError
        The typed errors of ``forecasting.errors``; each message says what to do.
    """
    frame = parse_source(source).fetch(ticker, start=start, as_of=as_of, now=now)
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

    def _fetch(
        self, ticker: str, start: dt.date | None, as_of: dt.date | None, now: pd.Timestamp
    ) -> pd.DataFrame:
        frame = read_price_csv(self.path, ticker=ticker)
        return _from_file(frame, ticker, self.path.name, start, as_of, now, check_last_bar=True)


@dataclass(frozen=True)
class SampleSource(PriceSource):
    """The bundled NVDA history, cleaned (``--source sample``; see forecasting/data/README.md)."""

    name: ClassVar[str] = "sample"

    @property
    def uri(self) -> str:
        return f"sample:{SAMPLE_FILE}"

    def _fetch(
        self, ticker: str, start: dt.date | None, as_of: dt.date | None, now: pd.Timestamp
    ) -> pd.DataFrame:
        if ticker.upper() != SAMPLE_TICKER:
            raise TickerNotFoundError(
                f"the bundled sample holds only {SAMPLE_TICKER}, not {ticker}; "
                f"use --source yahoo or --source csv:PATH for {ticker}"
            )
        return _from_file(_sample(), ticker, SAMPLE_FILE, start, as_of, now, check_last_bar=False)


@lru_cache(maxsize=1)
def _sample() -> pd.DataFrame:
    resource = importlib.resources.files("forecasting").joinpath("data", SAMPLE_FILE)
    if not resource.is_file():
        raise PriceFileError(
            f"the bundled sample {SAMPLE_FILE} is missing from the installed package; "
            "reinstall nvda-forecast"
        )
    with importlib.resources.as_file(resource) as path:
        return read_price_csv(path, ticker=SAMPLE_TICKER)


def _from_file(
    frame: pd.DataFrame,
    ticker: str,
    origin: str,
    start: dt.date | None,
    as_of: dt.date | None,
    now: pd.Timestamp,
    *,
    check_last_bar: bool,
) -> pd.DataFrame:
    """Cut at ``as_of``, validate (a partial last row included), then keep from ``start``."""
    lines = np.asarray(frame.attrs[LINE_NUMBERS])
    visible = np.ones(len(frame), dtype=bool)
    if as_of is not None:
        visible = np.asarray(frame.index <= pd.Timestamp(as_of))
    # Rows before start are validated too: the partial-row test needs the sessions before it.
    prices = validate_prices(
        frame[visible],
        ticker=ticker,
        origin=origin,
        lines=lines[visible],
        now=now,
        check_last_bar=check_last_bar and bool(visible[-1]),
    )
    if start is not None:
        prices = prices[prices.index >= pd.Timestamp(start)]
    return _non_empty(prices, f"{origin} has no {ticker} rows", start, as_of)


def _day(value: dt.date | None) -> dt.date | None:
    return value.date() if isinstance(value, dt.datetime) else value


def _non_empty(
    prices: pd.DataFrame, what: str, start: dt.date | None, as_of: dt.date | None
) -> pd.DataFrame:
    if prices.empty:
        window = f"from {start or 'the start'} to {as_of or 'today'}"
        raise EmptyDataError(f"{what} {window}; widen the dates (--as-of) or check the source")
    return prices


@dataclass(frozen=True)
class YahooSource(PriceSource):
    """Yahoo Finance through yfinance (``--source yahoo``); ``_download`` has the request."""

    timeout: float = YAHOO_TIMEOUT
    name: ClassVar[str] = "yahoo"

    @property
    def uri(self) -> str:
        return "yahoo"

    def _fetch(
        self, ticker: str, start: dt.date | None, as_of: dt.date | None, now: pd.Timestamp
    ) -> pd.DataFrame:
        last = as_of if as_of is not None else now.tz_convert(_NEW_YORK).date()
        # yfinance's end is exclusive.
        end = last + dt.timedelta(days=1)
        raw = _download(ticker, start=start, end=end, timeout=self.timeout)
        frame = frame_from_yfinance(raw, ticker)
        # yfinance drops the live bar Yahoo appends after end; this makes sure of it, and keeps
        # the window the same as the other sources'.
        inside = frame.index <= pd.Timestamp(last)
        if start is not None:
            inside &= frame.index >= pd.Timestamp(start)
        frame = frame[inside]
        origin = f"Yahoo Finance {ticker}"
        prices = validate_prices(frame, ticker=ticker, origin=origin, now=now)
        return _non_empty(prices, f"Yahoo Finance returned no {ticker} bars", start, last)


def frame_from_yfinance(raw: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """A price frame, unvalidated, from what yfinance 1.x returns for ``auto_adjust=False``.

    Parameters
    ----------
    raw
        ``Ticker.history``'s frame (flat columns, tz-aware exchange-time index) or
        ``yf.download``'s (``(Price, Ticker)`` MultiIndex columns, tz-naive index).
    ticker
        The ticker to take from a MultiIndex.

    Returns
    -------
    pandas.DataFrame
        Index ``date`` (the exchange's calendar date), columns ``PRICE_COLUMNS`` as float64.
    """
    frame = raw
    if isinstance(frame.columns, pd.MultiIndex):
        names = list(frame.columns.names)
        level = names.index("Ticker") if "Ticker" in names else len(names) - 1
        found = [str(t) for t in frame.columns.unique(level)]
        if ticker.upper() not in (t.upper() for t in found):
            raise TickerNotFoundError(
                f"Yahoo Finance returned {', '.join(found)} but no {ticker}; check the symbol"
            )
        wanted = next(t for t in found if t.upper() == ticker.upper())
        frame = frame.xs(wanted, axis=1, level=level)
    names = {column: canonical_column(str(column)) for column in frame.columns}
    names = {column: name for column, name in names.items() if name in PRICE_COLUMNS}
    if missing := [column for column in PRICE_COLUMNS if column not in names.values()]:
        raise SourceUnavailableError(
            f"Yahoo Finance answered for {ticker} without {', '.join(missing)} "
            f"(columns {[str(c) for c in frame.columns]}); upgrade yfinance "
            "(pip install -U yfinance) or use --source csv:PATH"
        )
    frame = frame[list(names)].rename(columns=names)[list(PRICE_COLUMNS)].astype("float64")
    frame.columns.name = None
    index = pd.DatetimeIndex(frame.index)
    # Daily bars are stamped at midnight exchange time: the wall-clock date is the session.
    index = index.tz_localize(None) if index.tz is not None else index
    return frame.set_axis(index.normalize().as_unit("ns").rename(INDEX_NAME), axis=0)


def _download(ticker: str, *, start: dt.date | None, end: dt.date, timeout: float) -> pd.DataFrame:
    """One ``Ticker.history`` call, its failures turned into the typed errors.

    ``yf.download`` is not used: it catches every failure, logs it, and returns an empty frame,
    so an unknown ticker, a rate limit and a dead network would look alike.
    """
    import yfinance as yf  # here: the 0.4 s import is paid only by the yahoo source

    # yfinance 1.x hides errors by default (logs them, returns an empty frame); this is its
    # documented switch (process-wide, and every caller in this project wants it).
    yf.config.debug.hide_exceptions = False
    span: dict[str, object] = {"start": start} if start is not None else {"period": "max"}
    try:
        return yf.Ticker(ticker).history(
            **span,
            end=end,
            interval="1d",
            auto_adjust=False,  # OHLC split-adjusted, Adj Close also dividend-adjusted
            back_adjust=False,
            actions=False,  # no Dividends / Stock Splits columns
            # repair=True rewrites rows from extra intraday downloads and may differ from one
            # run to the next (a spurious restatement); we would rather fail on bad rows.
            repair=False,
            keepna=False,
            prepost=False,
            rounding=False,
            timeout=timeout,
        )
    except Exception as error:  # yfinance raises its own, curl_cffi's or requests' errors
        raise _typed_error(error, ticker, start, end) from error


def _typed_error(
    error: Exception, ticker: str, start: dt.date | None, end: dt.date
) -> DataSourceError:
    from yfinance.exceptions import (
        YFException,
        YFPricesMissingError,
        YFRateLimitError,
        YFTickerMissingError,
    )

    detail = " ".join(str(error).split())[:200] or type(error).__name__
    status = getattr(getattr(error, "response", None), "status_code", None)
    later = "wait a few minutes and retry, or use --source sample / csv:PATH"
    if isinstance(error, YFRateLimitError) or status == 429:
        return RateLimitedError(f"Yahoo Finance is rate-limiting requests (for {ticker}); {later}")
    if isinstance(error, YFPricesMissingError) and start is not None:
        window = f"from {start} to {end - dt.timedelta(days=1)}"
        return EmptyDataError(
            f"Yahoo Finance has no {ticker} bars {window} ({detail}); nothing is new until the "
            "next session closes: run again after it"
        )
    if isinstance(error, YFTickerMissingError) or status == 404:
        return TickerNotFoundError(
            f"Yahoo Finance does not know the ticker {ticker} ({detail}); check its spelling "
            "(Yahoo's symbol, e.g. BRK-B), it may be delisted"
        )
    kind = "" if isinstance(error, YFException | OSError) else "yfinance failed, "
    return SourceUnavailableError(
        f"Yahoo Finance could not be reached for {ticker} ({kind}{type(error).__name__}: "
        f"{detail}); check the network and {later}"
    )
