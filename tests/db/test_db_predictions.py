"""Predictions: replacing a run's set, and the forecast_accuracy view over arrived closes."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import event, insert, select, text
from sqlalchemy.exc import IntegrityError

from db.engine import unit_of_work
from db.models import ModelVersion, Prediction
from db.repository import (
    add_model_version,
    latest_forecast,
    promote,
    read_forecast_accuracy,
    read_held_out,
    read_predictions,
    read_realized_errors,
    read_walk_forward,
    replace_predictions,
    upsert_prices,
)


@pytest.fixture
def version_id(engine) -> int:
    """A committed model version (its own unit of work: SQLite has one writer at a time)."""
    with unit_of_work(engine) as session:
        return _model_version(session)


def _model_version(session) -> int:
    version = add_model_version(
        session=session,
        ticker="NVDA",
        as_of_date=dt.date(2024, 1, 2),
        kind="retrain",
        config_hash="c0ffee",
        hyperparameters={},
        feature_config={},
        train_start=dt.date(2020, 1, 2),
        train_end=dt.date(2024, 1, 2),
    )
    return version.id


def _forecast(target: dt.date, base: float, predicted: float, width: float = 2.0) -> dict:
    return {
        "target_date": target,
        "base_close": base,
        "predicted_close": predicted,
        "lower_80": predicted - width,
        "upper_80": predicted + width,
        "lower_95": predicted - 2 * width,
        "upper_95": predicted + 2 * width,
    }


def _store(session, version_id, as_of, rows, kind="forecast", run="run-1") -> int:
    return replace_predictions(
        session=session,
        ticker="NVDA",
        as_of_date=as_of,
        model_version_id=version_id,
        kind=kind,
        rows=rows,
        flow_run_id=run,
    )


def test_replacing_twice_keeps_one_set(session, version_id, bday, row_count) -> None:
    test_rows = pd.DataFrame([_forecast(bday(n), 100.0, 101.0) for n in range(1, 6)]).set_index(
        "target_date"
    )
    assert _store(session, version_id, bday(5), test_rows, kind="test") == 5
    assert _store(session, version_id, bday(5), test_rows, kind="test", run="run-2") == 5
    assert row_count(session, Prediction) == 5
    fewer = test_rows.iloc[:3].reset_index()
    assert _store(session, version_id, bday(5), fewer, kind="test") == 3
    assert row_count(session, Prediction) == 3
    _store(session, version_id, bday(5), [_forecast(bday(6), 100.0, 102.0)])
    assert row_count(session, Prediction) == 4
    stored = read_predictions(session=session, ticker="NVDA", kind="test")
    assert list(stored["target_date"].dt.date) == [bday(1), bday(2), bday(3)]
    assert (stored["horizon"] == 1).all()


def test_every_retrain_keeps_its_test_window_read_by_version_with_each_origin(
    session, version_id, make_prices, bday
) -> None:
    upsert_prices(make_prices(6), session=session, ticker="NVDA", source="sample")
    window = [_forecast(bday(n), 100.0, 101.0) for n in range(1, 4)]
    _store(session, version_id, bday(3), window, kind="test")
    newer = _model_version(session)
    _store(session, newer, bday(5), [_forecast(bday(n), 100.0, 101.0) for n in (4, 5)], "test")

    older = read_held_out(
        session=session, ticker="NVDA", through=bday(5), model_version_id=version_id
    )
    newest = read_held_out(session=session, ticker="NVDA", through=bday(5))
    # A retrain's window stays for reruns of its days; each row is dated by its own origin,
    # the session before its target, not by the retrain's day that stored it.
    assert list(older["target_date"].dt.date) == [bday(1), bday(2), bday(3)]
    assert list(older["as_of_date"].dt.date) == [bday(0), bday(1), bday(2)]
    assert list(newest["as_of_date"].dt.date) == [bday(3), bday(4)]
    assert set(newest["model_version_id"]) == {newer}


def test_the_live_record_leaves_out_what_models_never_promoted_forecast(
    session, make_prices, bday
) -> None:
    upsert_prices(make_prices(5), session=session, ticker="NVDA", source="sample")
    live, replayed = _model_version(session), _model_version(session)
    promote(session=session, version=session.get(ModelVersion, live))
    for day, model in ((0, live), (1, replayed), (2, live)):
        rows = [_forecast(bday(day + 1), 100.0, 101.0)]
        _store(session, model, bday(day), rows, kind="contender")
        _store(session, model, bday(day), rows)

    everything = read_walk_forward(session=session, ticker="NVDA", method="lstm", through=bday(4))
    record = read_walk_forward(
        session=session, ticker="NVDA", method="lstm", through=bday(4), live_only=True
    )
    served = read_realized_errors(session=session, ticker="NVDA", through=bday(4), live_only=True)
    assert len(everything) == 3
    assert list(record["as_of_date"].dt.date) == [bday(0), bday(2)]
    assert list(served["as_of_date"].dt.date) == [bday(0), bday(2)]


def test_repeated_target_dates_are_refused(session, version_id, bday) -> None:
    rows = [_forecast(bday(1), 100.0, 101.0)] * 2
    with pytest.raises(ValueError, match="repeat a target date"):
        _store(session, version_id, bday(0), rows)


def test_missing_required_values_are_refused(session, version_id, bday) -> None:
    with pytest.raises(ValueError, match="lacks"):
        _store(session, version_id, bday(0), [{"target_date": bday(1), "base_close": 1.0}])


def test_the_schema_refuses_duplicate_predictions(engine, version_id, bday) -> None:
    row = {
        "ticker": "NVDA",
        "model_version_id": version_id,
        "as_of_date": bday(0),
        "target_date": bday(1),
        "horizon": 1,
        "kind": "forecast",
        "base_close": 1.0,
        "predicted_close": 1.0,
    }
    with pytest.raises(IntegrityError), unit_of_work(engine) as session:
        session.execute(insert(Prediction), [row, row])


def test_view_fills_arrived_days_and_leaves_the_future_null(
    session, version_id, make_prices, bday
) -> None:
    prices = make_prices(3).assign(close=[100.0, 102.0, 103.0])  # bday(0..2)
    upsert_prices(prices, session=session, ticker="NVDA", source="sample")
    # Up and right, inside 80%; down but wrong, outside 80% yet inside 95%; not arrived yet.
    _store(session, version_id, bday(0), [_forecast(bday(1), 100.0, 102.5, width=1.0)])
    _store(session, version_id, bday(1), [_forecast(bday(2), 102.0, 101.0, width=1.5)])
    _store(session, version_id, bday(2), [_forecast(bday(3), 103.0, 104.0)])

    frame = read_forecast_accuracy(session=session, ticker="NVDA")
    assert list(frame["target_date"].dt.date) == [bday(1), bday(2), bday(3)]
    first, second, future = (frame.iloc[index] for index in range(3))
    assert first["actual_close"] == 102.0
    assert first["error"] == pytest.approx(0.5)
    assert first["abs_pct_error"] == pytest.approx(100 * 0.5 / 102.0)
    assert first["naive_error"] == pytest.approx(-2.0)
    assert first["direction_hit"] and first["inside_80"] and first["inside_95"]
    assert second["error"] == pytest.approx(-2.0)
    assert not second["direction_hit"]
    assert not second["inside_80"] and second["inside_95"]
    assert pd.isna(future["actual_close"]) and pd.isna(future["error"])
    assert pd.isna(future["abs_pct_error"]) and pd.isna(future["naive_error"])
    assert pd.isna(future["direction_hit"]) and pd.isna(future["inside_80"])
    assert future["predicted_close"] == 104.0
    assert str(frame["inside_80"].dtype) == "boolean"
    assert str(frame["created_at"].dtype).startswith("datetime64[ns, UTC")


def test_view_flags_are_integers_on_both_dialects(session, version_id, make_prices, bday) -> None:
    prices = make_prices(2)
    upsert_prices(prices, session=session, ticker="NVDA", source="sample")
    close = prices["close"].tolist()
    _store(session, version_id, bday(0), [_forecast(bday(1), close[0], close[1])])
    row = session.execute(
        text("SELECT direction_hit, inside_80, inside_95 FROM forecast_accuracy")
    ).one()
    assert tuple(row) == (1, 1, 1)
    assert all(type(value) is int for value in row)


def test_test_predictions_stay_out_of_the_view(session, version_id, bday) -> None:
    _store(session, version_id, bday(3), [_forecast(bday(2), 1.0, 1.0)], kind="test")
    assert read_forecast_accuracy(session=session, ticker="NVDA").empty


def test_limit_keeps_the_newest_and_realized_only_has_arrived(
    session, version_id, make_prices, bday
) -> None:
    prices = make_prices(5)
    upsert_prices(prices, session=session, ticker="NVDA", source="sample")
    for n in range(5):
        _store(session, version_id, bday(n), [_forecast(bday(n + 1), 100.0, 100.0)])
    newest = read_forecast_accuracy(session=session, ticker="NVDA", limit=2)
    assert list(newest["as_of_date"].dt.date) == [bday(3), bday(4)]
    since = read_forecast_accuracy(session=session, ticker="NVDA", since=bday(3))
    assert len(since) == 2
    realized = read_realized_errors(session=session, ticker="NVDA")
    assert list(realized["target_date"].dt.date) == [bday(n) for n in range(1, 5)]
    assert realized["actual_close"].notna().all()


def test_latest_forecast(session, version_id, bday) -> None:
    assert latest_forecast(session=session, ticker="NVDA") is None
    for n in range(3):
        _store(session, version_id, bday(n), [_forecast(bday(n + 1), 1.0, 2.0 + n)])
    _store(session, version_id, bday(9), [_forecast(bday(8), 1.0, 1.0)], kind="test")
    latest = latest_forecast(session=session, ticker="NVDA")
    assert latest is not None
    assert (latest.as_of_date, latest.predicted_close) == (bday(2), 4.0)
    assert session.scalar(select(Prediction.kind).where(Prediction.as_of_date == bday(9)))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_held_out_read_seeks_the_retrain_s_rows_not_the_price_history(engine) -> None:
    # SQLite plans without statistics; with (ticker, kind, as_of_date) alone it walked every
    # price of the ticker and scanned the test rows for each (0.32 s a run after a year's
    # backfill). Migration 0005 puts target_date in the index so the rows are sought.
    statements: list[tuple[str, tuple]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with unit_of_work(engine) as session:
            read_held_out(session=session, ticker="NVDA", through=dt.date(2025, 2, 11))
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = next((s, p) for s, p in statements if "JOIN prices" in s)
    with engine.connect() as connection:
        plan = [
            row[-1]
            for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        ]
    searches = [step for step in plan if step.startswith("SEARCH")]
    assert searches[0].startswith("SEARCH predictions USING"), plan
    assert "ix_predictions_ticker_kind_as_of_date_target_date" in searches[0], plan
    assert "SEARCH prices USING INDEX" in searches[-1] and "date=?" in searches[-1], plan
