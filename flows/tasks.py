"""Prefect tasks: thin, typed wrappers around `forecasting/` and `db/`.

Retries only on I/O (the download, the database, artifact storage), and only for errors that a
retry can cure: a rate limit or a network failure is retried, an unknown ticker is not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

import keras
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from db.engine import Engine, get_engine, mask_url, unit_of_work
from db.errors import DatabaseUnavailableError
from db.migrate import ensure_schema
from db.repository import (
    delete_prices,
    get_champion,
    latest_price_date,
    lineage_retrain_date,
    read_prices,
    record_ingestion,
    upsert_prices,
)
from flows.progress import TrainingProgress
from flows.storage import load_stored_model, store_model
from forecasting.config import FeatureConfig, TrainingConfig
from forecasting.errors import RateLimitedError, SourceUnavailableError
from forecasting.evaluation import Evaluation, Forecast, evaluate, forecast_next
from forecasting.features import PreparedData, prepare
from forecasting.model import TrainingResult, fine_tune, set_seed, train
from forecasting.policy import ChampionInfo, Decision, Mode, decide
from forecasting.restatement import Restatement, find_restatement
from forecasting.sources import load_prices, parse_source

TRANSIENT_ERRORS = (RateLimitedError, SourceUnavailableError, DatabaseUnavailableError, OSError)


def _transient(task, task_run, state) -> bool:
    """Retry only when the failure is one that waiting can cure."""
    try:
        state.result()
    except TRANSIENT_ERRORS:
        return True
    except Exception:
        return False
    return False


# Back-off of 2 s, 10 s, then 30 s; Yahoo's rate limit usually clears within a minute.
IO_OPTIONS = {
    "retries": 3,
    "retry_delay_seconds": [2, 10, 30],
    "retry_jitter_factor": 0.2,
    "retry_condition_fn": _transient,
    "cache_policy": NO_CACHE,
}
io_task = task(**IO_OPTIONS)
# Models and arrays are passed in memory; nothing is worth caching between daily runs.
compute_task = task(cache_policy=NO_CACHE)


@dataclass(frozen=True)
class Champion:
    """The stored champion, with what the policy needs to know about it."""

    info: ChampionInfo
    kind: str
    artifact_uri: str
    sha256: str
    train_window: tuple[dt.date, dt.date]


@dataclass(frozen=True)
class Ingested:
    """What the ingest step stored."""

    rows_received: int
    rows_upserted: int
    first_date: dt.date
    last_date: dt.date
    restatement: Restatement | None
    download_failed: bool = False
    """True when the download failed after its retries and the run goes on with stored bars."""


@io_task
def open_store(database_url: str) -> Engine:
    """Connect to the database and create its schema on first use."""
    engine = get_engine(database_url)
    ensure_schema(engine)
    return engine


@io_task
def last_stored_date(engine: Engine, ticker: str) -> dt.date | None:
    """Date of the newest stored bar for the ticker."""
    with unit_of_work(engine) as session:
        return latest_price_date(session=session, ticker=ticker)


@task(**IO_OPTIONS, timeout_seconds=180)
def download(
    source: str, ticker: str, start: dt.date | None, as_of: dt.date | None
) -> pd.DataFrame:
    """Fetch validated daily bars from the source, nothing after the as-of date."""
    frame = load_prices(source, ticker, start=start, as_of=as_of)
    get_run_logger().info(
        "downloaded %d bars of %s from %s (%s to %s)",
        len(frame),
        ticker,
        source,
        frame.index[0].date(),
        frame.index[-1].date(),
    )
    return frame


@io_task
def check_restatement(engine: Engine, ticker: str, fetched: pd.DataFrame) -> Restatement | None:
    """Compare fetched bars with the stored ones on their overlap."""
    with unit_of_work(engine) as session:
        stored = read_prices(
            session=session,
            ticker=ticker,
            start=fetched.index[0].date(),
            end=fetched.index[-1].date(),
        )
    restatement = find_restatement(stored, fetched) if len(stored) else None
    if restatement is not None:
        get_run_logger().warning("history of %s was restated: %s", ticker, restatement)
    return restatement


def _content_hash(frame: pd.DataFrame) -> str:
    return hashlib.sha256(
        pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes()
    ).hexdigest()


@io_task
def store_prices(
    engine: Engine,
    ticker: str,
    source: str,
    fetched: pd.DataFrame,
    *,
    requested_start: dt.date | None,
    requested_end: dt.date | None,
    restatement: Restatement | None,
    flow_run_id: str | None,
) -> Ingested:
    """Upsert the bars and record the ingestion, in one transaction (a restatement re-syncs)."""
    parsed = parse_source(source)
    with unit_of_work(engine) as session:
        if restatement is not None:
            delete_prices(session=session, ticker=ticker)
        upserted = upsert_prices(fetched, session=session, ticker=ticker, source=parsed.name)
        record_ingestion(
            session=session,
            ticker=ticker,
            source=parsed.uri,
            requested_start=requested_start,
            requested_end=requested_end,
            rows_received=len(fetched),
            rows_upserted=upserted,
            first_date=fetched.index[0].date(),
            last_date=fetched.index[-1].date(),
            restated=restatement is not None,
            content_hash=_content_hash(fetched),
            status="succeeded",
            error=None,
            flow_run_id=flow_run_id,
        )
    return Ingested(
        len(fetched), upserted, fetched.index[0].date(), fetched.index[-1].date(), restatement
    )


@io_task
def record_failed_download(
    engine: Engine,
    ticker: str,
    source: str,
    *,
    requested_start: dt.date | None,
    requested_end: dt.date | None,
    error: str,
    flow_run_id: str | None,
) -> None:
    """Record a download that failed after its retries."""
    with unit_of_work(engine) as session:
        record_ingestion(
            session=session,
            ticker=ticker,
            source=parse_source(source).uri,
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


@io_task
def load_history(engine: Engine, ticker: str, as_of: dt.date) -> pd.DataFrame:
    """Read the stored bars up to the as-of date: features come from the database."""
    with unit_of_work(engine) as session:
        return read_prices(session=session, ticker=ticker, end=as_of)


@compute_task
def prepare_data(prices: pd.DataFrame, config: FeatureConfig) -> PreparedData:
    """Turn bars into windows, split chronologically, fit scaling on training data."""
    return prepare(prices, config)


@io_task
def find_champion(engine: Engine, ticker: str) -> Champion | None:
    """Look up the current champion model version."""
    with unit_of_work(engine) as session:
        version = get_champion(session=session, ticker=ticker)
        if version is None:
            return None
        info = ChampionInfo(
            version_id=version.id,
            as_of_date=version.as_of_date,
            retrained_as_of=lineage_retrain_date(session=session, version=version),
            config_hash=version.config_hash,
        )
        return Champion(
            info,
            version.kind,
            version.artifact_uri,
            version.sha256,
            (version.train_start, version.train_end),
        )


@compute_task
def decide_training(
    *,
    mode: Mode,
    champion: Champion | None,
    as_of: dt.date,
    config_hash: str,
    retrain_every: int,
    history_restated: bool,
    open_drift_alerts: tuple[str, ...],
) -> Decision:
    """Choose retrain, fine-tune or reuse."""
    decision = decide(
        mode=mode,
        champion=champion.info if champion else None,
        as_of=as_of,
        config_hash=config_hash,
        retrain_every=retrain_every,
        history_restated=history_restated,
        open_drift_alerts=open_drift_alerts,
    )
    get_run_logger().info("decision: %s (%s)", decision.action, decision.reason)
    return decision


@io_task
def load_champion_model(champion: Champion) -> keras.Model:
    """Load the champion's weights from the artifact root, checking their sha256."""
    return load_stored_model(champion.artifact_uri, sha256=champion.sha256)


@compute_task
def train_candidate(
    data: PreparedData, config: TrainingConfig, base: keras.Model | None
) -> TrainingResult:
    """Train from scratch, or fine-tune ``base``, reporting progress per epoch."""
    kind = "retrain" if base is None else "finetune"
    epochs = config.max_epochs if base is None else config.finetune_epochs
    progress = TrainingProgress(kind=kind, max_epochs=epochs, logger=get_run_logger())
    if base is None:
        set_seed(config.seed)
        return train(data, config, callbacks=[progress])
    return fine_tune(base, data, config, callbacks=[progress])


@compute_task
def evaluate_model(model: keras.Model, data: PreparedData) -> Evaluation:
    """Score a model on the test window against the naive forecast."""
    return evaluate(model, data)


@io_task
def save_candidate(
    model: keras.Model, *, root: str, ticker: str, as_of: dt.date, kind: str
) -> tuple[str, str]:
    """Write the candidate's .keras file under the artifact root; return its URI and sha256."""
    return store_model(model, root=root, ticker=ticker, as_of=as_of, kind=kind)


@compute_task
def predict_next(model: keras.Model, data: PreparedData, evaluation: Evaluation) -> Forecast:
    """Forecast the next trading day's close with 80% and 95% intervals."""
    return forecast_next(model, data, evaluation.calibration)


def describe_database(engine: Engine) -> str:
    """The engine's URL with the password masked, for summaries and logs."""
    return mask_url(engine.url)


def hyperparameters(config: TrainingConfig, result: TrainingResult) -> dict[str, Any]:
    """What to store about how a model was trained."""
    return {
        **config.model_dump(),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_validation_loss": result.best_validation_loss,
        "training_windows": result.training_windows,
    }
