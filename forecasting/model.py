"""The LSTM: build, train, fine-tune, save and load a self-contained ``.keras`` artifact.

The saved model holds its own scaling: a ``Normalization`` layer with the training windows' mean
and variance in front, and a ``Rescaling`` layer that turns the standardised head output back
into a raw log return behind. Both are built-in Keras layers with their statistics in the layer
config, so ``keras.saving.load_model`` needs no custom objects, training fits raw log returns end
to end, and fine-tuning can never change the champion's scaling.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# TensorFlow reads these when it is first imported; set them before keras pulls it in.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras
import numpy as np

from forecasting.config import TrainingConfig
from forecasting.errors import ModelArtifactError
from forecasting.features import PreparedData, Scaling

logger = logging.getLogger(__name__)

RETRAIN_HINT = "retrain with --mode retrain"


@dataclass(frozen=True, eq=False)
class TrainingResult:
    """A trained model and how its training went (epochs are counted from 1)."""

    model: keras.Model
    mode: str
    epochs_run: int
    best_epoch: int
    best_validation_loss: float
    history: dict[str, list[float]]
    seconds: float
    training_windows: int


def set_seed(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras, and make TensorFlow's ops deterministic.

    Parameters
    ----------
    seed : int
        The random seed; the same seed gives the same weights and predictions on CPU.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    # Without this, TF may pick non-deterministic kernels (and XLA) and two runs drift apart.
    tf.config.experimental.enable_op_determinism()


def _check_build_arguments(
    n_features: int, sequence_length: int, layers: int, units: int, dropout: float, rate: float
) -> None:
    for name, value in (
        ("n_features", n_features),
        ("sequence_length", sequence_length),
        ("layers", layers),
        ("units", units),
    ):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    if not rate > 0.0:
        raise ValueError(f"learning_rate must be positive, got {rate!r}")


def build_model(
    n_features: int,
    sequence_length: int = 10,
    *,
    layers: int = 3,
    units: int = 50,
    dropout: float = 0.0,
    learning_rate: float = 1e-3,
    scaling: Scaling | None = None,
    head_activation: str = "linear",
) -> keras.Model:
    """Stacked LSTMs and a Dense(1) head, compiled with Adam and mean squared error.

    Parameters
    ----------
    n_features : int
        Features per day of a window.
    sequence_length : int
        Days per window.
    layers, units : int
        How many LSTM layers are stacked, and the units of each (the original: 3 x 50).
    dropout : float
        Rate of a ``Dropout`` layer after each LSTM; 0 (the original) adds none.
    learning_rate : float
        Adam's learning rate.
    scaling : Scaling, optional
        Training statistics to build into the model: inputs are standardised by a
        ``Normalization`` layer and the head's output is mapped back to target units by
        ``Rescaling(scale=target_std, offset=target_mean)``. Without it the model takes and
        returns values as they are (the original blog's design, with external MinMax scaling).
    head_activation : str
        The head's activation: ``"linear"`` (default; returns are negative half the time) or
        ``"relu"`` to reproduce the original blog.

    Returns
    -------
    keras.Model
        A compiled functional model mapping (batch, sequence_length, n_features) to (batch, 1).
    """
    _check_build_arguments(n_features, sequence_length, layers, units, dropout, learning_rate)
    inputs = keras.Input(shape=(sequence_length, n_features), name="window")
    hidden = inputs
    if scaling is not None:
        if len(scaling.feature_mean) != n_features:
            raise ValueError(
                f"scaling has {len(scaling.feature_mean)} feature statistics, not {n_features}"
            )
        hidden = keras.layers.Normalization(
            axis=-1,
            mean=[float(value) for value in scaling.feature_mean],
            variance=[float(value) ** 2 for value in scaling.feature_std],
            name="input_scaling",
        )(hidden)
    for index in range(layers):
        hidden = keras.layers.LSTM(
            units, return_sequences=index < layers - 1, name=f"lstm_{index + 1}"
        )(hidden)
        if dropout > 0:
            hidden = keras.layers.Dropout(dropout, name=f"dropout_{index + 1}")(hidden)
    outputs = keras.layers.Dense(1, activation=head_activation, name="head")(hidden)
    if scaling is not None:
        outputs = keras.layers.Rescaling(
            # A floor keeps a degenerate, constant training target from zeroing every gradient.
            scale=max(float(scaling.target_std), 1e-8),
            offset=float(scaling.target_mean),
            name="target_scaling",
        )(outputs)
    model = keras.Model(inputs, outputs, name="lstm_forecaster")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    return model


def _fit(
    model: keras.Model,
    data: PreparedData,
    x: np.ndarray,
    y: np.ndarray,
    *,
    mode: str,
    epochs: int,
    config: TrainingConfig,
    callbacks: Sequence[keras.callbacks.Callback],
) -> TrainingResult:
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience, restore_best_weights=True
    )
    started = time.perf_counter()
    history = model.fit(
        x,
        y,
        validation_data=(data.validation.x, data.validation.y),
        epochs=epochs,
        batch_size=config.batch_size,
        callbacks=[early_stopping, *callbacks],
        shuffle=True,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    losses = {name: [float(value) for value in values] for name, values in history.history.items()}
    validation_losses = losses["val_loss"]
    best_index = int(np.argmin(validation_losses))
    result = TrainingResult(
        model=model,
        mode=mode,
        epochs_run=len(validation_losses),
        best_epoch=best_index + 1,
        best_validation_loss=validation_losses[best_index],
        history=losses,
        seconds=seconds,
        training_windows=len(y),
    )
    logger.info(
        "%s: %d epochs in %.1f s, best epoch %d (validation loss %.3g)",
        mode,
        result.epochs_run,
        seconds,
        result.best_epoch,
        result.best_validation_loss,
    )
    return result


def train(
    data: PreparedData,
    config: TrainingConfig | None = None,
    *,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainingResult:
    """Train a new model from scratch on the training windows.

    Parameters
    ----------
    data : PreparedData
        Windows and training-only scaling statistics from :func:`forecasting.features.prepare`.
    config : TrainingConfig, optional
        Architecture and schedule; the defaults if omitted.
    callbacks : sequence of keras.callbacks.Callback
        Extra callbacks (e.g. per-epoch progress), run after early stopping's.

    Returns
    -------
    TrainingResult
        The model with its best-validation-loss weights restored, and the training history.
    """
    config = config or TrainingConfig()
    set_seed(config.seed)
    model = build_model(
        data.n_features,
        data.config.sequence_length,
        layers=config.layers,
        units=config.units,
        dropout=config.dropout,
        learning_rate=config.learning_rate,
        scaling=data.scaling,
    )
    return _fit(
        model,
        data,
        data.train.x,
        data.train.y,
        mode="retrain",
        epochs=config.max_epochs,
        config=config,
        callbacks=callbacks,
    )


def fine_tune(
    model: keras.Model,
    data: PreparedData,
    config: TrainingConfig | None = None,
    *,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainingResult:
    """Continue training a copy of ``model`` on the newest training windows.

    The copy keeps the model's built-in scaling (the champion's training statistics), is
    recompiled with ``finetune_learning_rate`` and trains for at most ``finetune_epochs`` on the
    newest ``finetune_windows`` training windows, with early stopping on validation loss.
    ``model`` itself is left unchanged, so a rejected candidate costs nothing.

    Parameters
    ----------
    model : keras.Model
        The champion, e.g. from :func:`load_model`.
    data : PreparedData
        Windows built with the same feature configuration as the champion's.
    config : TrainingConfig, optional
        Fine-tuning schedule; the defaults if omitted.
    callbacks : sequence of keras.callbacks.Callback
        Extra callbacks, as for :func:`train`.

    Returns
    -------
    TrainingResult
        The fine-tuned copy and its history.
    """
    config = config or TrainingConfig()
    expected = (data.config.sequence_length, data.n_features)
    if tuple(model.input_shape[1:]) != expected:
        raise ValueError(
            f"the model takes windows of shape {tuple(model.input_shape[1:])}, the data has "
            f"{expected}: the feature configuration changed, {RETRAIN_HINT}"
        )
    set_seed(config.seed)
    candidate = keras.models.clone_model(model)
    candidate.set_weights(model.get_weights())
    candidate.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.finetune_learning_rate), loss="mse"
    )
    newest = min(config.finetune_windows, len(data.train))
    return _fit(
        candidate,
        data,
        data.train.x[-newest:],
        data.train.y[-newest:],
        mode="finetune",
        epochs=config.finetune_epochs,
        config=config,
        callbacks=callbacks,
    )


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(model: keras.Model, path: str | os.PathLike[str]) -> str:
    """Write ``model`` as a ``.keras`` file, atomically, and return its sha256.

    Parameters
    ----------
    model : keras.Model
        The model to save (architecture, weights, built-in scaling, optimizer state).
    path : str or os.PathLike
        Destination ending in ``.keras``; missing parent folders are created.

    Returns
    -------
    str
        The hex sha256 of the written file, to record with the model version.
    """
    target = Path(path)
    if target.suffix != ".keras":
        raise ValueError(f"a model file must end in .keras, got {str(target)!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so a crash never leaves a half-written artifact.
    partial = target.with_name(f".{target.stem}.partial.keras")
    model.save(partial)
    os.replace(partial, target)
    return file_sha256(target)


def load_model(path: str | os.PathLike[str], *, sha256: str | None = None) -> keras.Model:
    """Load a ``.keras`` file written by :func:`save_model`, checking its sha256 first.

    Parameters
    ----------
    path : str or os.PathLike
        The model file.
    sha256 : str or None
        The recorded hex sha256; ``None`` skips the check.

    Returns
    -------
    keras.Model
        The compiled model, ready to predict or fine-tune.

    Raises
    ------
    ModelArtifactError
        If the file is missing, does not match ``sha256``, or cannot be read by Keras.
    """
    source = Path(path)
    if not source.is_file():
        raise ModelArtifactError(f"model file {source} is missing; {RETRAIN_HINT}")
    if sha256 is not None:
        actual = file_sha256(source)
        if actual != sha256.lower():
            raise ModelArtifactError(
                f"model file {source} has sha256 {actual[:12]}..., not the recorded "
                f"{sha256[:12]}...: it was changed or corrupted; {RETRAIN_HINT}"
            )
    try:
        return keras.saving.load_model(source)
    except Exception as error:  # Keras raises many kinds (zip, JSON, h5, config) for bad files.
        raise ModelArtifactError(
            f"model file {source} cannot be read by Keras ({type(error).__name__}); {RETRAIN_HINT}"
        ) from error
