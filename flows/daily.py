"""The daily flow: ingest -> prepare -> decide -> train -> evaluate -> promote -> predict ->
persist -> report, as ARCHITECTURE.md describes one run."""

import datetime as dt
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows.ingest import Ingested, ingest
from flows.persist import Candidate, Persisted, RunRecord, persist_run
from flows.report import publish_report
from flows.summary import RunSummary
from flows.tasks import (
    Champion,
    decide_training,
    describe_database,
    evaluate_model,
    find_champion,
    hyperparameters,
    load_champion_model,
    load_history,
    open_store,
    predict_next,
    prepare_data,
    save_candidate,
    train_candidate,
)
from flows.watch import deliver_alerts, open_drift_alerts, record_failed_run, watch
from forecasting.config import Settings, config_fingerprint, get_settings
from forecasting.evaluation import Evaluation, Forecast
from forecasting.features import PreparedData
from forecasting.policy import Decision, Mode, judge
from forecasting.sources import parse_source


def code_version() -> str:
    """The installed package version, stored with every model for provenance."""
    try:
        return version("nvda-forecast")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Contender:
    """A model that may make today's forecast, scored on today's test window."""

    model: object
    evaluation: Evaluation


@flow(
    name="daily-forecast",
    flow_run_name="{ticker}-{source}",
    timeout_seconds=3600,
    on_failure=[record_failed_run],
)
def daily_forecast(
    ticker: str = "NVDA",
    source: str = "yahoo",
    as_of: dt.date | None = None,
    mode: Mode = "auto",
) -> RunSummary:
    """Forecast the next close of one ticker and store everything the run learned."""
    settings = get_settings()
    run_id = flow_run.id
    engine = open_store(settings.database_url)
    ingested = ingest(engine, ticker=ticker, source=source, as_of=as_of, flow_run_id=run_id)
    prices = load_history(engine, ticker, ingested.last_date)
    data = prepare_data(prices, settings.features)
    champion = find_champion(engine, ticker)
    decision = decide_training(
        mode=mode,
        champion=champion,
        as_of=data.last_date,
        config_hash=config_fingerprint(settings.features, settings.training),
        retrain_every=settings.retrain_every,
        history_restated=ingested.restatement is not None,
        open_drift_alerts=open_drift_alerts(
            engine, ticker, champion.info.retrained_as_of if champion else None
        ),
    )
    incumbent = _score_champion(champion, data)
    candidate = _train(decision, champion, incumbent, data, settings, ticker)
    promoted = candidate is not None and candidate[1].promoted
    forecaster = candidate[0] if promoted else incumbent
    forecast = predict_next(forecaster.model, data, forecaster.evaluation)
    findings = watch(
        engine,
        ticker,
        prices,
        # A file or the bundled sample is the whole world: judge freshness against its last bar.
        judge_as_of=as_of if parse_source(source).name == "yahoo" else data.last_date,
        train_window=(
            (candidate[1].train_start, candidate[1].train_end)
            if promoted
            else champion.train_window
        ),
        evaluation=forecaster.evaluation,
        restated=ingested.restatement is not None,
        download_failed=ingested.download_failed,
        challenger_rejected=None if candidate is None else not promoted,
        promotion_reason=candidate[1].promotion_reason if candidate else "",
        config=settings.drift,
    )
    persisted = persist_run(
        engine,
        RunRecord(
            ticker=ticker,
            as_of=data.last_date,
            flow_run_id=run_id,
            code_version=code_version(),
            candidate=candidate[1] if candidate else None,
            champion_id=champion.info.version_id if champion else None,
            champion_evaluation=incumbent.evaluation if incumbent else None,
            forecast=forecast,
            forecaster_evaluation=forecaster.evaluation,
            findings=findings,
        ),
    )
    deliver_alerts(
        persisted.alerts,
        webhook_url=settings.alert_webhook_url,
        notification_block=settings.alert_notification_block,
    )
    summary = _summarize(
        ticker=ticker,
        source=source,
        forecast=forecast,
        evaluation=forecaster.evaluation,
        decision=decision,
        candidate=candidate[1] if candidate else None,
        persisted=persisted,
        ingested=ingested,
        database=describe_database(engine),
        flow_run_id=run_id,
    )
    publish_report(summary, forecaster.evaluation.test_predictions)
    return summary


def _summarize(
    *,
    ticker: str,
    source: str,
    forecast: Forecast,
    evaluation: Evaluation,
    decision: Decision,
    candidate: Candidate | None,
    persisted: Persisted,
    ingested: Ingested,
    database: str,
    flow_run_id: str | None,
) -> RunSummary:
    return RunSummary(
        ticker=ticker,
        source=source,
        as_of=forecast.as_of_date,
        target_date=forecast.target_date,
        base_close=forecast.base_close,
        predicted_close=forecast.predicted_close,
        lower_80=forecast.lower_80,
        upper_80=forecast.upper_80,
        lower_95=forecast.lower_95,
        upper_95=forecast.upper_95,
        test_loss=evaluation.test_loss,
        rmse=evaluation.rmse,
        naive_rmse=evaluation.naive_rmse,
        skill=evaluation.skill,
        directional_accuracy=evaluation.directional_accuracy,
        coverage_80=evaluation.coverage_80,
        coverage_95=evaluation.coverage_95,
        action=decision.action,
        reason=decision.reason,
        champion_version_id=persisted.forecaster_id,
        candidate_version_id=persisted.candidate_id,
        promoted=candidate.promoted if candidate else None,
        promotion_reason=candidate.promotion_reason if candidate else "",
        rows_ingested=ingested.rows_received,
        restated=ingested.restatement is not None,
        epochs=candidate.training.epochs_run if candidate else None,
        train_seconds=candidate.training.seconds if candidate else None,
        database=database,
        flow_run_id=str(flow_run_id) if flow_run_id else None,
        alerts=tuple(alert.line() for alert in persisted.alerts),
    )


def _score_champion(champion: Champion | None, data: PreparedData) -> Contender | None:
    """Steps 4-5 for the incumbent: load it and score it on today's test window."""
    if champion is None:
        return None
    model = load_champion_model(champion)
    return Contender(model, evaluate_model(model, data))


def _train(
    decision: Decision,
    champion: Champion | None,
    incumbent: Contender | None,
    data: PreparedData,
    settings: Settings,
    ticker: str,
) -> tuple[Contender, Candidate] | None:
    """Steps 4-6: train or fine-tune a candidate, score it, and judge it against the champion."""
    if decision.action == "reuse":
        return None
    # fine_tune trains a clone: the incumbent's weights stay as they are for the comparison.
    base = incumbent.model if decision.action == "finetune" else None
    result = train_candidate(data, settings.training, base)
    evaluation = evaluate_model(result.model, data)
    promotion = judge(
        candidate_skill=evaluation.skill,
        champion_skill=incumbent.evaluation.skill if incumbent else None,
        tolerance=settings.promotion_tolerance,
    )
    logger = get_run_logger()
    logger.info(
        "candidate %s: %s", "promoted" if promotion.promote else "rejected", promotion.reason
    )
    # A rejected rerun must not overwrite the champion it lost to: they share a unique key.
    stored = promotion.promote or not _replaces_champion_row(decision, champion, data)
    uri, sha256 = "", ""
    if stored:
        uri, sha256 = save_candidate(
            result.model,
            root=settings.artifact_root,
            ticker=ticker,
            as_of=data.last_date,
            kind=decision.action,
        )
    else:
        logger.warning("rejected candidate not stored: it has the champion's as-of date and kind")
    candidate = Candidate(
        kind=decision.action,
        parent_id=champion.info.version_id if decision.action == "finetune" else None,
        training=result,
        evaluation=evaluation,
        hyperparameters=hyperparameters(settings.training, result),
        feature_config={**settings.features.model_dump(), "features": list(data.feature_names)},
        config_hash=config_fingerprint(settings.features, settings.training),
        train_start=data.first_date,
        train_end=data.train.target_dates[-1].date(),
        artifact_uri=uri,
        sha256=sha256,
        promoted=promotion.promote,
        promotion_reason=promotion.reason,
        stored=stored,
    )
    return Contender(result.model, evaluation), candidate


def _replaces_champion_row(
    decision: Decision, champion: Champion | None, data: PreparedData
) -> bool:
    return (
        champion is not None
        and champion.info.as_of_date == data.last_date
        and champion.kind == decision.action
    )
