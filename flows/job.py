"""One ticker's work as one value: a day (an as-of date, or the source's newest) or a range.

Every way of running the pipeline builds a :class:`TickerJob` at its edge (the daily and backfill
flows from their parameters, a many-ticker run one per ticker, the command line through those
flows) and hands it to `flows.ticker.run_ticker`. The ``--source`` value is checked and parsed
here, once; what runs below reads the parsed source. A job is plain data: it pickles to a Dask
worker.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from forecasting.policy import Mode
from forecasting.prices.base import PriceSource
from forecasting.prices.sources import parse_source, source_for_ticker
from forecasting.tickers import normalize_ticker, resolve_tickers


@dataclass(frozen=True)
class TickerJob:
    """What one ticker's run needs: which ticker, which day or range, from where, to where."""

    ticker: str
    source: str
    """The ``--source`` value with ``{ticker}`` filled in (as the summaries show it)."""
    database_url: str
    span: Literal["day", "range"] = "day"
    as_of: dt.date | None = None
    """A day's date; None for a live run (the source's newest bar)."""
    start: dt.date | None = None
    """A range's first and last day, and whether to recompute its stored sessions."""
    end: dt.date | None = None
    redo: bool = False
    mode: Mode = "auto"
    adjust_splits: bool = False
    slot_held: bool = False
    """Whether the caller holds the ticker's slot (flows/concurrency.py); if not, the run waits
    for it."""
    prices: PriceSource = field(init=False, repr=False, compare=False)
    """``source`` parsed: a bad value fails when the job is made, before anything runs."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "prices", parse_source(self.source))

    def on(self, day: dt.date) -> TickerJob:
        """One session of a range, as its own day."""
        return TickerJob(
            self.ticker,
            self.source,
            self.database_url,
            as_of=day,
            mode=self.mode,
            adjust_splits=self.adjust_splits,
            slot_held=True,
        )


def job_for(ticker: str, source: str, database_url: str, **options) -> TickerJob:
    """The job of one ticker: its symbol normalized, ``{ticker}`` filled into the source."""
    ticker = normalize_ticker(ticker)
    return TickerJob(ticker, source_for_ticker(source, ticker), database_url, **options)


def jobs_for(tickers: Sequence[str], source: str, database_url: str, **options) -> list[TickerJob]:
    """One job per ticker, in the order given (duplicates dropped)."""
    return [job_for(ticker, source, database_url, **options) for ticker in resolve_tickers(tickers)]
