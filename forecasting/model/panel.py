"""One distributional LSTM fitted across tickers: the panel network.

The per-ticker model (:mod:`forecasting.model.network`) learns each ticker from its own history
only. The panel network learns one set of LSTM weights from the pooled windows of many tickers
(:mod:`forecasting.model.panel_data`: the per-ticker features, the range-based volatility
inputs, pooled fit-only standardization), and tells tickers apart by a learned embedding:

```
window (L x F) -> Normalization -> LSTM x layers --\\
                                                    concatenate -> Dense(2) -> DistributionHead
ticker id      -> Embedding(tickers + 1, dim) -----/
```

Id 0 is the unknown ticker: a seeded share of every ticker's fit windows (``unknown_share``)
carries it, so its embedding learns a ticker like those of the fit, and a ticker the fit never
saw is forecast with it. With ``embedding_dim = 0`` the network has no ticker input at all and
pools every ticker. The head, the Student-t loss (df = ``STUDENT_T_DF``), the optimizer, the
seeded initializers and the fit (its tf.data pipeline, early stopping, the seed set right
before it) are the per-ticker model's.

A panel is one ``.keras`` file: the Keras model and, beside Keras' own entries in the zip, a
``panel.json`` with everything else (tickers and ids, the date span each contributed, the
statistics, the configuration, how the fit went). Its sha256 is that of the whole file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import keras
import numpy as np
import pandas as pd

from forecasting.errors import ModelArtifactError
from forecasting.features import Scaling, Split
from forecasting.model.artifact import (
    RETRAIN_HINT,
    SavedModel,
    check_sha256,
    file_sha256,
    load_model,
    save_model,
)
from forecasting.model.network import (
    STUDENT_T_DF,
    DistributionHead,
    compile_model,
    input_scaling,
    layer_seeds,
    lstm_stack,
    reset_optimizer,
)
from forecasting.model.panel_data import (
    UNKNOWN_TICKER_ID,
    PanelConfig,
    next_window,
    panel_fields,
    panel_metadata,
    prepare_panel,
)
from forecasting.model.training import fit_seeded

METADATA_ENTRY = "panel.json"


class PanelForecast(NamedTuple):
    """The next session's log return: Student's t with this location, scale and df."""

    location: float
    scale: float
    df: float


@dataclass(frozen=True, eq=False)
class PanelModel:
    """A fitted panel network and what it was fitted on."""

    model: keras.Model
    config: PanelConfig
    seed: int
    as_of: dt.date
    ticker_ids: dict[str, int]
    """Ticker -> embedding id (1, 2, ... in sorted order); any other ticker is id 0."""
    spans: dict[str, tuple[dt.date, dt.date]]
    """Per ticker: the oldest bar its first window reads, and its newest window's target."""
    skipped: tuple[str, ...]
    """Tickers given but with too little history up to ``as_of``: forecast as unknown."""
    feature_names: tuple[str, ...]
    scaling: Scaling
    """Pooled statistics of the fit windows (also built into ``model``)."""
    fit_windows: int
    validation_windows: int
    epochs_run: int
    """Epochs of the fit proper (early stopping counts from 1), without the walk forward."""
    best_validation_loss: float
    seconds: float
    """The whole :func:`fit_panel`: windows, build, fit and walk forward."""

    @property
    def tickers(self) -> tuple[str, ...]:
        """The tickers the fit learned, in id order."""
        return tuple(self.ticker_ids)


def build_panel_model(
    n_features: int,
    sequence_length: int,
    n_tickers: int,
    *,
    config: PanelConfig,
    scaling: Scaling,
    seed: int,
) -> keras.Model:
    """The panel network, compiled with Adam and the Student-t NLL.

    Parameters
    ----------
    n_features, sequence_length : int
        Features per day and days per window.
    n_tickers : int
        Tickers of the fit; the embedding has one more row, id 0 for the unknown ticker.
    config : PanelConfig
        ``training``'s layers, units, dropout and learning rate, and ``embedding_dim``.
    scaling : Scaling
        Pooled fit statistics: a ``Normalization`` layer in front, the head behind.
    seed : int
        Seeds every initializer (as :func:`forecasting.model.build_model` does).

    Returns
    -------
    keras.Model
        Inputs ``window`` (batch, sequence_length, n_features) and, unless ``embedding_dim``
        is 0, ``ticker`` (batch,) int32; output (batch, 2): ``[mu, sigma]``.
    """
    training = config.training
    window = keras.Input(shape=(sequence_length, n_features), name="window")
    hidden = input_scaling(scaling)(window)
    seeds = layer_seeds(seed, 4 * training.layers + 2)
    hidden = lstm_stack(
        hidden, training.layers, training.units, dropout=training.dropout, seeds=seeds
    )
    head_seed, inputs = next(seeds), [window]
    if config.embedding_dim > 0:
        ticker = keras.Input(shape=(), dtype="int32", name="ticker")
        embedded = keras.layers.Embedding(
            n_tickers + 1,
            config.embedding_dim,
            embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=next(seeds)),
            name="ticker_embedding",
        )(ticker)
        hidden = keras.layers.Concatenate(name="with_ticker")([hidden, embedded])
        inputs.append(ticker)
    raw = keras.layers.Dense(
        2, kernel_initializer=keras.initializers.GlorotUniform(seed=head_seed), name="head"
    )(hidden)
    outputs = DistributionHead(
        target_mean=scaling.target_mean, target_std=scaling.target_std, name="distribution"
    )(raw)
    model = keras.Model(inputs, outputs, name="panel_forecaster")
    compile_model(model, training.learning_rate)
    return model


def _inputs(config: PanelConfig, windows: np.ndarray, ids: np.ndarray) -> Any:
    """What the network takes: the windows, with their ticker ids unless it pools them all."""
    if config.embedding_dim == 0:
        return windows
    return {"window": windows, "ticker": np.asarray(ids, dtype="int32")}


def _keras_windows(config: PanelConfig, split: Split, ids: np.ndarray) -> Split:
    # The training pipeline slices ``split.x`` as Keras' inputs: a dict of the two here.
    return replace(split, x=_inputs(config, split.x, ids))


def fit_panel(
    prices_by_ticker: Mapping[str, pd.DataFrame],
    as_of: dt.date,
    config: PanelConfig | None = None,
    seed: int | None = None,
) -> PanelModel:
    """Fit one panel network on every ticker's windows up to ``as_of``.

    Parameters
    ----------
    prices_by_ticker : Mapping[str, pandas.DataFrame]
        Validated daily bars per ticker (as ``forecasting.prices`` returns them); bars after
        ``as_of`` are dropped before anything is computed, for every ticker.
    as_of : datetime.date
        The last day any window or target may reach.
    config : PanelConfig, optional
        Features, architecture, schedule and embedding; the defaults if omitted.
    seed : int, optional
        Seeds the initializers, the shuffle and the unknown-ticker draw; ``config.training``'s
        seed if omitted. The same seed gives the same weights on CPU.

    Returns
    -------
    PanelModel
        The network with its best-validation-loss weights restored (then walked forward
        through the validation windows when ``config.walk_forward``), and its provenance.
    """
    started = time.perf_counter()
    config = config or PanelConfig()
    seed = config.training.seed if seed is None else seed
    training = config.training.model_copy(update={"seed": seed})
    data = prepare_panel(prices_by_ticker, as_of, config, seed=seed)
    model = build_panel_model(
        len(data.feature_names),
        config.features.sequence_length,
        len(data.ticker_ids),
        config=config,
        scaling=data.scaling,
        seed=seed,
    )
    validation = _keras_windows(config, data.validation, data.validation_ids)
    fitted = fit_seeded(
        model,
        _keras_windows(config, data.fit, data.fit_ids),
        validation=validation,
        mode="panel retrain",
        epochs=training.max_epochs,
        learning_rate=training.learning_rate,
        config=training,
        callbacks=(),
    )
    if config.walk_forward:
        # The new rate in the compiled optimizer, so that the fit below needs no second trace
        # (about 3.5 s for a 3 x 50 panel on 2 cores); it starts from a fresh state either way.
        reset_optimizer(model.optimizer, training.finetune_learning_rate)
        fit_seeded(
            model,
            validation,
            validation=None,
            mode="panel walk-forward",
            epochs=training.finetune_epochs,
            learning_rate=training.finetune_learning_rate,
            config=training,
            callbacks=(),
        )
    return PanelModel(
        model=model,
        config=config,
        seed=seed,
        as_of=pd.Timestamp(as_of).date(),
        ticker_ids=data.ticker_ids,
        spans=data.spans,
        skipped=data.skipped,
        feature_names=data.feature_names,
        scaling=data.scaling,
        fit_windows=len(data.fit),
        validation_windows=len(data.validation),
        epochs_run=fitted.epochs_run,
        best_validation_loss=float(fitted.best_validation_loss),
        seconds=time.perf_counter() - started,
    )


def panel_forecast(
    panel: PanelModel, prices: pd.DataFrame, ticker: str, as_of: dt.date
) -> PanelForecast:
    """The next session's log-return distribution of ``ticker``, from its bars up to ``as_of``.

    Parameters
    ----------
    panel : PanelModel
        A panel fitted as of ``as_of`` or earlier.
    prices : pandas.DataFrame
        The ticker's validated bars; those after ``as_of`` are never read.
    ticker : str
        Its name; a ticker the panel was not fitted on is forecast as the unknown ticker.
    as_of : datetime.date
        The forecast's day: the window ends at the last bar up to it.

    Returns
    -------
    PanelForecast
        ``(location, scale, df)`` of the next log return.

    Raises
    ------
    ValueError
        If ``as_of`` is before the panel's own: its weights have seen later sessions.
    """
    if pd.Timestamp(as_of).date() < panel.as_of:
        raise ValueError(
            f"the panel was fitted on sessions up to {panel.as_of}: a forecast as of {as_of} "
            "would use later data; fit a panel as of that day"
        )
    window, _ = next_window(prices, as_of, panel.config.features)
    if window.shape[-1] != len(panel.feature_names):
        raise ValueError(
            f"the panel takes {len(panel.feature_names)} features a day, the prices give "
            f"{window.shape[-1]}"
        )
    ticker_id = np.array([panel.ticker_ids.get(ticker, UNKNOWN_TICKER_ID)])
    output = np.asarray(
        panel.model.predict_on_batch(_inputs(panel.config, window, ticker_id)), dtype="float64"
    )
    return PanelForecast(float(output[0, 0]), float(output[0, 1]), STUDENT_T_DF)


def save_panel(panel: PanelModel, path: str | os.PathLike[str]) -> str:
    """Write ``panel`` as one ``.keras`` file, atomically, and return its sha256.

    The Keras model is written by :func:`forecasting.model.save_model`; ``panel.json`` is then
    added to the same zip (Keras' loader reads only its own entries).
    """
    target = Path(path)
    if target.suffix != ".keras":
        raise ValueError(f"a model file must end in .keras, got {str(target)!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Staged beside the target, so that the final rename never crosses file systems.
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".panel-") as scratch:
        staged = Path(scratch) / "panel.keras"
        save_model(panel.model, staged)
        with zipfile.ZipFile(staged, "a") as archive:
            archive.writestr(METADATA_ENTRY, json.dumps(panel_metadata(panel), sort_keys=True))
        os.replace(staged, target)
    return file_sha256(target)


def load_panel(path: str | os.PathLike[str], *, sha256: str | None = None) -> PanelModel:
    """Load a panel written by :func:`save_panel`, checking its sha256 first.

    Raises
    ------
    ModelArtifactError
        If the file is missing, does not match ``sha256``, cannot be read by Keras, or holds no
        panel metadata (a per-ticker model's file).
    """
    model = load_model(path, sha256=sha256)
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = json.loads(archive.read(METADATA_ENTRY))
        return PanelModel(model=model, **panel_fields(metadata))
    except (KeyError, ValueError, TypeError, zipfile.BadZipFile) as error:
        raise ModelArtifactError(
            f"model file {path} holds no readable panel metadata ({type(error).__name__}); "
            f"{RETRAIN_HINT}"
        ) from error


def saved_panel(panel: PanelModel) -> SavedModel:
    """``panel`` as its file's bytes and sha256, to hand to another task or process."""
    with tempfile.TemporaryDirectory(prefix="nvda-forecast-") as scratch:
        path = Path(scratch) / "panel.keras"
        sha256 = save_panel(panel, path)
        return SavedModel(path.read_bytes(), sha256)


def load_saved_panel(saved: SavedModel) -> PanelModel:
    """The panel of :func:`saved_panel`'s bytes, checked against their sha256 first."""
    check_sha256(saved.content, saved.sha256, source="handed between tasks")
    with tempfile.TemporaryDirectory(prefix="nvda-forecast-") as scratch:
        path = Path(scratch) / "panel.keras"
        path.write_bytes(saved.content)
        return load_panel(path)
