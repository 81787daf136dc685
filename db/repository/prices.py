"""Daily bars and the ingestions that wrote them.

A price frame has a tz-naive ``DatetimeIndex`` named ``date`` (one row per trading day, sorted,
unique) and float columns ``open, high, low, close, adj_close, volume``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from db.models import INGESTION_STATUSES, Ingestion, Price
from db.repository.bulk import upsert_rows
from db.types import utcnow

PRICE_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")
INDEX_UNIT = "ns"


def upsert_prices(frame: pd.DataFrame, *, session: Session, ticker: str, source: str) -> int:
    """Insert new bars and overwrite changed ones; returns how many rows were new or changed.

    Bars identical to what is stored are left alone (their ``source`` and ``ingested_at``
    keep saying when the values were last written), so a rerun returns 0.
    """
    _check_price_frame(frame)
    values = frame.loc[:, list(PRICE_COLUMNS)].to_numpy(dtype="float64")
    if not np.isfinite(values).all():
        raise ValueError(f"price frame for {ticker} has NaN or infinite values; validate it first")
    now = utcnow()
    dates = frame.index.date
    rows = [
        {"ticker": ticker, "date": day, **dict(zip(PRICE_COLUMNS, bar, strict=True))}
        | {"source": source, "ingested_at": now}
        for day, bar in zip(dates, values.tolist(), strict=True)
    ]
    return upsert_rows(
        session,
        Price.__table__,
        rows,
        key=("ticker", "date"),
        update=(*PRICE_COLUMNS, "source", "ingested_at"),
        only_if_changed=PRICE_COLUMNS,
    )


def read_prices(
    *,
    session: Session,
    ticker: str,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
) -> pd.DataFrame:
    """Stored bars of ``ticker`` from ``start`` to ``end`` (both included) as a price frame."""
    statement = select(Price.date, *(getattr(Price, name) for name in PRICE_COLUMNS)).where(
        Price.ticker == ticker
    )
    if start is not None:
        statement = statement.where(Price.date >= _as_date(start))
    if end is not None:
        statement = statement.where(Price.date <= _as_date(end))
    rows = session.execute(statement.order_by(Price.date)).all()
    frame = pd.DataFrame.from_records(rows, columns=["date", *PRICE_COLUMNS])
    index = pd.DatetimeIndex(pd.to_datetime(frame.pop("date")), name="date").as_unit(INDEX_UNIT)
    frame.index = index
    return frame.astype("float64")


def latest_price_date(*, session: Session, ticker: str) -> dt.date | None:
    """The date of the newest stored bar of ``ticker``; None when there is none."""
    return session.scalar(select(func.max(Price.date)).where(Price.ticker == ticker))


def delete_prices(*, session: Session, ticker: str) -> int:
    """Remove every bar of ``ticker`` (maintenance; ingest never deletes stored bars)."""
    result = session.execute(delete(Price).where(Price.ticker == ticker))
    return result.rowcount


def record_ingestion(
    *,
    session: Session,
    ticker: str,
    source: str,
    status: str,
    started_at: dt.datetime | None = None,
    finished_at: dt.datetime | None = None,
    requested_start: dt.date | None = None,
    requested_end: dt.date | None = None,
    rows_received: int = 0,
    rows_upserted: int = 0,
    first_date: dt.date | None = None,
    last_date: dt.date | None = None,
    restated: bool = False,
    content_hash: str | None = None,
    error: str | None = None,
    adjustment: str | None = None,
    flow_run_id: str | None = None,
) -> Ingestion:
    """Add one row to ``ingestions`` describing a fetch attempt (times default to now).

    ``adjustment`` says how the ingest changed the source's numbers (splits adjusted for, a
    restatement's factors); None when it stored them as they came.
    """
    if status not in INGESTION_STATUSES:
        raise ValueError(f"ingestion status must be one of {INGESTION_STATUSES}, not {status!r}")
    now = utcnow()
    ingestion = Ingestion(
        ticker=ticker,
        source=source,
        status=status,
        started_at=started_at or now,
        finished_at=finished_at or now,
        requested_start=requested_start,
        requested_end=requested_end,
        rows_received=int(rows_received),
        rows_upserted=int(rows_upserted),
        first_date=first_date,
        last_date=last_date,
        restated=bool(restated),
        content_hash=content_hash,
        error=error,
        adjustment=adjustment,
        flow_run_id=flow_run_id,
    )
    session.add(ingestion)
    session.flush()
    return ingestion


def latest_ingestion(*, session: Session, ticker: str) -> Ingestion | None:
    """The most recent ingestion of ``ticker``, successful or not."""
    statement = (
        select(Ingestion)
        .where(Ingestion.ticker == ticker)
        .order_by(Ingestion.started_at.desc(), Ingestion.id.desc())
        .limit(1)
    )
    return session.scalars(statement).first()


def _check_price_frame(frame: pd.DataFrame) -> None:
    if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is not None:
        raise ValueError("a price frame needs a tz-naive DatetimeIndex named 'date'")
    missing = [name for name in PRICE_COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(f"price frame lacks columns {missing}; it needs {list(PRICE_COLUMNS)}")
    if frame.index.has_duplicates:
        raise ValueError("price frame has duplicate dates; one bar per trading day")


def _as_date(value: dt.date | str) -> dt.date:
    return pd.Timestamp(value).date()
