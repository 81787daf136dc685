"""The ``yahoo`` price source: Yahoo Finance through yfinance 1.x.

``YahooSource`` asks ``Ticker.history`` for unadjusted daily bars, reads its frame
(``frame_from_yfinance``) and turns each yfinance failure into a typed error of
``forecasting.errors``. This is the only module that touches the network; docs/data.md has the
request, argument by argument, and the error mapping.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd

from forecasting.errors import (
    DataSourceError,
    EmptyDataError,
    RateLimitedError,
    SourceUnavailableError,
    TickerNotFoundError,
)
from forecasting.prices.base import PriceRequest, PriceSource, require_rows
from forecasting.prices.price_files import canonical_column
from forecasting.prices.validation import INDEX_NAME, PRICE_COLUMNS, validate_prices

YAHOO_TIMEOUT = 30.0
_NEW_YORK = "America/New_York"


@dataclass(frozen=True)
class YahooSource(PriceSource):
    """Yahoo Finance through yfinance (``--source yahoo``); ``_download`` has the request."""

    timeout: float = YAHOO_TIMEOUT
    name: ClassVar[str] = "yahoo"

    @property
    def uri(self) -> str:
        return "yahoo"

    def _fetch(self, request: PriceRequest) -> pd.DataFrame:
        ticker, start, now = request.ticker, request.start, request.now
        last = request.as_of if request.as_of is not None else now.tz_convert(_NEW_YORK).date()
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
        # Yahoo serves split-adjusted bars; should a split reach them unadjusted, the check
        # refuses it like a file's (or --adjust-splits adjusts it).
        prices = validate_prices(
            frame, ticker=ticker, origin=origin, now=now, adjust_splits=request.adjust_splits
        )
        return require_rows(prices, f"Yahoo Finance returned no {ticker} bars", start, last)


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
