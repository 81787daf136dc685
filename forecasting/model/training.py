"""Training: a retrain from scratch, a walk forward (fine-tune) from a model, and their fit.

Every fit starts from a fresh Adam and the seed of its :class:`TrainingConfig`, on a tf.data
pipeline of its own; a model without dropout trains on the shared traced network of its
architecture (:mod:`forecasting.model.trace`), with the same numbers as on its own.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import keras
import numpy as np

from forecasting.config import TrainingConfig
from forecasting.features import PreparedData, Split
from forecasting.model import trace
from forecasting.model.artifact import RETRAIN_HINT, SavedModel
from forecasting.model.network import build_model, compile_model, reset_optimizer, student_t_nll

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class TrainingResult:
    """A trained model and how its training went (epochs are counted from 1)."""

    model: keras.Model | SavedModel
    """The live model where it was trained; its :class:`SavedModel` once handed on."""
    mode: str
    epochs_run: int
    best_epoch: int
    best_validation_loss: float | None
    """None for a walk-forward fine-tune, which has no held-out windows to stop on."""
    history: dict[str, list[float]]
    seconds: float
    training_windows: int

    def saved(self) -> TrainingResult:
        """This result with the model as its saved bytes, to hand to another task."""
        if isinstance(self.model, SavedModel):
            return self
        return replace(self, model=SavedModel.of(self.model))


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

    random.seed(seed)
    np.random.seed(seed)
    # Setting TensorFlow's seed also empties its kernel cache, and re-instantiating the traced
    # training step then costs about 0.75 s a fit; the shuffle's seed is the same whether or
    # not the cache was emptied (tf.data traces its shuffle anew for every fit), so it is
    # only set when it changes. TensorFlow has no public getter: without the private one, set it.
    try:
        from tensorflow.python.eager import context

        current = context.global_seed()
    except (ImportError, AttributeError):
        current = None
    if current != seed:
        tf.random.set_seed(seed)
    # Without this, TF may pick non-deterministic kernels (and XLA) and two runs drift apart.
    tf.config.experimental.enable_op_determinism()


def _batches(split: Split, batch_size: int, *, shuffle_seed: int | None = None):
    """``split`` as a tf.data pipeline of batches, reshuffled every epoch when seeded.

    Built here rather than by Keras from the arrays, to give it tf.data options that Keras'
    own pipeline lacks: no autotuning and a one-thread pool. With tf.data's defaults (threads
    for every core, autotuning), a fit waits on the pipeline's threads whenever the cores are
    busy: two one-thread Dask workers on 2 cores then each left about a fifth of its core idle.
    """
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((split.x, split.y))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(split), seed=shuffle_seed, reshuffle_each_iteration=True)
    options = tf.data.Options()
    options.autotune.enabled = False
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    return dataset.batch(batch_size).with_options(options)


def fit_seeded(
    model: keras.Model,
    windows: Split,
    *,
    validation: Split | None,
    mode: str,
    epochs: int,
    learning_rate: float,
    config: TrainingConfig,
    callbacks: Sequence[keras.callbacks.Callback],
) -> TrainingResult:
    """Fit ``model`` in place from a fresh Adam at ``learning_rate``, seeded by ``config``.

    The seed is set right before Keras' fit, after anything that may draw random numbers or
    trace (building the shared network, recompiling): the shuffle then never depends on what
    the process ran before.
    """
    shared = trace._shared_network(model)
    if shared is None:
        _ready_to_walk(model, learning_rate)
        set_seed(config.seed)
        return _fit_network(model, model, windows, validation, mode, epochs, config, callbacks)
    with shared.lock:
        shared.hold(model)
        shared.fresh_optimizer(learning_rate)
        set_seed(config.seed)
        result = _fit_network(
            shared.network, model, windows, validation, mode, epochs, config, callbacks
        )
        shared.give_back(model)
    return result


def _fit_network(
    network: keras.Model,
    model: keras.Model,
    windows: Split,
    validation: Split | None,
    mode: str,
    epochs: int,
    config: TrainingConfig,
    callbacks: Sequence[keras.callbacks.Callback],
) -> TrainingResult:
    """Run Keras' fit on ``network`` (``model`` itself or the shared network holding it)."""
    stopping = []
    if validation is not None:
        stopping.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.patience, restore_best_weights=True
            )
        )
    started = time.perf_counter()
    checked = None if validation is None else _batches(validation, config.batch_size)
    history = network.fit(
        _batches(windows, config.batch_size, shuffle_seed=config.seed),
        validation_data=checked,
        epochs=epochs,
        callbacks=[*stopping, *callbacks],
        shuffle=False,  # the pipeline reshuffles; Keras would only warn that it cannot
        verbose=0,
    )
    seconds = time.perf_counter() - started
    losses = {name: [float(value) for value in values] for name, values in history.history.items()}
    epochs_run = len(losses["loss"])
    best_epoch, best_validation_loss = epochs_run, None
    if validation is not None:
        best_index = int(np.argmin(losses["val_loss"]))
        best_epoch, best_validation_loss = best_index + 1, losses["val_loss"][best_index]
    if not np.isfinite(losses["loss"][-1]):
        raise ValueError(f"{mode} diverged: the training loss became {losses['loss'][-1]}")
    result = TrainingResult(
        model=model,
        mode=mode,
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        best_validation_loss=best_validation_loss,
        history=losses,
        seconds=seconds,
        training_windows=len(windows),
    )
    logger.info("%s: %d epochs on %d windows in %.1f s", mode, epochs_run, len(windows), seconds)
    return result


def train(
    data: PreparedData,
    config: TrainingConfig | None = None,
    *,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainingResult:
    """Train a new model on the fit windows, stopping early on the validation windows.

    The test windows stay unseen, so the caller can score the result out of sample before
    walking it forward through the newest windows with :func:`walk_forward`.

    Parameters
    ----------
    data : PreparedData
        Windows and fit-only scaling statistics from :func:`forecasting.features.prepare`.
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
    model = build_model(
        data.n_features,
        data.config.sequence_length,
        layers=config.layers,
        units=config.units,
        dropout=config.dropout,
        learning_rate=config.learning_rate,
        scaling=data.scaling,
        seed=config.seed,
    )
    return fit_seeded(
        model,
        data.train,
        validation=data.validation,
        mode="retrain",
        epochs=config.max_epochs,
        learning_rate=config.learning_rate,
        config=config,
        callbacks=callbacks,
    )


def _ready_to_walk(model: keras.Model, learning_rate: float) -> None:
    """Give ``model`` a fresh Adam at ``learning_rate``, without retracing when it has one.

    A daily fine-tune needs the same fresh start either way, so an optimizer at the right rate
    is only reset (:func:`~forecasting.model.network.reset_optimizer`), and anything else is
    recompiled. A model loaded from its file and a model kept in memory then continue
    identically.
    """
    optimizer = getattr(model, "optimizer", None)
    fresh = (
        isinstance(optimizer, keras.optimizers.Adam)
        and model.loss is student_t_nll
        and math.isclose(float(optimizer.learning_rate), learning_rate, rel_tol=1e-6)
    )
    if fresh:
        reset_optimizer(optimizer, learning_rate)
    else:
        compile_model(model, learning_rate)


def walk_forward(
    model: keras.Model,
    windows: Split,
    config: TrainingConfig | None = None,
    *,
    mode: str = "finetune",
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainingResult:
    """Continue training ``model`` itself on ``windows``, the newest ones, at a low rate.

    The model keeps its built-in scaling, gets a fresh Adam at ``finetune_learning_rate`` and
    makes ``finetune_epochs`` passes (there is nothing newer to stop early on). Its weights
    change in place: a caller that may still need the old weights keeps a copy or its file.

    Parameters
    ----------
    model : keras.Model
        The model to continue from (the champion, or a retrain scored on its test windows).
    windows : Split
        The windows to learn, e.g. ``data.windows[-config.finetune_windows:]``.
    config : TrainingConfig, optional
        Fine-tuning schedule; the defaults if omitted.
    mode : str
        What the result is called in logs and :class:`TrainingResult`.
    callbacks : sequence of keras.callbacks.Callback
        Extra callbacks, as for :func:`train`.

    Returns
    -------
    TrainingResult
        ``model`` walked forward, and its history.
    """
    config = config or TrainingConfig()
    expected = tuple(windows.x.shape[1:])
    if tuple(model.input_shape[1:]) != expected:
        raise ValueError(
            f"the model takes windows of shape {tuple(model.input_shape[1:])}, the data has "
            f"{expected}: the feature configuration changed, {RETRAIN_HINT}"
        )
    return fit_seeded(
        model,
        windows,
        validation=None,
        mode=mode,
        epochs=config.finetune_epochs,
        learning_rate=config.finetune_learning_rate,
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
    """Walk the champion forward through the newest ``finetune_windows`` windows of ``data``.

    Every window whose target has happened is a candidate, so the result has learned the
    session of the as-of date itself.
    """
    config = config or TrainingConfig()
    newest = min(config.finetune_windows, len(data.windows))
    return walk_forward(model, data.windows[-newest:], config, callbacks=callbacks)
