"""Step 1 of a run: fetch the gap since the last stored bar (and an overlap), check, store.

Nothing stored is deleted: a restatement replaces only the bars the source returned, and only
when ``forecasting.prices.restatement.judge_restatement`` accepts it (docs/data.md, "Restatements").
Every attempt, failed or not, is a row in ``ingestions``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import pandas as pd
from prefect import get_run_logger, task

from db.engine import get_engine, unit_of_work
from db.repository import latest_price_date, read_prices, record_ingestion, upsert_prices
from flows.job import TickerJob
from flows.retry import IO_OPTIONS
from forecasting.calendar import previous_trading_day
from forecasting.errors import (
    DataSourceError,
    PriceValidationError,
    RateLimitedError,
    SourceUnavailableError,
)
from forecasting.prices.base import PriceSource
from forecasting.prices.restatement import Resync, judge_restatement
from forecasting.prices.splits import SPLITS_APPLIED, Split

TRANSIENT_SOURCE_ERRORS = (RateLimitedError, SourceUnavailableError)
# Bars re-read before the newest stored one, to notice restated history (splits, dividends).
OVERLAP_SESSIONS = 5
# The source the daily schedule follows: its restatements are accepted whatever their factors.
LIVE_SOURCE = "yahoo"


@dataclass(frozen=True)
class Ingested:
    """What the ingest step stored."""

    rows_received: int
    rows_upserted: int
    first_date: dt.date
    last_date: dt.date
    restatement: Resync | None
    download_failed: bool = False
    """True when the download failed after its retries and the run goes on with stored bars."""
    adjustment: str | None = None
    """What the ingest changed in the source's numbers (``ingestions.adjustment``)."""


@task(name="ingest: last stored bar", **IO_OPTIONS)
def last_stored_date(database_url: str, ticker: str) -> dt.date | None:
    """Date of the newest stored bar for the ticker."""
    with unit_of_work(get_engine(database_url)) as session:
        return latest_price_date(session=session, ticker=ticker)


@task(name="ingest: download", **IO_OPTIONS, timeout_seconds=180)
def download(
    source: PriceSource,
    ticker: str,
    start: dt.date | None,
    as_of: dt.date | None,
    adjust_splits: bool = False,
) -> pd.DataFrame:
    """Fetch validated daily bars from the source, nothing after the as-of date."""
    frame = source.fetch(ticker, start=start, as_of=as_of, adjust_splits=adjust_splits)
    get_run_logger().info(
        "downloaded %d bars of %s from %s (%s to %s)",
        len(frame),
        ticker,
        source.uri_for(ticker),
        frame.index[0].date(),
        frame.index[-1].date(),
    )
    return frame


@task(name="ingest: check restatement", **IO_OPTIONS)
def check_restatement(
    database_url: str, ticker: str, source: PriceSource, fetched: pd.DataFrame
) -> Resync | None:
    """Compare fetched and stored bars on their overlap; refuse what no adjustment does."""
    with unit_of_work(get_engine(database_url)) as session:
        stored = read_prices(
            session=session,
            ticker=ticker,
            start=fetched.index[0].date(),
            end=fetched.index[-1].date(),
        )
        newest = latest_price_date(session=session, ticker=ticker)
    restatement = judge_restatement(
        stored,
        fetched,
        origin=source.uri_for(ticker),
        live=source.name == LIVE_SOURCE,
        stored_until=newest,
    )
    if restatement is not None:
        get_run_logger().warning("history of %s was restated: %s", ticker, restatement)
    return restatement


def content_hash(frame: pd.DataFrame) -> str:
    """sha256 of a frame's values and index: the same bars give the same hash."""
    return hashlib.sha256(
        pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()
    ).hexdigest()


def describe_adjustment(fetched: pd.DataFrame, restatement: Resync | None) -> str | None:
    """One line for ``ingestions.adjustment``: splits adjusted for, the restatement's factors."""
    first = fetched.index[0]
    splits: tuple[Split, ...] = fetched.attrs.get(SPLITS_APPLIED, ())
    # A split before the first returned bar changed none of the bars stored by this ingestion.
    parts = [
        f"{split.label} split on {split.date:%Y-%m-%d} adjusted for "
        f"({int((fetched.index < split.date).sum()):,} earlier bars)"
        for split in splits
        if split.date > first
    ]
    if restatement is not None:
        parts.append(f"restated: {restatement}")
    return "; ".join(parts) or None


@task(name="ingest: store", **IO_OPTIONS)
def store_prices(
    database_url: str,
    ticker: str,
    source: PriceSource,
    fetched: pd.DataFrame,
    *,
    requested_start: dt.date | None,
    requested_end: dt.date | None,
    restatement: Resync | None,
    flow_run_id: str | None,
) -> Ingested:
    """Upsert the bars and record the ingestion, in one transaction; nothing else is deleted."""
    adjustment = describe_adjustment(fetched, restatement)
    with unit_of_work(get_engine(database_url)) as session:
        upserted = upsert_prices(fetched, session=session, ticker=ticker, source=source.name)
        record_ingestion(
            session=session,
            ticker=ticker,
            source=source.uri_for(ticker),
            requested_start=requested_start,
            requested_end=requested_end,
            rows_received=len(fetched),
            rows_upserted=upserted,
            first_date=fetched.index[0].date(),
            last_date=fetched.index[-1].date(),
            restated=restatement is not None,
            content_hash=content_hash(fetched),
            status="succeeded",
            error=None,
            adjustment=adjustment,
            flow_run_id=flow_run_id,
        )
    return Ingested(
        len(fetched),
        upserted,
        fetched.index[0].date(),
        fetched.index[-1].date(),
        restatement,
        adjustment=adjustment,
    )


@task(name="ingest: record failure", **IO_OPTIONS)
def record_failed_download(
    database_url: str,
    ticker: str,
    source: PriceSource,
    *,
    requested_start: dt.date | None,
    requested_end: dt.date | None,
    error: str,
    flow_run_id: str | None,
) -> None:
    """Record a download that failed after its retries, or bars that failed a check."""
    with unit_of_work(get_engine(database_url)) as session:
        record_ingestion(
            session=session,
            ticker=ticker,
            source=source.uri_for(ticker),
            requested_start=requested_start,
            requested_end=requested_end,
            rows_received=0,
            rows_upserted=0,
            first_date=None,
            last_date=None,
            restated=False,
            content_hash=None,
            status="failed",
            error=error,
            flow_run_id=flow_run_id,
        )


def _fetch_start(last: dt.date | None, as_of: dt.date | None) -> dt.date | None:
    """The first day to fetch: the overlap's first session before the newest stored bar (up to
    the as-of date); None (everything) when nothing is stored."""
    if last is None:
        return None
    start = min(last, as_of) if as_of else last
    for _ in range(OVERLAP_SESSIONS):
        start = previous_trading_day(start)
    return start


def ingest(job: TickerJob, *, flow_run_id: str | None) -> Ingested:
    """Step 1: fetch the gap since the last stored bar (plus an overlap), check it, store it."""
    database_url, ticker, source, as_of = job.database_url, job.ticker, job.prices, job.as_of
    last = last_stored_date(database_url, ticker)
    start = _fetch_start(last, as_of)
    try:
        fetched = download(source, ticker, start, as_of, job.adjust_splits)
        restatement = check_restatement(database_url, ticker, source, fetched)
        if restatement is not None and start is not None:
            # Every bar the source restated is replaced, not only the overlap's; stored bars
            # it does not return (after as_of, before its first date) are kept as they are.
            get_run_logger().warning(
                "re-reading the whole history of %s from %s", ticker, job.source
            )
            fetched = download(source, ticker, None, as_of, job.adjust_splits)
            restatement = check_restatement(database_url, ticker, source, fetched)
    except (DataSourceError, PriceValidationError) as error:
        record_failed_download(
            database_url,
            ticker,
            source,
            requested_start=start,
            requested_end=as_of,
            error=str(error),
            flow_run_id=flow_run_id,
        )
        if last is None or not isinstance(error, TRANSIENT_SOURCE_ERRORS):
            raise
        # The source is down or rate-limited even after the retries: go on with the stored
        # bars; the checks raise the download-failed and stale-data alerts.
        get_run_logger().warning(
            "download failed (%s); using the bars stored up to %s", error, last
        )
        end = min(last, as_of) if as_of else last
        return Ingested(0, 0, end, end, None, download_failed=True)
    return store_prices(
        database_url,
        ticker,
        source,
        fetched,
        requested_start=start,
        requested_end=as_of,
        restatement=restatement,
        flow_run_id=flow_run_id,
    )
