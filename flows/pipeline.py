"""One ticker, one as-of date: ARCHITECTURE.md's steps 1-9 as the flows run them.

`daily_forecast` runs this once; `backfill` runs it for every session of a range in one process
and one flow run. Both write exactly the same rows: a backfilled day differs from a live one in
SQL only in its flow-run id.
"""

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from db.repository import RunKey
from flows.ingest import Ingested, content_hash, ingest
from flows.job import TickerJob
from flows.notify import deliver_alerts
from flows.persist import Candidate, Persisted, RunRows, persist_run
from flows.settings import Settings
from flows.summary import AlertLine, RunSummary
from flows.tasks import (
    Champion,
    Contenders,
    Record,
    Trained,
    decide,
    describe_database,
    find_champion,
    find_day_forecaster,
    fine_tune_candidate,
    forecast_contenders,
    hyperparameters,
    load_history,
    prepare_data,
    read_champion,
    read_record,
    retrain_candidate,
)
from flows.watch import open_drift_alerts, watch
from forecasting.calendar import trading_days_between
from forecasting.config import ServingConfig, config_fingerprint
from forecasting.errors import ModelArtifactError
from forecasting.features import PreparedData
from forecasting.forecast import Forecast, same_days
from forecasting.model import SavedModel
from forecasting.monitoring.alerting import Finding
from forecasting.policy import (
    Decision,
    Promotion,
    Serving,
    champion_finding,
    choose_interval,
    choose_served,
    deciding_record,
    judge_retrain,
    serving_finding,
)
from forecasting.scoring import RecordMetrics, record_metrics, skills_on_same_days, student_t_loss


def code_version() -> str:
    """The installed package version, stored with every model for provenance."""
    try:
        return version("nvda-forecast")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class Served:
    """Step 6: the forecast served today, why, and how each contender has fared."""

    forecast: Forecast
    serving: Serving
    lstm: RecordMetrics | None
    """The LSTM over the deciding record (walk-forward, or held-out while that is short)."""
    naive: RecordMetrics | None
    """The naive + volatility baseline on the same realized days as ``lstm``."""
    winkler_95: dict[str, float]
    """Each contender's mean 95% interval score on those days (those that forecast all of
    them)."""


class _Clock:
    """Wall time per step, for the summary and the backfill benchmark's breakdown."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started


@dataclass(frozen=True)
class Day:
    """One run of a ticker-day: the job, the settings it runs under, who writes its rows."""

    job: TickerJob
    settings: Settings
    flow_run_id: str | None
    started_at: dt.datetime

    @property
    def ticker(self) -> str:
        return self.job.ticker

    @property
    def database_url(self) -> str:
        return self.job.database_url


@dataclass(frozen=True)
class History:
    """Step 2: the stored bars up to the day, and the model's windows cut from them."""

    prices: pd.DataFrame
    data: PreparedData


@dataclass(frozen=True, eq=False)
class Decided:
    """Step 3: the champion, its model file (or why it is unusable) and what to train."""

    champion: Champion | None
    model: SavedModel | None
    broken: str | None
    decision: Decision
    replay: bool
    """A replay of a day before the champion's own: the champion has seen later days, so the
    day's own model forecasts the day, and the newer champion stays champion."""


@dataclass(frozen=True, eq=False)
class Evaluated:
    """Steps 5-7: the promotion verdict, who forecasts today, what is served."""

    promotion: Promotion
    serves: bool
    """Whether the candidate makes today's LSTM forecast (promoted, or a replay's own model)."""
    held_out: pd.DataFrame
    contenders: Contenders
    served: Served
    train_window: tuple[dt.date, dt.date]
    """The serving LSTM's data: first bar and last target day it was fitted on."""
    test_loss: float | None
    chart: pd.DataFrame
    """What the report charts: the newest realized record, or the held-out window while the
    record is short."""


def forecast_day(
    job: TickerJob, settings: Settings, flow_run_id: str | None
) -> tuple[RunSummary, pd.DataFrame]:
    """Run steps 1-9 for one ticker and day; return the summary and the record to chart."""
    day = Day(job, settings, flow_run_id, dt.datetime.now(dt.UTC))
    clock = _Clock()
    with clock.step("ingest"):
        ingested = ingest(job, flow_run_id=flow_run_id)
    with clock.step("prepare"):
        history = _prepare(day, ingested)
    with clock.step("decide"):
        decided = _decide(day, history.data, restated=ingested.restatement is not None)
    with clock.step("train"):
        trained = _train(decided.decision, decided.model, history.data, settings)
    with clock.step("evaluate"):
        evaluated = _evaluate(day, history, trained, decided)
    with clock.step("watch"):
        findings = _watch(day, history.prices, ingested, decided, trained, evaluated)
    with clock.step("persist"):
        candidate = _candidate(trained, evaluated, decided.champion, history.data, settings)
        persisted = _persist(day, history, decided, candidate, evaluated, findings)
    with clock.step("deliver"):
        _deliver(settings, persisted)
    summary = _summarize(day, ingested, decided, evaluated, candidate, persisted, clock)
    return summary, evaluated.chart


def _prepare(day: Day, ingested: Ingested) -> History:
    """Step 2: the stored bars through the day the data named, and the model's windows."""
    prices = load_history(day.database_url, day.ticker, ingested.last_date)
    return History(prices, prepare_data(prices, day.settings.features))


def _deliver(settings: Settings, persisted: Persisted) -> None:
    """Step 9's delivery: the alerts this run opened, to the webhook and the Prefect block."""
    deliver_alerts(
        persisted.alerts,
        webhook_url=settings.alert_webhook_url.get_secret_value(),
        notification_block=settings.alert_notification_block,
    )


def _decide(day: Day, data: PreparedData, *, restated: bool) -> Decided:
    """Step 3: retrain, fine-tune or reuse the champion (and is its file usable?).

    A replay of a stored day (one before the champion's own) reuses the model that forecast
    it, so that a rerun of an old day stores again exactly what later days' records rest on.
    """
    settings = day.settings
    champion = find_champion(day.database_url, day.ticker)
    model, broken = _read(champion)
    replay = champion is not None and champion.info.as_of_date > data.last_date
    day_model = None
    if replay:
        day_model = find_day_forecaster(day.database_url, day.ticker, data.last_date)
    stored, stored_broken = _read(day_model)
    if stored_broken is not None:
        day_model = None
    decision = decide(
        mode=day.job.mode,
        champion=champion.info if champion else None,
        as_of=data.last_date,
        config_hash=config_fingerprint(settings.features, settings.training),
        retrain_every=settings.retrain_every,
        history_restated=restated,
        open_drift_alerts=open_drift_alerts(
            day.database_url, day.ticker, champion.info.retrained_as_of if champion else None
        ),
        champion_broken=broken,
        day_forecaster=day_model.info if day_model else None,
        day_forecaster_live=day_model.live if day_model else False,
    )
    get_run_logger().info("decision: %s (%s)", decision.action, decision.reason)
    if day_model is not None and decision.action == "reuse":
        return Decided(day_model, stored, None, decision, replay)
    return Decided(champion, model, broken, decision, replay)


def _promote(day: Day, trained: Trained | None, decided: Decided, record: Record) -> Promotion:
    """Step 5, logged: does the candidate replace the champion?"""
    champion = decided.champion
    promotion = judge_candidate(
        trained,
        champion_record=record.lstm if decided.model is not None else None,
        replay_of=champion.info.as_of_date if decided.replay else None,
        tolerance=day.settings.promotion_tolerance,
        min_realized=day.settings.serving.min_realized,
    )
    if trained is not None:
        verdict = "promoted" if promotion.promote else "not promoted"
        get_run_logger().info("candidate %s: %s", verdict, promotion.reason)
    return promotion


def _evaluate(day: Day, history: History, trained: Trained | None, decided: Decided) -> Evaluated:
    """Steps 5-7: promote or not, every contender's forecast, and the one served."""
    settings, data = day.settings, history.data
    lineage = decided.champion.retrain_id if decided.model is not None else None
    record = read_record(day.database_url, day.ticker, data.last_date, lineage)
    promotion = _promote(day, trained, decided, record)
    serves = trained is not None and (promotion.promote or decided.replay)
    held_out = trained.held_out if serves and trained.held_out is not None else record.held_out
    contenders = forecast_contenders(
        trained.result.model if serves else decided.model,
        data,
        history.prices,
        record=record,
        held_out=held_out,
        features=settings.features,
        serving=settings.serving,
    )
    served = choose_forecast(
        contenders,
        record,
        held_out,
        serving=settings.serving,
        tolerance=settings.promotion_tolerance,
    )
    if serves:
        train_window = (data.first_date, data.last_target_date)
    else:
        train_window = decided.champion.train_window
    test_loss = _test_loss(serves, trained, decided, record, data, settings)
    chart = record.lstm.tail(settings.serving.window)
    if len(chart) < settings.serving.min_realized:
        chart = held_out
    return Evaluated(
        promotion, serves, held_out, contenders, served, train_window, test_loss, chart
    )


def _test_loss(
    serves: bool,
    trained: Trained | None,
    decided: Decided,
    record: Record,
    data: PreparedData,
    settings: Settings,
) -> float | None:
    """The serving model's test loss: a retrain of this day has its held-out loss (stored with
    it, and read back on a rerun); any other, its loss over the lineage's realized record."""
    if serves and trained.test_loss is not None:
        return trained.test_loss
    forecaster = decided.champion
    if (
        not serves
        and forecaster is not None
        and forecaster.kind == "retrain"
        and forecaster.info.as_of_date == data.last_date
    ):
        return forecaster.test_loss
    return student_t_loss(record.lstm.tail(settings.serving.window))


def _watch(
    day: Day,
    prices: pd.DataFrame,
    ingested: Ingested,
    decided: Decided,
    trained: Trained | None,
    evaluated: Evaluated,
) -> list[Finding]:
    """Step 9's checks: drift, performance, data quality, and the run's own findings."""
    promotion = evaluated.promotion
    findings = watch(
        day.database_url,
        day.ticker,
        prices,
        # Every source is judged against the day asked for: today for a live run (a file or
        # the sample that ends months ago is stale, and says so), the as-of date for a replay.
        judge_as_of=day.job.as_of,
        train_window=evaluated.train_window,
        reference=evaluated.held_out,
        restated=ingested.restatement is not None,
        restatement=str(ingested.restatement) if ingested.restatement else None,
        download_failed=ingested.download_failed,
        challenger_rejected=(None if trained is None or decided.replay else not promotion.promote),
        promotion_reason=promotion.reason,
        config=day.settings.drift,
    )
    return [
        *findings,
        serving_finding(evaluated.served.serving),
        champion_finding(decided.broken),
    ]


def _persist(
    day: Day,
    history: History,
    decided: Decided,
    candidate: Candidate | None,
    evaluated: Evaluated,
    findings: list[Finding],
) -> Persisted:
    """Step 8: the run's rows and the candidate's file, in one transaction."""
    champion = decided.champion
    return persist_run(
        day.database_url,
        RunRows(
            key=RunKey(day.ticker, history.data.last_date, day.flow_run_id),
            started_at=day.started_at,
            code_version=code_version(),
            data_hash=content_hash(history.prices),
            candidate=candidate,
            champion_id=champion.info.version_id if champion else None,
            retired_champion_id=(champion.info.version_id if decided.broken and champion else None),
            forecaster_metrics=_metrics(evaluated.served, evaluated.test_loss, history.data),
            served=evaluated.served.forecast,
            contenders=evaluated.contenders.forecasts(),
            findings=findings,
            replay=decided.replay,
        ),
        artifact_root=day.settings.artifact_root,
    )


def _read(champion: Champion | None) -> tuple[SavedModel | None, str | None]:
    """The champion's model file, or why it cannot be used."""
    if champion is None:
        return None, None
    loaded = read_champion(champion)
    if isinstance(loaded, ModelArtifactError):
        return None, str(loaded)
    return loaded, None


def _train(
    decision: Decision,
    champion_model: SavedModel | None,
    data: PreparedData,
    settings: Settings,
) -> Trained | None:
    """Step 4: retrain (fit, score held out, walk forward) or fine-tune; nothing on reuse."""
    if decision.action == "reuse":
        return None
    if decision.action == "finetune":
        return fine_tune_candidate(champion_model, data, settings.training)
    return retrain_candidate(data, settings.training, settings.serving)


@task(name="promote", cache_policy=NO_CACHE)
def judge_candidate(
    trained: Trained | None,
    *,
    champion_record: pd.DataFrame | None,
    replay_of: dt.date | None,
    tolerance: float,
    min_realized: int,
) -> Promotion:
    """Step 5: does the candidate replace the champion (`forecasting.policy.judge_retrain`)?"""
    if trained is None:
        return Promotion(False, "")
    comparison = None
    if trained.kind == "retrain" and champion_record is not None and replay_of is None:
        comparison = skills_on_same_days(trained.held_out, champion_record)
    return judge_retrain(
        kind=trained.kind,
        windows=trained.result.training_windows,
        held_out_days=len(trained.held_out) if trained.held_out is not None else 0,
        replay_of=replay_of,
        comparison=comparison,
        tolerance=tolerance,
        min_realized=min_realized,
    )


@task(name="serve", cache_policy=NO_CACHE)
def choose_forecast(
    contenders: Contenders,
    record: Record,
    held_out: pd.DataFrame,
    *,
    serving: ServingConfig,
    tolerance: float,
) -> Served:
    """Step 6: the LSTM serves only while its realized point record is not worse than naive's
    and its 95% interval scored better than the GARCH average's on the same days; otherwise
    the GARCH average (naive, while the history is too short for a GARCH fit) serves."""
    deciding, basis = deciding_record(
        record.lstm, held_out, window=serving.window, min_realized=serving.min_realized
    )
    lstm = record_metrics(deciding)
    fallback = "garch_avg" if "garch_avg" in contenders.garch else "naive"
    point = choose_served(
        skill=lstm.skill if lstm else None,
        n=lstm.n if lstm else 0,
        basis=basis,
        tolerance=tolerance,
        min_realized=serving.min_realized,
        fallback=fallback,
    )
    # Every contender on the very days that decided: same window, same closes.
    others = {
        name: record_metrics(same_days(frame, deciding))
        for name, frame in contenders.past().items()
    }
    winkler = {name: m.winkler_95 for name, m in others.items() if m and lstm and m.n == lstm.n}
    if lstm is not None:
        winkler["lstm"] = lstm.winkler_95
    decision = choose_interval(point, winkler, fallback=fallback, min_realized=serving.min_realized)
    get_run_logger().info("serving: %s (%s)", decision.method, decision.reason)
    forecast = {f.method: f for f in contenders.forecasts()}[decision.method]
    return Served(forecast, decision, lstm, others["naive"], winkler)


def _metrics(served: Served, test_loss: float | None, data: PreparedData) -> dict:
    """The `evaluations` row of the LSTM that forecast today."""
    lstm, naive = served.lstm, served.naive
    return {
        "test_loss": test_loss,
        "rmse": lstm.rmse if lstm else None,
        "mae": lstm.mae if lstm else None,
        "mape": lstm.mape if lstm else None,
        "naive_rmse": lstm.naive_rmse if lstm else None,
        "naive_mae": lstm.naive_mae if lstm else None,
        "skill": lstm.skill if lstm else None,
        "directional_accuracy": lstm.directional_accuracy if lstm else None,
        "coverage_80": lstm.coverage_80 if lstm else None,
        "coverage_95": lstm.coverage_95 if lstm else None,
        "winkler_95": lstm.winkler_95 if lstm else None,
        "naive_winkler_95": naive.winkler_95 if naive else None,
        "n_realized": lstm.n if lstm else 0,
        "n_train": len(data.train),
        "n_val": len(data.validation),
        "n_test": len(data.test),
    }


def _candidate(
    trained: Trained | None,
    evaluated: Evaluated,
    champion: Champion | None,
    data: PreparedData,
    settings: Settings,
) -> Candidate | None:
    """Describe the candidate, with its standing, for the `model_versions` row."""
    if trained is None:
        return None
    promotion = evaluated.promotion
    held_out = record_metrics(trained.held_out) if trained.held_out is not None else None
    metrics = {
        "test_loss": trained.test_loss,
        "epochs": trained.result.epochs_run,
        "train_seconds": trained.result.seconds,
        "n_train": len(data.train),
        "n_val": len(data.validation),
        "n_test": len(data.test),
    }
    if held_out is not None:
        metrics |= {
            "rmse": held_out.rmse,
            "mae": held_out.mae,
            "mape": held_out.mape,
            "naive_rmse": held_out.naive_rmse,
            "naive_mae": held_out.naive_mae,
            "skill": held_out.skill,
            "directional_accuracy": held_out.directional_accuracy,
            "n_realized": held_out.n,
        }
    return Candidate(
        kind=trained.kind,
        parent_id=champion.info.version_id if trained.kind == "finetune" else None,
        training=trained.result,
        metrics=metrics,
        held_out=trained.held_out,
        hyperparameters=hyperparameters(settings.training, trained.result),
        feature_config={**settings.features.model_dump(), "features": list(data.feature_names)},
        config_hash=config_fingerprint(settings.features, settings.training),
        train_start=data.first_date,
        train_end=data.last_target_date,
        promoted=promotion.promote,
        promotion_reason=promotion.reason,
        serves=evaluated.serves,
    )


def _record_fields(served: Served) -> dict:
    """The summary's view of the deciding record: the LSTM's metrics and naive's Winkler."""
    metrics, naive = served.lstm, served.naive
    names = ("skill", "rmse", "naive_rmse", "directional_accuracy")
    names += ("coverage_80", "coverage_95", "winkler_95")
    return {
        "n_realized": metrics.n if metrics else 0,
        **{name: getattr(metrics, name) if metrics else None for name in names},
        "naive_winkler_95": naive.winkler_95 if naive else None,
    }


def _summarize(
    day: Day,
    ingested: Ingested,
    decided: Decided,
    evaluated: Evaluated,
    candidate: Candidate | None,
    persisted: Persisted,
    clock: _Clock,
) -> RunSummary:
    decision = decided.decision
    served, lstm, test_loss = evaluated.served, evaluated.contenders.lstm, evaluated.test_loss
    train_end = evaluated.train_window[1]
    forecast = served.forecast
    return RunSummary(
        ticker=day.ticker,
        source=day.job.source,
        as_of=forecast.as_of_date,
        target_date=forecast.target_date,
        base_close=forecast.base_close,
        served_by=forecast.method,
        serving_reason=served.serving.reason,
        predicted_close=forecast.predicted_close,
        lower_80=forecast.lower_80,
        upper_80=forecast.upper_80,
        lower_95=forecast.lower_95,
        upper_95=forecast.upper_95,
        lstm_close=lstm.predicted_close,
        lstm_lower_95=lstm.lower_95,
        lstm_upper_95=lstm.upper_95,
        basis=served.serving.basis,
        **_record_fields(served),
        test_loss=test_loss,
        train_end=train_end,
        staleness=max(trading_days_between(train_end, forecast.as_of_date), 0),
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
        database=describe_database(day.database_url),
        flow_run_id=str(day.flow_run_id) if day.flow_run_id else None,
        alerts=_alert_lines(persisted),
        step_seconds={step: round(seconds, 3) for step, seconds in clock.seconds.items()},
    )


def _alert_lines(persisted: Persisted) -> tuple[AlertLine, ...]:
    """The ticker's open alerts after the run, as the summary shows them."""
    return tuple(
        AlertLine(alert.kind, alert.severity, alert.message, alert.is_new)
        for alert in persisted.alerts
    )
