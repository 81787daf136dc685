"""One traced network per architecture, shared by every model of it in the process.

Keras traces a model's training and prediction steps the first time each is used: about 1.5 s
for the default LSTM on 2 cores, against 0.2 s for the three epochs of a daily fine-tune. A
run of many tickers loads a different champion for each, so it would trace for every ticker.
Instead each process keeps one network per architecture, whose scaling lives in variables
rather than in the graph; a model's weights and scaling are copied into it, it trains or
predicts, and the trained weights are copied back. The saved ``.keras`` file is the model's
own, unchanged: the shared network is never saved. Same numbers as the model's own fit, for
the same seed (tests/forecasting/test_model.py checks it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from forecasting.model.network import DistributionHead, compile_model, lstm_stack, reset_optimizer


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
        hidden = lstm_stack(_Standardize()(inputs), architecture.layers, architecture.units)
        raw = keras.layers.Dense(2, kernel_initializer="zeros")(hidden)
        self.network = keras.Model(inputs, _VariableHead()(raw))
        compile_model(self.network, 1e-3)
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
        reset_optimizer(self.network.optimizer, learning_rate)

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
        A model from :func:`~forecasting.model.network.build_model` (or loaded with
        :func:`~forecasting.model.artifact.load_model`).
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
