"""Runs: one row per ticker and as-of date, which every row a run writes points to.

A rerun of a day reuses the day's run and replaces its rows in the caller's transaction:
:func:`start_run` stamps the run, :func:`clear_run` deletes what its earlier attempt wrote, and
the writers (``add_model_version``, ``record_evaluation``, ``replace_predictions``,
``record_drift_metrics``) write the new rows with the run's id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.orm import Session, aliased

from db.models import DriftReport, Evaluation, ModelVersion, Prediction, Run
from db.repository.bulk import dialect_insert
from db.types import utcnow


@dataclass(frozen=True)
class RunKey:
    """What every row a run writes is stamped with: the ticker's day in ``runs``, the flow run
    that wrote it, and the run's id once its row exists (:func:`start_run`)."""

    ticker: str
    as_of: dt.date
    flow_run_id: str | None
    run_id: int | None = None

    def stamp(self) -> dict:
        """The keyword arguments every writer of a run's rows takes: the day, the flow run,
        the run."""
        return {"as_of_date": self.as_of, "flow_run_id": self.flow_run_id, "run_id": self.run_id}


def start_run(
    *,
    session: Session,
    ticker: str,
    as_of_date: dt.date,
    started_at: dt.datetime,
    flow_run_id: str | None = None,
    code_version: str | None = None,
    data_hash: str | None = None,
) -> Run:
    """The day's run, created or restamped as this attempt's (status ``succeeded``: the caller
    writes it in the transaction that commits the run's rows, or nothing is written)."""
    values = {
        "ticker": ticker,
        "as_of_date": as_of_date,
        "status": "succeeded",
        "flow_run_id": flow_run_id,
        "code_version": code_version,
        "data_hash": data_hash,
        "error": None,
        "started_at": started_at,
        "finished_at": utcnow(),
    }
    return _upsert(session, values, only_if_failed=False)


def mark_run_failed(
    *,
    session: Session,
    ticker: str,
    as_of_date: dt.date,
    error: str,
    flow_run_id: str | None = None,
    code_version: str | None = None,
) -> Run:
    """Mark the day's run failed, unless an earlier attempt succeeded: its rows are still the
    day's, and the failure is in the pipeline alert and in Prefect."""
    values = {
        "ticker": ticker,
        "as_of_date": as_of_date,
        "status": "failed",
        "flow_run_id": flow_run_id,
        "code_version": code_version,
        "data_hash": None,
        "error": error,
        "started_at": utcnow(),
        "finished_at": utcnow(),
    }
    return _upsert(session, values, only_if_failed=True)


def run_for(*, session: Session, ticker: str, as_of_date: dt.date) -> int:
    """The id of the day's run, created (succeeded, no provenance) for a row written outside
    a pipeline run, e.g. by a test or a script calling the repository directly."""
    found = get_run(session=session, ticker=ticker, as_of_date=as_of_date)
    if found is not None:
        return found.id
    now = utcnow()
    run = Run(
        ticker=ticker, as_of_date=as_of_date, status="succeeded", started_at=now, finished_at=now
    )
    session.add(run)
    session.flush()
    return run.id


def get_run(*, session: Session, ticker: str, as_of_date: dt.date) -> Run | None:
    """The run of ``ticker`` as of ``as_of_date``, if any."""
    statement = select(Run).where(Run.ticker == ticker, Run.as_of_date == as_of_date)
    return session.scalars(statement).one_or_none()


def list_runs(*, session: Session, ticker: str) -> list[Run]:
    """Every run of ``ticker``, oldest as-of date first."""
    statement = select(Run).where(Run.ticker == ticker).order_by(Run.as_of_date)
    return list(session.scalars(statement))


def day_forecaster(*, session: Session, ticker: str, as_of_date: dt.date) -> ModelVersion | None:
    """The model whose LSTM forecast the stored, succeeded run of the day made; None if the
    day has no such run."""
    statement = (
        select(ModelVersion)
        .join(Prediction, Prediction.model_version_id == ModelVersion.id)
        .join(Run, Run.id == Prediction.run_id)
        .where(
            Run.ticker == ticker,
            Run.as_of_date == as_of_date,
            Run.status == "succeeded",
            Prediction.kind == "contender",
            Prediction.method == "lstm",
        )
    )
    return session.scalars(statement).first()


def clear_run(*, session: Session, run_id: int, keep: Collection[int] = ()) -> list[str]:
    """Delete what an earlier attempt of the run wrote; return the artifact URIs of the model
    versions deleted (the caller removes the files once the transaction has committed).

    Its forecasts, evaluations and drift metrics go. Its model versions go too, with their
    held-out test windows, except those later history rests on: the champion, and a version
    that another run's rows or another version (as its parent) refer to. Those stay, under
    this run, with their standing and their test window; so do the versions in ``keep`` (the
    model a rerun forecasts with again).
    """
    session.flush()
    for table in (Evaluation, DriftReport):
        session.execute(delete(table).where(table.run_id == run_id))
    session.execute(
        delete(Prediction).where(Prediction.run_id == run_id, Prediction.kind != "test")
    )
    version, child = ModelVersion.id, aliased(ModelVersion)
    needed = or_(
        ModelVersion.status == "champion",
        ModelVersion.id.in_(list(keep)),
        exists().where(Prediction.model_version_id == version, Prediction.run_id != run_id),
        exists().where(Evaluation.model_version_id == version),
        exists().where(DriftReport.model_version_id == version),
        exists().where(child.parent_id == version),
    )
    doomed = select(ModelVersion.id, ModelVersion.artifact_uri).where(
        ModelVersion.run_id == run_id, ~needed
    )
    rows = session.execute(doomed).all()
    if rows:
        ids = [row.id for row in rows]
        session.execute(delete(Prediction).where(Prediction.model_version_id.in_(ids)))
        session.execute(delete(ModelVersion).where(ModelVersion.id.in_(ids)))
    session.expire_all()  # ORM copies of deleted rows must not be flushed back
    return [row.artifact_uri for row in rows if row.artifact_uri]


def _upsert(session: Session, values: dict, *, only_if_failed: bool) -> Run:
    table = Run.__table__
    statement = dialect_insert(session, table).values(values)
    key = ("ticker", "as_of_date")
    statement = statement.on_conflict_do_update(
        index_elements=[table.c[name] for name in key],
        set_={name: statement.excluded[name] for name in values if name not in key},
        where=(table.c.status == "failed") if only_if_failed else None,
    )
    session.flush()
    session.execute(statement)
    run = get_run(session=session, ticker=values["ticker"], as_of_date=values["as_of_date"])
    session.refresh(run)
    return run
