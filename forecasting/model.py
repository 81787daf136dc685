"""The LSTM: build, train, walk forward, save and load a self-contained ``.keras`` artifact.

The network is the seed's body (stacked LSTMs over 10-session windows) with a distributional
head: for each window it forecasts the location ``mu`` and scale ``sigma`` of the next log
return, fitted by the negative log-likelihood of a Student's t with ``STUDENT_T_DF`` degrees of
freedom (daily returns have fat tails; a Gaussian likelihood lets a few crashes inflate every
scale). Volatility is predictable, the mean barely is: the head's scale is where the model can
beat a baseline.

The saved model holds its own scaling: a ``Normalization`` layer with the fit windows' mean and
variance in front, and a :class:`DistributionHead` behind that maps the standardised outputs to
raw log-return units. Both keep their statistics in the layer config, so fine-tuning can never
change the champion's scaling; loading needs this module imported (it registers the head and
the loss with Keras' serialization).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import tempfile
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

# TensorFlow reads these when it is first imported; set them before keras pulls it in.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras
import numpy as np
from keras import ops

from forecasting.config import TrainingConfig
from forecasting.errors import ModelArtifactError
from forecasting.features import PreparedData, Scaling, Split

logger = logging.getLogger(__name__)

RETRAIN_HINT = "retrain with --mode retrain"
STUDENT_T_DF = 5.0
# softplus(x + SCALE_OFFSET) = 1 at x = 0: an untrained head starts at the target's own spread.
SCALE_OFFSET = math.log(math.e - 1.0)
SCALE_FLOOR = 1e-6
T_CONSTANT = (
    math.lgamma((STUDENT_T_DF + 1) / 2)
    - math.lgamma(STUDENT_T_DF / 2)
    - 0.5 * math.log(STUDENT_T_DF * math.pi)
)


@keras.saving.register_keras_serializable(package="nvda_forecast")
class DistributionHead(keras.layers.Layer):
    """Map two standardised outputs to ``[mu, sigma]`` of the next log return.

    ``mu = raw_0 * target_std + target_mean`` and
    ``sigma = softplus(raw_1 + SCALE_OFFSET) * target_std + SCALE_FLOOR``.
    """

    def __init__(self, target_mean: float = 0.0, target_std: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.target_mean = float(target_mean)
        # A floor keeps a degenerate, constant training target from zeroing every gradient.
        self.target_std = max(float(target_std), 1e-8)

    def call(self, raw):
        location = raw[:, 0:1] * self.target_std + self.target_mean
        scale = ops.softplus(raw[:, 1:2] + SCALE_OFFSET) * self.target_std + SCALE_FLOOR
        return ops.concatenate([location, scale], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "target_mean": self.target_mean,
            "target_std": self.target_std,
        }


@keras.saving.register_keras_serializable(package="nvda_forecast")
def student_t_nll(y_true, y_pred):
    """Mean negative log-likelihood of ``y_true`` under Student's t(``mu``, ``sigma``, df=5)."""
    target = ops.reshape(ops.cast(y_true, y_pred.dtype), (-1,))
    location, scale = y_pred[:, 0], y_pred[:, 1]
    z = (target - location) / scale
    df = STUDENT_T_DF
    return ops.mean(ops.log(scale) + 0.5 * (df + 1) * ops.log1p(z * z / df)) - T_CONSTANT


@dataclass(frozen=True, eq=False)
class SavedModel:
    """A model as its ``.keras`` file: the bytes and their sha256.

    Plain data, so it is what crosses a task (or process) boundary: a live ``keras.Model``
    holds TensorFlow state that neither pickles cheaply nor belongs to another process. Loading
    one costs about 0.1 s and no retrace (see the shared network below).
    """

    content: bytes
    sha256: str

    @classmethod
    def of(cls, model: keras.Model) -> SavedModel:
        """Save ``model``, which its caller hands on: it must not change it afterwards."""
        with tempfile.TemporaryDirectory(prefix="nvda-forecast-") as scratch:
            path = Path(scratch) / "model.keras"
            sha256 = save_model(model, path)
            saved = cls(path.read_bytes(), sha256)
        _handed_on.put(sha256, model)
        return saved

    def load(self) -> keras.Model:
        """The model, its bytes checked against the sha256 first."""
        check_sha256(self.content, self.sha256, source="handed between tasks")
        live = _handed_on.take(self.sha256)
        if live is not None:
            return live
        with tempfile.TemporaryDirectory(prefix="nvda-forecast-") as scratch:
            path = Path(scratch) / "model.keras"
            path.write_bytes(self.content)
            return load_model(path)  # the bytes were checked above


class _HandedOn:
    """The models this process saved last, by sha256, each taken by one later load.

    A fine-tune saves its candidate and the forecast task loads those same bytes next, in the
    same process: it takes the live model instead of rebuilding it from the file (about 0.13 s
    a day for the default LSTM). Taken once, because a loaded model may be changed in place (a
    fine-tune walks it forward); in another process the load reads the bytes, with the same
    weights (a test compares them).
    """

    def __init__(self, size: int = 2) -> None:
        self._models: OrderedDict[str, keras.Model] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def put(self, sha256: str, model: keras.Model) -> None:
        with self._lock:
            self._models[sha256] = model
            self._models.move_to_end(sha256)
            while len(self._models) > self._size:
                self._models.popitem(last=False)

    def take(self, sha256: str) -> keras.Model | None:
        with self._lock:
            return self._models.pop(sha256, None)


_handed_on = _HandedOn()


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
    seed: int = 42,
) -> keras.Model:
    """Stacked LSTMs and a distributional head, compiled with Adam and the Student-t NLL.

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
        Fit-window statistics built into the model: inputs are standardised by a
        ``Normalization`` layer and the head maps its outputs back to log-return units with
        ``target_mean`` and ``target_std``. Without it, inputs and outputs are taken as they are.
    seed : int
        Seeds every initializer and dropout layer: the same seed gives the same initial weights,
        whatever else the process (a Dask worker's threads, Prefect's client) draws from
        Python's global random generator, which Keras' unseeded layers would share.

    Returns
    -------
    keras.Model
        A compiled functional model mapping (batch, sequence_length, n_features) to
        (batch, 2): ``[mu, sigma]`` of the next log return.
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
    seeds = _layer_seeds(seed, 4 * layers + 1)
    for index in range(layers):
        hidden = keras.layers.LSTM(
            units,
            return_sequences=index < layers - 1,
            kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
            recurrent_initializer=keras.initializers.Orthogonal(seed=next(seeds)),
            seed=next(seeds),
            name=f"lstm_{index + 1}",
        )(hidden)
        dropout_seed = next(seeds)
        if dropout > 0:
            hidden = keras.layers.Dropout(dropout, seed=dropout_seed, name=f"dropout_{index + 1}")(
                hidden
            )
    raw = keras.layers.Dense(
        2, kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)), name="head"
    )(hidden)
    outputs = DistributionHead(
        target_mean=scaling.target_mean if scaling is not None else 0.0,
        target_std=scaling.target_std if scaling is not None else 1.0,
        name="distribution",
    )(raw)
    model = keras.Model(inputs, outputs, name="lstm_forecaster")
    _compile(model, learning_rate)
    return model


STEPS_PER_CALL = 32
"""Training steps Keras runs in one call into TensorFlow: a daily fine-tune's epoch, a third of
a retrain's. The same steps give the same numbers; on CPU, where Python's dispatch of each step
is a large part of a small LSTM's, they take about a third less time (docs/benchmarks.md)."""


def _compile(model: keras.Model, learning_rate: float) -> None:
    """A fresh Adam at ``learning_rate`` and the Student's t loss."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=student_t_nll,
        steps_per_execution=STEPS_PER_CALL,
    )


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


def _layer_seeds(seed: int, count: int) -> Iterator[int]:
    """``count`` independent layer seeds from ``seed``, in [1, 2**31)."""
    state = np.random.SeedSequence(seed).generate_state(count, dtype=np.uint32)
    return iter(int(value) % (2**31 - 1) + 1 for value in state)


# --- One traced network per architecture -------------------------------------------------------
#
# Keras traces a model's training and prediction steps the first time each is used: about 1.5 s
# for the default LSTM on 2 cores, against 0.2 s for the three epochs of a daily fine-tune. A
# run of many tickers loads a different champion for each, so it would trace for every ticker.
# Instead each process keeps one network per architecture, whose scaling lives in variables
# rather than in the graph; a model's weights and scaling are copied into it, it trains or
# predicts, and the trained weights are copied back. The saved ``.keras`` file is the model's
# own, unchanged: the shared network is never saved. Same numbers as the model's own fit, for
# the same seed (tests/forecasting/test_model.py checks it).


class _Standardize(keras.layers.Layer):
    """``Normalization`` with its mean and variance in variables (same formula, same dtype)."""

    def build(self, input_shape):
        shape = (input_shape[-1],)
        self.mean = self.add_weight(name="mean", shape=shape, initializer="zeros", trainable=False)
        self.variance = self.add_weight(
            name="variance", shape=shape, initializer="ones", trainable=False
        )

    def call(self, inputs):
        spread = ops.maximum(ops.sqrt(self.variance), keras.backend.epsilon())
        return ops.divide(ops.subtract(inputs, self.mean), spread)


class _VariableHead(DistributionHead):
    """:class:`DistributionHead` with its target statistics in variables (same ``call``)."""

    def build(self, input_shape):
        self.target_mean = self.add_weight(
            name="target_mean", shape=(), initializer="zeros", trainable=False
        )
        self.target_std = self.add_weight(
            name="target_std", shape=(), initializer="ones", trainable=False
        )


@dataclass(frozen=True)
class _Architecture:
    sequence_length: int
    n_features: int
    layers: int
    units: int


class _SharedNetwork:
    """The traced network of one architecture; models take turns on it, under its lock."""

    def __init__(self, architecture: _Architecture) -> None:
        self.lock = threading.RLock()
        # Constant initializers and a fixed seed: building it draws no random numbers, so a
        # seeded run gives the same weights whether or not this process built one before.
        inputs = keras.Input(shape=(architecture.sequence_length, architecture.n_features))
        hidden = _Standardize()(inputs)
        for index in range(architecture.layers):
            hidden = keras.layers.LSTM(
                architecture.units,
                return_sequences=index < architecture.layers - 1,
                kernel_initializer="zeros",
                recurrent_initializer="zeros",
                seed=0,
            )(hidden)
        raw = keras.layers.Dense(2, kernel_initializer="zeros")(hidden)
        self.network = keras.Model(inputs, _VariableHead()(raw))
        _compile(self.network, 1e-3)
        self._scaling = self.network.layers[1]
        self._head = self.network.layers[-1]

    def hold(self, model: keras.Model) -> None:
        """Give the network ``model``'s weights and built-in scaling."""
        for mine, theirs in zip(
            self.network.trainable_weights, model.trainable_weights, strict=True
        ):
            mine.assign(theirs.value)
        head = model.get_layer("distribution")
        self._head.target_mean.assign(head.target_mean)
        self._head.target_std.assign(head.target_std)
        n_features = model.input_shape[-1]
        mean, variance = np.zeros(n_features), np.ones(n_features)
        if any(layer.name == "input_scaling" for layer in model.layers):
            scaling = model.get_layer("input_scaling")
            mean = np.reshape(scaling.input_mean, -1)
            variance = np.reshape(scaling.input_variance, -1)
        self._scaling.mean.assign(np.asarray(mean, dtype="float32"))
        self._scaling.variance.assign(np.asarray(variance, dtype="float32"))

    def fresh_optimizer(self, learning_rate: float) -> None:
        """A new Adam's state (step 0, zero moments) at ``learning_rate``, with no retrace."""
        for variable in self.network.optimizer.variables:
            if variable.name == "learning_rate":
                variable.assign(learning_rate)
            else:
                variable.assign(np.zeros(variable.shape, dtype=variable.dtype))

    def give_back(self, model: keras.Model) -> None:
        """Copy the trained weights into ``model``, in place."""
        for theirs, mine in zip(
            model.trainable_weights, self.network.trainable_weights, strict=True
        ):
            theirs.assign(mine.value)


_shared_networks: dict[_Architecture, _SharedNetwork] = {}
_shared_networks_lock = threading.Lock()


def _shared_network(model: keras.Model) -> _SharedNetwork | None:
    """The shared network for ``model``'s architecture; None for a model it cannot stand in for
    (dropout draws random numbers in the step: such a model trains on its own trace)."""
    lstms = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    expected = {"window", "input_scaling", "head", "distribution"} | {
        f"lstm_{index + 1}" for index in range(len(lstms))
    }
    if not lstms or not {layer.name for layer in model.layers} <= expected:
        return None
    if not isinstance(model.get_layer("distribution"), DistributionHead):
        return None
    architecture = _Architecture(
        sequence_length=model.input_shape[1],
        n_features=model.input_shape[-1],
        layers=len(lstms),
        units=lstms[0].units,
    )
    if any(layer.units != architecture.units for layer in lstms):
        return None
    with _shared_networks_lock:
        if architecture not in _shared_networks:
            _shared_networks[architecture] = _SharedNetwork(architecture)
        return _shared_networks[architecture]


def predict_distribution(model: keras.Model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The forecast location and scale of the next log return for windows ``x``.

    Parameters
    ----------
    model : keras.Model
        A model from :func:`build_model` (or loaded with :func:`load_model`).
    x : numpy.ndarray
        Windows of shape (samples, sequence_length, features).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``mu`` and ``sigma``, float64 of shape (samples,).
    """
    shared = _shared_network(model)
    if shared is None:
        output = _predict(model, x)
    else:
        with shared.lock:
            shared.hold(model)
            output = _predict(shared.network, x)
    output = np.asarray(output, dtype="float64")
    return output[:, 0], output[:, 1]


def _predict(network: keras.Model, x: np.ndarray):
    # predict() builds a tf.data pipeline per call: for the few windows of a daily run, a
    # direct batch call is ten times faster and gives the same numbers.
    if len(x) <= 1024:
        return network.predict_on_batch(x)
    return network.predict(x, batch_size=1024, verbose=0)


def _fit(
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
    shared = _shared_network(model)
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
    return _fit(
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

    Recompiling makes Keras trace the training step again (about 3 s for the default LSTM on
    2 cores); a daily fine-tune needs the same fresh start either way, so an optimizer at the
    right rate only has its state (step count, moments) zeroed. A model loaded from its file
    and a model kept in memory then continue identically.
    """
    optimizer = getattr(model, "optimizer", None)
    fresh = (
        isinstance(optimizer, keras.optimizers.Adam)
        and model.loss is student_t_nll
        and math.isclose(float(optimizer.learning_rate), learning_rate, rel_tol=1e-6)
    )
    if not fresh:
        _compile(model, learning_rate)
        return
    for variable in optimizer.variables:
        if variable.name != "learning_rate":
            variable.assign(np.zeros(variable.shape, dtype=variable.dtype))


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
    return _fit(
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


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(content: bytes, sha256: str, *, source: str) -> None:
    """Raise :class:`ModelArtifactError` unless ``content`` has the recorded ``sha256``."""
    _check_digest(hashlib.sha256(content).hexdigest(), sha256, source=source)


def _check_digest(actual: str, sha256: str, *, source: str) -> None:
    if actual != sha256.lower():
        raise ModelArtifactError(
            f"model file {source} has sha256 {actual[:12]}..., not the recorded "
            f"{sha256[:12]}...: it was changed or corrupted; {RETRAIN_HINT}"
        )


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
    try:
        model.save(partial)
        os.replace(partial, target)
    except BaseException:
        # A full disk mid-write: nothing half written stays behind.
        partial.unlink(missing_ok=True)
        raise
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
        _check_digest(file_sha256(source), sha256, source=str(source))
    try:
        with warnings.catch_warnings():
            # The optimizer's state is not needed: a fine-tune starts it afresh.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            return keras.saving.load_model(source)
    except Exception as error:  # Keras raises many kinds (zip, JSON, h5, config) for bad files.
        raise ModelArtifactError(
            f"model file {source} cannot be read by Keras ({type(error).__name__}); {RETRAIN_HINT}"
        ) from error
