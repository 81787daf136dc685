"""Prefect tasks: thin, typed wrappers around `forecasting/` and `db/`.

Retries only on I/O (the database, artifact storage), as `flows.retry` defines them; the
download and the rest of step 1 live in `flows.ingest`.

What a task takes and returns is plain data (URLs, frames, small dataclasses, a model as its
file's bytes: `forecasting.model.SavedModel`), never a live Engine, Session or keras.Model, so
that any task could run in another process. tests/flows/test_task_boundaries.py checks every
task of a retrain day and a fine-tune day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from db.engine import get_engine, mask_url, unit_of_work
from db.migrate import ensure_schema
from db.repository import (
    day_forecaster,
    get_champion,
    get_evaluation,
    lineage_retrain,
    read_held_out,
    read_prices,
    read_walk_forward,
)
from flows.progress import TrainingProgress
from flows.retry import IO_OPTIONS, io_task
from flows.storage import read_stored_model
from forecasting import policy
from forecasting.baselines import naive_volatility_forecasts
from forecasting.config import FeatureConfig, ServingConfig, TrainingConfig
from forecasting.errors import ModelArtifactError
from forecasting.features import PreparedData, prepare
from forecasting.forecast import (
    Forecast,
    baseline_calibration_window,
    garch_contenders,
    interval_quantiles,
    lstm_forecast,
    naive_forecast,
    score_held_out,
)
from forecasting.model import SavedModel, TrainingResult, fine_tune, train, walk_forward
from forecasting.policy import ChampionInfo


@dataclass(frozen=True)
class Champion:
    """A stored model that forecasts (the champion, or the model that forecast a stored day),
    with what the policy needs to know about it."""

    info: ChampionInfo
    kind: str
    artifact_uri: str
    sha256: str
    train_window: tuple[dt.date, dt.date]
    retrain_id: int
    """The last full retrain of its lineage: whose held-out test window calibrates it."""
    test_loss: float | None
    """Its test loss on its own day, as stored then."""
    live: bool
    """Whether it was ever promoted: of the live lineage, whose forecasts make the record."""


@io_task
def open_store(database_url: str) -> str:
    """Connect to the database, create its schema on first use; return the URL.

    Tasks take the URL, not a live Engine: each opens the process's engine for it
    (`db.engine.get_engine` keeps one per URL), so what crosses a task boundary pickles and a
    Dask worker opens its own connections.
    """
    ensure_schema(get_engine(database_url))
    return database_url


@task(name="prepare: read bars", **IO_OPTIONS)
def load_history(database_url: str, ticker: str, as_of: dt.date) -> pd.DataFrame:
    """Read the stored bars up to the as-of date: features come from the database."""
    with unit_of_work(get_engine(database_url)) as session:
        return read_prices(session=session, ticker=ticker, end=as_of)


@task(name="prepare", cache_policy=NO_CACHE)
def prepare_data(prices: pd.DataFrame, config: FeatureConfig) -> PreparedData:
    """Turn bars into windows, split chronologically, fit scaling on training data."""
    return prepare(prices, config)


@task(name="decide: find champion", **IO_OPTIONS)
def find_champion(database_url: str, ticker: str) -> Champion | None:
    """Look up the current champion model version."""
    with unit_of_work(get_engine(database_url)) as session:
        version = get_champion(session=session, ticker=ticker)
        return None if version is None else _describe(session, version)


@task(name="decide: find the day's model", **IO_OPTIONS)
def find_day_forecaster(database_url: str, ticker: str, day: dt.date) -> Champion | None:
    """The model that made the LSTM forecast of a stored run of ``day``, if there is one."""
    with unit_of_work(get_engine(database_url)) as session:
        version = day_forecaster(session=session, ticker=ticker, as_of_date=day)
        return None if version is None else _describe(session, version)


def _describe(session, version) -> Champion:
    retrain = lineage_retrain(session=session, version=version)
    own = get_evaluation(
        session=session, model_version_id=version.id, as_of_date=version.as_of_date
    )
    info = ChampionInfo(
        version_id=version.id,
        as_of_date=version.as_of_date,
        retrained_as_of=retrain.as_of_date,
        config_hash=version.config_hash,
    )
    return Champion(
        info,
        version.kind,
        version.artifact_uri,
        version.sha256,
        (version.train_start, version.train_end),
        retrain_id=retrain.id,
        test_loss=own.test_loss if own is not None else None,
        live=version.promoted_at is not None,
    )


decide = task(name="decide", cache_policy=NO_CACHE)(policy.decide)
"""Step 3's verdict (`forecasting.policy.decide`), a task run of its own in the UI."""


@task(name="decide: read champion", **IO_OPTIONS)
def read_champion(champion: Champion) -> SavedModel | ModelArtifactError:
    """The champion's file, its sha256 checked; a missing or changed file comes back as its error.

    Such a file is not retried (waiting cannot mend it); the caller retrains without it and
    retires it.
    """
    try:
        return read_stored_model(champion.artifact_uri, sha256=champion.sha256)
    except ModelArtifactError as error:
        get_run_logger().error("champion v%d is unusable: %s", champion.info.version_id, error)
        return error


@dataclass(frozen=True, eq=False)
class Trained:
    """Step 4: the candidate model, a retrain (with its held-out record) or a fine-tune."""

    kind: str
    result: TrainingResult
    held_out: pd.DataFrame | None
    """A retrain's forecasts of its test windows, made before it learned them."""
    test_loss: float | None


@task(name="train: retrain", cache_policy=NO_CACHE)
def retrain_candidate(
    data: PreparedData, config: TrainingConfig, serving: ServingConfig
) -> Trained:
    """Fit a new model, score it out of sample, then walk it forward through the newest windows."""
    progress = TrainingProgress(
        kind="retrain", max_epochs=config.max_epochs, logger=get_run_logger()
    )
    fitted = train(data, config, callbacks=[progress])
    held_out = score_held_out(fitted.model, data, serving)
    # The validation and test windows were held out of the fit; the model that forecasts
    # learns them too, so that its newest target is the as-of date itself.
    newest = walk_forward(fitted.model, data.windows[len(data.train) :], config, mode="retrain")
    result = TrainingResult(
        model=newest.model,
        mode="retrain",
        epochs_run=fitted.epochs_run,
        best_epoch=fitted.best_epoch,
        best_validation_loss=fitted.best_validation_loss,
        history={**fitted.history, "walk_forward_loss": newest.history["loss"]},
        seconds=fitted.seconds + newest.seconds,
        training_windows=fitted.training_windows + newest.training_windows,
    )
    return Trained("retrain", result.saved(), held_out.record, held_out.test_loss)


@task(name="train: fine-tune", cache_policy=NO_CACHE)
def fine_tune_candidate(
    champion: SavedModel, data: PreparedData, config: TrainingConfig
) -> Trained:
    """Walk the champion forward through the newest windows, the as-of date's included."""
    return Trained("finetune", fine_tune(champion.load(), data, config).saved(), None, None)


@dataclass(frozen=True, eq=False)
class Record:
    """The realized record as of a day: what each forecaster forecast, and what happened."""

    lstm: pd.DataFrame
    """Every realized walk-forward forecast of the live lineage's LSTM, oldest first."""
    held_out: pd.DataFrame
    """The test window of the forecasting model's last retrain."""


@task(name="evaluate: walk-forward record", **IO_OPTIONS)
def read_record(database_url: str, ticker: str, through: dt.date, retrain_id: int | None) -> Record:
    """Read the live lineage's realized walk-forward record up to the as-of date (nothing
    after it), and the held-out test window of the forecasting model's retrain."""
    with unit_of_work(get_engine(database_url)) as session:
        lstm = read_walk_forward(
            session=session, ticker=ticker, method="lstm", through=through, live_only=True
        )
        if retrain_id is None:
            return Record(lstm=lstm, held_out=lstm.iloc[0:0])
        held_out = read_held_out(
            session=session, ticker=ticker, through=through, model_version_id=retrain_id
        )
        return Record(lstm=lstm, held_out=held_out)


@dataclass(frozen=True, eq=False)
class Contenders:
    """Each forecaster's forecast of the next session."""

    lstm: Forecast
    naive: Forecast
    baseline: pd.DataFrame
    """The naive + volatility forecasts of every past day, to score it on the LSTM's days."""
    garch: dict[str, tuple[Forecast, pd.DataFrame]] = field(default_factory=dict)
    """The GARCH-family contenders (``garch``, ``gjr``): today's forecast, and the forecasts of
    the deciding days; empty while the history is shorter than a fit needs."""

    def forecasts(self) -> tuple[Forecast, ...]:
        """Every contender's forecast of the next session, as stored."""
        return (self.lstm, self.naive, *(forecast for forecast, _ in self.garch.values()))

    def past(self) -> dict[str, pd.DataFrame]:
        """Each price-only contender's forecasts of past days, by name."""
        return {"naive": self.baseline, **{name: frame for name, (_, frame) in self.garch.items()}}


@task(name="predict", cache_policy=NO_CACHE)
def forecast_contenders(
    model: SavedModel,
    data: PreparedData,
    prices: pd.DataFrame,
    *,
    record: Record,
    held_out: pd.DataFrame,
    features: FeatureConfig,
    serving: ServingConfig,
) -> Contenders:
    """Forecast the next session with the LSTM (conformalized online), the naive baseline and the
    GARCH family."""
    quantiles = interval_quantiles(record.lstm, held_out, serving)
    baseline = naive_volatility_forecasts(
        prices["close"],
        volatility_window=features.volatility_window,
        calibration_window=baseline_calibration_window(
            len(prices), serving, features.volatility_window
        ),
    )
    # The GARCH family from the first day that can decide serving (the deciding record).
    days = pd.concat([record.lstm.tail(serving.window), held_out.tail(serving.window)])
    start = min(days["as_of_date"], default=data.last_date)
    garch = garch_contenders(prices["close"], pd.Timestamp(start).date(), serving)
    return Contenders(
        lstm=lstm_forecast(model.load(), data, quantiles),
        naive=naive_forecast(baseline),
        baseline=baseline,
        garch={name: (naive_forecast(frame, name), frame) for name, frame in garch.items()},
    )


def describe_database(database_url: str) -> str:
    """The database URL with the password masked, for summaries and logs."""
    return mask_url(get_engine(database_url).url)


def hyperparameters(config: TrainingConfig, result: TrainingResult) -> dict[str, Any]:
    """What to store about how a model was trained."""
    return {
        **config.model_dump(),
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "best_validation_loss": result.best_validation_loss,
        "training_windows": result.training_windows,
    }
