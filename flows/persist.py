"""Step 8 of a run: everything the run learned, written in ONE transaction.

A rerun for the same ticker and as-of date replaces its rows (the unique keys of model_versions,
evaluations and predictions make every write an upsert or a replace), and a failure part-way
leaves the database as it was: the transaction rolls back and the new artifact file is removed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
from prefect import get_run_logger

from db.engine import Engine, unit_of_work
from db.repository import (
    promote,
    prune_test_predictions,
    record_evaluation,
    reject,
    replace_predictions,
    upsert_model_version,
)
from flows.retry import io_task
from flows.storage import remove_model
from flows.watch import StoredAlert, store_findings
from forecasting.alerting import Finding
from forecasting.evaluation import Evaluation, Forecast
from forecasting.model import TrainingResult


@dataclass(frozen=True)
class Candidate:
    """A model trained in this run, with everything stored about it."""

    kind: str
    parent_id: int | None
    training: TrainingResult
    evaluation: Evaluation
    hyperparameters: dict[str, Any]
    feature_config: dict[str, Any]
    config_hash: str
    train_start: dt.date
    train_end: dt.date
    artifact_uri: str
    sha256: str
    promoted: bool
    promotion_reason: str
    stored: bool = True
    """False for a rejected rerun that would overwrite the champion's own row."""


@dataclass(frozen=True)
class RunRecord:
    """All rows one run writes, gathered before the transaction opens."""

    ticker: str
    as_of: dt.date
    flow_run_id: str | None
    code_version: str
    candidate: Candidate | None
    champion_id: int | None
    champion_evaluation: Evaluation | None
    forecast: Forecast
    forecaster_evaluation: Evaluation
    """Evaluation of the model that made the forecast; its test predictions are stored."""
    findings: list[Finding]
    """Every metric of the checks, stored in `drift_reports` and applied to `alerts`."""


@dataclass(frozen=True)
class Persisted:
    """Ids the run summary reports."""

    candidate_id: int | None
    forecaster_id: int
    alerts: list[StoredAlert]
    """The ticker's open alerts after this run; ``is_new`` marks the ones it opened."""


def evaluation_metrics(evaluation: Evaluation, training: TrainingResult | None) -> dict[str, Any]:
    """The `evaluations` row of a model at this as-of date."""
    return {
        "test_loss": evaluation.test_loss,
        "rmse": evaluation.rmse,
        "mae": evaluation.mae,
        "mape": evaluation.mape,
        "naive_rmse": evaluation.naive_rmse,
        "naive_mae": evaluation.naive_mae,
        "skill": evaluation.skill,
        "directional_accuracy": evaluation.directional_accuracy,
        "coverage_80": evaluation.coverage_80,
        "coverage_95": evaluation.coverage_95,
        "n_train": evaluation.n_train,
        "n_val": evaluation.n_validation,
        "n_test": evaluation.n_test,
        "epochs": training.epochs_run if training else None,
        "train_seconds": training.seconds if training else None,
    }


def forecast_rows(forecast: Forecast) -> list[dict[str, Any]]:
    """The single `forecast` prediction of the run."""
    return [
        {
            "target_date": forecast.target_date,
            "base_close": forecast.base_close,
            "predicted_close": forecast.predicted_close,
            "lower_80": forecast.lower_80,
            "upper_80": forecast.upper_80,
            "lower_95": forecast.lower_95,
            "upper_95": forecast.upper_95,
        }
    ]


def evaluation_window_rows(evaluation: Evaluation) -> pd.DataFrame:
    """The `test` predictions: one row per day of the evaluation window."""
    columns = ["target_date", "base_close", "predicted_close", "lower_80", "upper_80"]
    return evaluation.test_predictions[[*columns, "lower_95", "upper_95"]]


@io_task
def persist_run(engine: Engine, record: RunRecord) -> Persisted:
    """Write model version, evaluations, predictions, drift metrics and alerts: one transaction."""
    try:
        with unit_of_work(engine) as session:
            candidate_id = _store_candidate(session, record)
            scored_champion = record.champion_evaluation is not None
            if scored_champion and record.champion_id not in (None, candidate_id):
                record_evaluation(
                    session=session,
                    model_version_id=record.champion_id,
                    as_of_date=record.as_of,
                    metrics=evaluation_metrics(record.champion_evaluation, None),
                    flow_run_id=record.flow_run_id,
                )
            promoted = record.candidate is not None and record.candidate.promoted
            forecaster_id = candidate_id if promoted else record.champion_id
            prune_test_predictions(session=session, ticker=record.ticker, before=record.as_of)
            for kind, rows in (
                ("test", evaluation_window_rows(record.forecaster_evaluation)),
                ("forecast", forecast_rows(record.forecast)),
            ):
                replace_predictions(
                    session=session,
                    ticker=record.ticker,
                    as_of_date=record.as_of,
                    model_version_id=forecaster_id,
                    kind=kind,
                    rows=rows,
                    flow_run_id=record.flow_run_id,
                )
            alerts = store_findings(
                session,
                ticker=record.ticker,
                as_of=record.as_of,
                findings=record.findings,
                model_version_id=forecaster_id,
                flow_run_id=record.flow_run_id,
            )
    except BaseException:
        if record.candidate is not None and record.candidate.stored:
            remove_model(record.candidate.artifact_uri)
        raise
    get_run_logger().info("stored run of %s as of %s", record.ticker, record.as_of)
    return Persisted(candidate_id=candidate_id, forecaster_id=forecaster_id, alerts=alerts)


def _store_candidate(session, record: RunRecord) -> int | None:
    candidate = record.candidate
    if candidate is None or not candidate.stored:
        return None
    version = upsert_model_version(
        session=session,
        ticker=record.ticker,
        as_of_date=record.as_of,
        kind=candidate.kind,
        parent_id=candidate.parent_id,
        hyperparameters=candidate.hyperparameters,
        feature_config=candidate.feature_config,
        config_hash=candidate.config_hash,
        train_start=candidate.train_start,
        train_end=candidate.train_end,
        artifact_uri=candidate.artifact_uri,
        sha256=candidate.sha256,
        code_version=record.code_version,
        flow_run_id=record.flow_run_id,
    )
    record_evaluation(
        session=session,
        model_version_id=version.id,
        as_of_date=record.as_of,
        metrics=evaluation_metrics(candidate.evaluation, candidate.training),
        flow_run_id=record.flow_run_id,
    )
    if candidate.promoted:
        promote(session=session, version=version)
    else:
        reject(session=session, version=version)
    return version.id
