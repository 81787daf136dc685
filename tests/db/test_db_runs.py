"""Runs: one per ticker and day, every row of the run points at it, a rerun clears and rewrites."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from db.engine import unit_of_work
from db.models import DriftReport, Evaluation, ModelVersion, Prediction, Run
from db.repository import (
    add_model_version,
    clear_run,
    day_forecaster,
    get_run,
    list_runs,
    mark_run_failed,
    promote,
    record_drift_metrics,
    record_evaluation,
    reject,
    replace_predictions,
    start_run,
)

DAY = dt.date(2024, 6, 28)
NEXT = dt.date(2024, 7, 1)
T0 = dt.datetime(2024, 6, 28, 21, 0, tzinfo=dt.UTC)


def _start(session, day=DAY, **changes) -> Run:
    arguments = {
        "session": session,
        "ticker": "NVDA",
        "as_of_date": day,
        "started_at": T0,
        "flow_run_id": "flow-1",
        "code_version": "0.3.0",
        "data_hash": "a" * 64,
    }
    return start_run(**(arguments | changes))


def _version(session, run: Run, kind="retrain", parent_id=None, uri=None) -> ModelVersion:
    return add_model_version(
        session=session,
        ticker=run.ticker,
        as_of_date=run.as_of_date,
        kind=kind,
        parent_id=parent_id,
        config_hash="c0ffee",
        hyperparameters={"units": 50},
        feature_config={"sequence_length": 10},
        train_start=dt.date(2020, 1, 2),
        train_end=run.as_of_date,
        artifact_uri=uri or f"/models/NVDA/{run.as_of_date}-{kind}-{run.id}.keras",
        run_id=run.id,
    )


def _write_day(session, run: Run, version: ModelVersion) -> None:
    """What a run writes besides its model version."""
    record_evaluation(
        session=session,
        model_version_id=version.id,
        as_of_date=run.as_of_date,
        metrics={"test_loss": 0.5},
        run_id=run.id,
    )
    replace_predictions(
        session=session,
        ticker=run.ticker,
        as_of_date=run.as_of_date,
        model_version_id=version.id,
        kind="forecast",
        rows=[
            {
                "target_date": run.as_of_date + dt.timedelta(days=3),
                "base_close": 1.0,
                "predicted_close": 1.1,
            }
        ],
        run_id=run.id,
    )
    record_drift_metrics(
        session=session,
        ticker=run.ticker,
        as_of_date=run.as_of_date,
        rows=[{"metric": "psi", "kind": "data_drift", "value": 0.1, "breached": False}],
        run_id=run.id,
    )


def _count(session, model, run: Run) -> int:
    return session.scalar(select(func.count()).select_from(model).where(model.run_id == run.id))


def test_start_run_keeps_one_run_a_day_and_stamps_the_latest_attempt(session) -> None:
    first = _start(session)
    assert first.status == "succeeded" and first.started_at == T0
    assert first.finished_at >= T0
    again = _start(session, flow_run_id="flow-2", data_hash="b" * 64)
    assert again.id == first.id
    assert (again.flow_run_id, again.data_hash) == ("flow-2", "b" * 64)
    _start(session, day=NEXT)
    assert [run.as_of_date for run in list_runs(session=session, ticker="NVDA")] == [DAY, NEXT]


def test_rows_written_outside_a_run_get_the_days_run(session) -> None:
    replace_predictions(
        session=session,
        ticker="AMD",
        as_of_date=DAY,
        model_version_id=None,
        kind="contender",
        method="naive",
        rows=[{"target_date": NEXT, "base_close": 1.0, "predicted_close": 1.0}],
    )
    run = get_run(session=session, ticker="AMD", as_of_date=DAY)
    assert run is not None and run.flow_run_id is None
    assert _count(session, Prediction, run) == 1


def test_clear_run_removes_what_the_earlier_attempt_wrote(session) -> None:
    run = _start(session)
    version = _version(session, run)
    reject(session=session, version=version)
    _write_day(session, run, version)
    other = _start(session, day=NEXT)
    _write_day(session, other, _version(session, other))

    removed = clear_run(session=session, run_id=run.id)

    assert removed == [version.artifact_uri]
    for model in (ModelVersion, Evaluation, Prediction, DriftReport):
        assert _count(session, model, run) == 0, model
        assert _count(session, model, other) == 1, model


def test_clear_run_keeps_the_versions_later_history_rests_on(session) -> None:
    run = _start(session)
    champion = _version(session, run)
    promote(session=session, version=champion)
    parent = _version(session, run, kind="finetune")
    forecaster = _version(session, run, kind="finetune", uri="/models/forecaster.keras")
    spare = _version(session, run, kind="finetune", uri="/models/spare.keras")
    for version in (parent, forecaster, spare):
        reject(session=session, version=version)
    # The next day fine-tunes `parent` and forecasts with `forecaster`.
    later = _start(session, day=NEXT)
    _version(session, later, kind="finetune", parent_id=parent.id)
    _write_day(session, later, forecaster)

    removed = clear_run(session=session, run_id=run.id)

    assert removed == ["/models/spare.keras"]
    kept = session.scalars(select(ModelVersion.id).where(ModelVersion.run_id == run.id)).all()
    assert sorted(kept) == sorted([champion.id, parent.id, forecaster.id])


def test_the_day_s_forecaster_is_found_and_a_rerun_that_reuses_it_keeps_it(session) -> None:
    run = _start(session)
    replayed = _version(session, run, uri="/models/replayed.keras")  # a replay's own model
    replace_predictions(
        session=session,
        ticker="NVDA",
        as_of_date=DAY,
        model_version_id=replayed.id,
        kind="contender",
        method="lstm",
        rows=[{"target_date": NEXT, "base_close": 1.0, "predicted_close": 1.1}],
        run_id=run.id,
    )
    assert day_forecaster(session=session, ticker="NVDA", as_of_date=DAY).id == replayed.id
    assert day_forecaster(session=session, ticker="NVDA", as_of_date=NEXT) is None

    removed = clear_run(session=session, run_id=run.id, keep=[replayed.id])

    assert removed == []
    assert session.get(ModelVersion, replayed.id) is not None
    assert clear_run(session=session, run_id=run.id) == ["/models/replayed.keras"]


def test_a_rerun_stores_its_rejected_candidate_beside_the_champion(session) -> None:
    run = _start(session)
    champion = _version(session, run)
    promote(session=session, version=champion)
    clear_run(session=session, run_id=run.id)
    rerun = _version(session, _start(session, flow_run_id="flow-2"))
    reject(session=session, version=rerun)
    statuses = session.execute(
        select(ModelVersion.id, ModelVersion.status).where(ModelVersion.run_id == run.id)
    ).all()
    assert sorted(statuses) == sorted([(champion.id, "champion"), (rerun.id, "rejected")])


def test_a_failure_never_overwrites_a_day_that_succeeded(session) -> None:
    failed = mark_run_failed(
        session=session, ticker="NVDA", as_of_date=NEXT, error="download failed", flow_run_id="f1"
    )
    assert (failed.status, failed.error) == ("failed", "download failed")
    succeeded = _start(session, day=NEXT, flow_run_id="f2")
    assert (succeeded.id, succeeded.status, succeeded.error) == (failed.id, "succeeded", None)
    again = mark_run_failed(session=session, ticker="NVDA", as_of_date=NEXT, error="boom")
    assert (again.status, again.flow_run_id) == ("succeeded", "f2")


@pytest.mark.parametrize("model", [Evaluation, Prediction, DriftReport, ModelVersion])
def test_the_schema_refuses_a_row_without_its_run(engine, model) -> None:
    with unit_of_work(engine) as session:
        run = _start(session)
        _write_day(session, run, _version(session, run))
    with pytest.raises(IntegrityError), unit_of_work(engine) as session:
        session.execute(model.__table__.update().values(run_id=None))


def test_the_schema_keeps_one_run_a_day(engine) -> None:
    with unit_of_work(engine) as session:
        _start(session)
    with pytest.raises(IntegrityError), unit_of_work(engine) as session:
        session.add(Run(ticker="NVDA", as_of_date=DAY, status="succeeded", started_at=T0))
        session.flush()
