"""Prices: bulk upserts, idempotent reruns, round trips, ingestion records."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from db.engine import unit_of_work
from db.models import Ingestion, Price
from db.repository import (
    delete_prices,
    latest_ingestion,
    latest_price_date,
    read_prices,
    record_ingestion,
    upsert_prices,
)


def test_read_prices_round_trips_the_frame(session, make_prices) -> None:
    frame = make_prices(30)
    upsert_prices(frame, session=session, ticker="NVDA", source="sample")
    stored = read_prices(session=session, ticker="NVDA")
    pd.testing.assert_frame_equal(stored, frame)
    assert stored.index.name == "date"
    assert str(stored.index.dtype) == "datetime64[ns]"
    assert all(str(dtype) == "float64" for dtype in stored.dtypes)


def test_read_prices_of_nothing_has_the_same_shape(session) -> None:
    stored = read_prices(session=session, ticker="NONE")
    assert stored.empty
    assert list(stored.columns) == ["open", "high", "low", "close", "adj_close", "volume"]
    assert isinstance(stored.index, pd.DatetimeIndex)
    assert stored.index.name == "date"


def test_read_prices_by_date_range(session, make_prices) -> None:
    frame = make_prices(30)
    upsert_prices(frame, session=session, ticker="NVDA", source="sample")
    upsert_prices(make_prices(30, seed=1), session=session, ticker="AMD", source="sample")
    start, end = frame.index[5], frame.index[9]
    stored = read_prices(session=session, ticker="NVDA", start=start.date(), end=str(end.date()))
    pd.testing.assert_frame_equal(stored, frame.loc[start:end])


def test_upsert_twice_changes_nothing_the_second_time(session, make_prices, row_count) -> None:
    frame = make_prices(50)
    assert upsert_prices(frame, session=session, ticker="NVDA", source="sample") == 50
    written = session.scalars(select(Price.ingested_at)).first()
    assert upsert_prices(frame, session=session, ticker="NVDA", source="sample") == 0
    assert row_count(session, Price) == 50
    assert session.scalars(select(Price.ingested_at)).first() == written


def test_upsert_counts_and_applies_changed_and_new_bars(session, make_prices) -> None:
    frame = make_prices(20)
    upsert_prices(frame, session=session, ticker="NVDA", source="sample")
    newer = make_prices(22)
    newer.iloc[:20] = frame.to_numpy()
    newer.iloc[3, newer.columns.get_loc("close")] += 1.0
    assert upsert_prices(newer, session=session, ticker="NVDA", source="yahoo") == 3
    stored = read_prices(session=session, ticker="NVDA")
    pd.testing.assert_frame_equal(stored, newer)
    sources = dict(session.execute(select(Price.date, Price.source)).all())
    assert sources[newer.index[3].date()] == "yahoo"
    assert sources[newer.index[4].date()] == "sample"


def test_ten_years_go_in_one_statement(engine, make_prices, row_count) -> None:
    frame = make_prices(2_600)
    statements: list[str] = []

    def _count(connection, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", _count)
    try:
        with unit_of_work(engine) as session:
            upsert_prices(frame, session=session, ticker="NVDA", source="sample")
    finally:
        event.remove(engine, "before_cursor_execute", _count)
    assert len(statements) == 1
    assert "ON CONFLICT" in statements[0]
    with unit_of_work(engine) as session:
        assert row_count(session, Price) == 2_600


def test_bulk_upsert_beyond_the_parameter_limit(session, make_prices, row_count) -> None:
    frame = make_prices(7_000, start="1995-01-02")
    assert upsert_prices(frame, session=session, ticker="NVDA", source="sample") == 7_000
    assert row_count(session, Price) == 7_000
    assert upsert_prices(frame, session=session, ticker="NVDA", source="sample") == 0


def test_latest_price_date_and_delete(session, make_prices) -> None:
    assert latest_price_date(session=session, ticker="NVDA") is None
    frame = make_prices(10)
    upsert_prices(frame, session=session, ticker="NVDA", source="sample")
    upsert_prices(make_prices(3), session=session, ticker="AMD", source="sample")
    assert latest_price_date(session=session, ticker="NVDA") == frame.index[-1].date()
    assert delete_prices(session=session, ticker="NVDA") == 10
    assert latest_price_date(session=session, ticker="NVDA") is None
    assert len(read_prices(session=session, ticker="AMD")) == 3


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda f: f.assign(close=np.nan), "NaN"),
        (lambda f: f.drop(columns="volume"), "lacks columns"),
        (lambda f: f.reset_index(drop=True), "DatetimeIndex"),
        (lambda f: f.tz_localize("UTC"), "tz-naive"),
        (lambda f: pd.concat([f, f.iloc[:1]]), "duplicate dates"),
    ],
)
def test_bad_frames_are_refused(session, make_prices, damage, match) -> None:
    with pytest.raises(ValueError, match=match):
        upsert_prices(damage(make_prices(5)), session=session, ticker="NVDA", source="sample")


def test_the_schema_refuses_non_positive_prices(engine, make_prices) -> None:
    frame = make_prices(3).assign(low=-1.0)
    with pytest.raises(IntegrityError), unit_of_work(engine) as session:
        upsert_prices(frame, session=session, ticker="NVDA", source="sample")


def test_record_ingestion(session, row_count) -> None:
    started = dt.datetime(2024, 6, 28, 21, 0, tzinfo=dt.UTC)
    record_ingestion(session=session, ticker="NVDA", source="yahoo", status="failed", error="x")
    ingestion = record_ingestion(
        session=session,
        ticker="NVDA",
        source="csv:/data/nvda.csv",
        status="succeeded",
        started_at=started,
        requested_start=dt.date(2024, 6, 20),
        rows_received=5,
        rows_upserted=2,
        first_date=dt.date(2024, 6, 24),
        last_date=dt.date(2024, 6, 28),
        restated=True,
        content_hash="ab" * 32,
        adjustment="4:1 split on 2021-07-20 adjusted for (5,659 earlier bars)",
        flow_run_id="run-1",
    )
    assert ingestion.id is not None
    assert row_count(session, Ingestion) == 2
    session.expire_all()
    stored = session.get(Ingestion, ingestion.id)
    assert stored.started_at == started
    assert stored.started_at.tzinfo is not None
    assert stored.restated is True
    assert stored.adjustment == "4:1 split on 2021-07-20 adjusted for (5,659 earlier bars)"
    latest = latest_ingestion(session=session, ticker="NVDA")
    assert latest is not None and latest.status == "failed"


def test_record_ingestion_refuses_an_unknown_status(session) -> None:
    with pytest.raises(ValueError, match="status"):
        record_ingestion(session=session, ticker="NVDA", source="yahoo", status="ok")
