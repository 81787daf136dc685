"""Prefect tasks: thin, typed wrappers around `forecasting/` and `db/`.

Retries only on I/O (the database, artifact storage), as `flows.retry` defines them; the
download and the rest of step 1 live in `flows.ingest`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import keras
import pandas as pd
from prefect import get_run_logger

from db.engine import Engine, get_engine, mask_url, unit_of_work
from db.migrate import ensure_schema
from db.repository import get_champion, lineage_retrain_date, read_prices
from flows.progress import TrainingProgress
from flows.retry import compute_task, io_task
from flows.storage import load_stored_model, store_model
from forecasting.config import FeatureConfig, TrainingConfig
from forecasting.evaluation import Evaluation, Forecast, evaluate, forecast_next
from forecasting.features import PreparedData, prepare
from forecasting.model import TrainingResult, fine_tune, set_seed, train
from forecasting.policy import ChampionInfo, Decision, Mode, decide


@dataclass(frozen=True)
class Champion:
    """The stored champion, with what the policy needs to know about it."""

    info: ChampionInfo
    kind: str
    artifact_uri: str
    sha256: str
    train_window: tuple[dt.date, dt.date]


@io_task
def open_store(database_url: str) -> Engine:
    """Connect to the database and create its schema on first use."""
    engine = get_engine(database_url)
    ensure_schema(engine)
    return engine


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
