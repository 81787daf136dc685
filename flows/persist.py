"""Step 8 of a run: everything the run learned, written in ONE transaction.

The run is a unit: its row in ``runs`` (one per ticker and as-of date) is stamped with this
attempt, what an earlier attempt of the same day wrote is cleared (``clear_run``: its model
versions stay only where later history rests on them, e.g. the champion), and every row
written points at the run. A rerun therefore replaces the day's rows: one served forecast,
one forecast per contender, one test window, one row per drift metric, the candidate it
trained (stored even when rejected: it is a new row, never the champion's).

The candidate's model file is a side effect of the same attempt: each attempt of the task writes
it (the ``write model file`` task), then opens the transaction. A failure part-way leaves the
database as it was: the SQL transaction rolls back, and so does the Prefect transaction around
both, whose ``on_rollback`` hook removes the file this attempt wrote, unless a committed row
already refers to it (an identical model of an earlier run). A retried attempt writes the file
again, so a commit can never point at a removed file. Files of model versions the rerun cleared
are removed once the SQL transaction has committed, unless a stored version still refers to them.

Why the hook checks the store, and why the cleared files are not an ``on_commit`` hook
(Prefect 3.9.1, ``prefect/transactions.py`` and ``prefect/task_engine.py``):

- ``SyncTaskRunEngine.handle_success`` stages a task's hooks into the transaction that each
  attempt opens (``transaction_context``; with ``NO_CACHE`` its key is None, so nothing is
  persisted, but the hooks still are staged) only when the task returns: a write that raised
  has nothing to undo and registers nothing.
- ``Transaction.reset`` hands a nested transaction that exits cleanly to its parent, which
  commits or rolls it back later; ``Transaction.rollback`` then rolls back every child too. The
  ``write model file`` task's transaction is a child of this task's, which is itself a child of
  the fleet's ``forecast-ticker`` task when that calls the pipeline. So the rollback hook can
  fire after the rows committed: when anything later in this attempt raises, or when the
  enclosing ticker task fails after persist. It must therefore ask the store, never remove
  blindly (``_remove_unless_stored``; if the store cannot answer, the file stays: an orphan file
  is harmless, a row pointing at a removed file is not).
- ``Transaction.commit`` commits the children first; a committed child is never rolled back
  (``rollback`` returns at once for ``COMMITTED``), and a rollback hook that raises is logged by
  ``Transaction.rollback`` and swallowed (the attempt's own error is raised, not the undo's).
- On-commit hooks run only when the outermost transaction commits, and never if it was
  rolled back already (``Transaction.reset`` rolls the parent back when a nested attempt
  fails, e.g. a retried one; ``commit`` then returns False): the cleared files are removed in
  line, right after the SQL commit, not in an ``on_commit`` hook.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.transactions import Transaction, get_transaction, transaction

from db.engine import get_engine, unit_of_work
from db.repository import (
    RunKey,
    add_model_version,
    artifact_in_use,
    clear_run,
    promote,
    record_evaluation,
    reject,
    replace_predictions,
    retire,
    start_run,
)
from flows.alerts import StoredAlert, store_findings
from flows.retry import IO_OPTIONS
from flows.storage import remove_model, store_model
from forecasting.forecast import Forecast
from forecasting.model import SavedModel, TrainingResult
from forecasting.monitoring.alerting import Finding


@dataclass(frozen=True)
class Candidate:
    """A model trained in this run, with everything stored about it."""

    kind: str
    parent_id: int | None
    training: TrainingResult
    metrics: dict[str, Any]
    """Its `evaluations` row as of this run (held-out metrics for a retrain)."""
    held_out: pd.DataFrame | None
    """A retrain's forecasts of its test windows, made before it learned them."""
    hyperparameters: dict[str, Any]
    feature_config: dict[str, Any]
    config_hash: str
    train_start: dt.date
    train_end: dt.date
    promoted: bool
    promotion_reason: str
    serves: bool
    """Whether it made this run's LSTM forecast: when promoted, or in a replay of an earlier
    day (a newer champion stays champion, the day's own model forecasts the day)."""
    artifact_uri: str = ""
    """Where its file went, and the file's sha256: filled in by `persist_run`."""
    sha256: str = ""


@dataclass(frozen=True)
class RunRows:
    """All rows one run writes, gathered before the transaction opens."""

    key: RunKey
    """The ticker's day and the flow run writing it (its ``run_id`` is set once ``runs`` has
    the row)."""
    started_at: dt.datetime
    code_version: str
    data_hash: str | None
    """sha256 of the bars the run used: its history through the as-of date."""
    candidate: Candidate | None
    champion_id: int | None
    retired_champion_id: int | None
    """A champion whose model file was unusable: retired by this run."""
    forecaster_metrics: dict[str, Any]
    """The `evaluations` row of the LSTM that forecast: test loss, walk-forward metrics."""
    served: Forecast
    contenders: tuple[Forecast, ...]
    findings: list[Finding]
    """Every metric of the checks, stored in `drift_reports` and applied to `alerts`."""
    replay: bool = False
    """A day before the champion's own: its metrics are stored, the ticker's alerts (which
    describe its present) are left as they are."""

    @property
    def ticker(self) -> str:
        return self.key.ticker

    @property
    def as_of(self) -> dt.date:
        return self.key.as_of


@dataclass(frozen=True)
class Persisted:
    """Ids the run summary reports."""

    run_id: int
    candidate_id: int | None
    forecaster_id: int
    alerts: list[StoredAlert]
    """The ticker's open alerts after this run; ``is_new`` marks the ones it opened."""


def forecast_rows(forecast: Forecast) -> list[dict[str, Any]]:
    """One forecast as a `predictions` row."""
    return [
        {
            "target_date": forecast.target_date,
            "base_close": forecast.base_close,
            "predicted_close": forecast.predicted_close,
            "lower_80": forecast.lower_80,
            "upper_80": forecast.upper_80,
            "lower_95": forecast.lower_95,
            "upper_95": forecast.upper_95,
            "scale": forecast.scale,
        }
    ]


@task(name="persist", **IO_OPTIONS)
def persist_run(database_url: str, rows: RunRows, *, artifact_root: str) -> Persisted:
    """Write the model file, then the run and its model version, evaluations, predictions,
    drift metrics and alerts in one transaction; the file goes if the transaction does not
    commit."""
    with transaction():
        rows = _with_model_file(database_url, rows, artifact_root)
        with unit_of_work(get_engine(database_url)) as session:
            persisted, cleared_files = _write_rows(session, rows)
    # Files of the versions the rerun cleared, unless an identical model is stored again.
    for uri in cleared_files:
        _remove_unless_stored(database_url, uri)
    get_run_logger().info("stored run of %s as of %s", rows.ticker, rows.as_of)
    return persisted


def _with_model_file(database_url: str, rows: RunRows, artifact_root: str) -> RunRows:
    """The rows with their candidate's file written (by the task whose rollback removes it)."""
    candidate = rows.candidate
    if candidate is None:
        return rows
    saved = candidate.training.saved().model
    uri = write_model_file(
        database_url,
        saved,
        artifact_root=artifact_root,
        ticker=rows.ticker,
        as_of=rows.as_of,
        kind=candidate.kind,
    )
    return replace(rows, candidate=replace(candidate, artifact_uri=uri, sha256=saved.sha256))


@task(name="write model file", cache_policy=NO_CACHE)
def write_model_file(
    database_url: str,
    saved: SavedModel,
    *,
    artifact_root: str,
    ticker: str,
    as_of: dt.date,
    kind: str,
) -> str:
    """Write a candidate's model file under the artifact root; return its URI."""
    uri = store_model(saved, root=artifact_root, ticker=ticker, as_of=as_of, kind=kind)
    undo = get_transaction()
    if undo is not None:  # what the rollback hook removes, and where it asks whether it may
        undo.set("model_file", uri)
        undo.set("database_url", database_url)
    return uri


@write_model_file.on_rollback
def _remove_written_model_file(undo: Transaction) -> None:
    """Undo the file this attempt wrote, unless a committed row refers to it."""
    _remove_unless_stored(undo.get("database_url"), undo.get("model_file"))


def _write_rows(session, rows: RunRows) -> tuple[Persisted, list[str]]:
    """Every row of the run, in the caller's transaction; the files of cleared versions."""
    stored = start_run(
        session=session,
        ticker=rows.ticker,
        as_of_date=rows.as_of,
        started_at=rows.started_at,
        flow_run_id=rows.key.flow_run_id,
        code_version=rows.code_version,
        data_hash=rows.data_hash,
    )
    key = replace(rows.key, run_id=stored.id)
    # A rerun that forecasts with the day's own model again keeps it.
    kept = () if rows.champion_id is None else (rows.champion_id,)
    cleared_files = clear_run(session=session, run_id=stored.id, keep=kept)
    if rows.retired_champion_id is not None:
        retire(session=session, version_id=rows.retired_champion_id)
    candidate_id = _store_candidate(session, rows, key)
    serves = rows.candidate is not None and rows.candidate.serves
    forecaster_id = candidate_id if serves else rows.champion_id
    if not serves:
        record_evaluation(
            session=session,
            model_version_id=forecaster_id,
            metrics=rows.forecaster_metrics,
            **key.stamp(),
        )
    if serves and rows.candidate.held_out is not None:
        _replace(session, key, "test", "lstm", rows.candidate.held_out, candidate_id)
    _store_forecasts(session, rows, key, forecaster_id)
    alerts = store_findings(
        session,
        key,
        rows.findings,
        model_version_id=forecaster_id,
        move_alerts=not rows.replay,
    )
    return Persisted(stored.id, candidate_id, forecaster_id, alerts), cleared_files


def _store_forecasts(session, rows: RunRows, key: RunKey, forecaster_id: int) -> None:
    """Each contender's forecast of the next session, and the one served."""
    for forecast in rows.contenders:
        model_id = forecaster_id if forecast.method == "lstm" else None
        _replace(session, key, "contender", forecast.method, forecast, model_id)
    served_id = forecaster_id if rows.served.method == "lstm" else None
    _replace(session, key, "forecast", rows.served.method, rows.served, served_id)


def _remove_unless_stored(database_url: str, uri: str) -> None:
    """Undo this attempt's file, unless a committed row refers to it (or that cannot be told:
    an orphan file is harmless, a row pointing at a removed file is not)."""
    try:
        with unit_of_work(get_engine(database_url)) as session:
            in_use = artifact_in_use(session=session, artifact_uri=uri)
    except Exception as error:
        get_run_logger().warning("kept %s: could not check whether it is stored (%s)", uri, error)
        return
    if not in_use:
        remove_model(uri)


def _replace(session, key: RunKey, kind: str, method: str, rows, model_version_id) -> None:
    replace_predictions(
        session=session,
        ticker=key.ticker,
        model_version_id=model_version_id,
        kind=kind,
        method=method,
        rows=forecast_rows(rows) if isinstance(rows, Forecast) else rows,
        **key.stamp(),
    )


def _store_candidate(session, rows: RunRows, key: RunKey) -> int | None:
    candidate = rows.candidate
    if candidate is None:
        return None
    version = add_model_version(
        session=session,
        ticker=key.ticker,
        kind=candidate.kind,
        parent_id=candidate.parent_id,
        hyperparameters=candidate.hyperparameters,
        feature_config=candidate.feature_config,
        config_hash=candidate.config_hash,
        train_start=candidate.train_start,
        train_end=candidate.train_end,
        artifact_uri=candidate.artifact_uri,
        sha256=candidate.sha256,
        code_version=rows.code_version,
        **key.stamp(),
    )
    metrics = rows.forecaster_metrics if candidate.serves else candidate.metrics
    record_evaluation(session=session, model_version_id=version.id, metrics=metrics, **key.stamp())
    if candidate.promoted:
        promote(session=session, version=version)
    elif not candidate.serves:
        reject(session=session, version=version)
    return version.id
