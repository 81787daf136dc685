"""What every price source is: a ``PriceSource`` fetches validated bars of one ticker.

Kept apart from ``forecasting.prices.sources`` (which parses ``--source`` and holds the file
sources) so that ``forecasting.prices.yahoo`` and ``sources`` import it, not each other.
"""

from __future__ import annotations

import datetime as dt
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import pandas as pd

from forecasting.errors import ConfigurationError, EmptyDataError

_TICKER = re.compile(r"[A-Za-z0-9^][A-Za-z0-9.\-=^]{0,19}")


@dataclass(frozen=True)
class PriceRequest:
    """``fetch``'s arguments once checked: what every source's ``_fetch`` reads."""

    ticker: str
    start: dt.date | None
    as_of: dt.date | None
    now: pd.Timestamp  # the fetch time, in UTC
    adjust_splits: bool


class PriceSource(ABC):
    """A parsed ``--source``: ``name`` goes in ``prices.source``, ``uri`` in the ingestion."""

    name: ClassVar[str]

    @property
    @abstractmethod
    def uri(self) -> str:
        """Where the rows came from, for the ingestion record."""

    def uri_for(self, ticker: str) -> str:
        """Where ``ticker``'s rows came from (the bundled sample keeps a file per ticker)."""
        return self.uri

    def fetch(
        self,
        ticker: str,
        *,
        start: dt.date | None = None,
        as_of: dt.date | None = None,
        now: dt.datetime | None = None,
        adjust_splits: bool = False,
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
        return self._fetch(PriceRequest(ticker, start, as_of, moment, adjust_splits))

    @abstractmethod
    def _fetch(self, request: PriceRequest) -> pd.DataFrame: ...


def _day(value: dt.date | None) -> dt.date | None:
    return value.date() if isinstance(value, dt.datetime) else value


def require_rows(
    prices: pd.DataFrame, what: str, start: dt.date | None, as_of: dt.date | None
) -> pd.DataFrame:
    """``prices`` if it has a row, else an ``EmptyDataError`` naming ``what`` and the window."""
    if prices.empty:
        window = f"from {start or 'the start'} to {as_of or 'today'}"
        raise EmptyDataError(f"{what} {window}; widen the dates (--as-of) or check the source")
    return prices
