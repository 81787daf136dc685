"""The network: stacked LSTMs and a distributional head, its loss, and its optimizer.

For each window the head forecasts the location ``mu`` and scale ``sigma`` of the next log
return, fitted by the negative log-likelihood of a Student's t with ``STUDENT_T_DF`` degrees of
freedom (daily returns have fat tails; a Gaussian likelihood lets a few crashes inflate every
scale). Volatility is predictable, the mean barely is: the head's scale is where the model can
beat a baseline.

The model holds its own scaling: a ``Normalization`` layer with the fit windows' mean and
variance in front, and a :class:`DistributionHead` behind that maps the standardised outputs to
raw log-return units. Both keep their statistics in the layer config, so fine-tuning can never
change the champion's scaling; loading needs this module imported (it registers the head and
the loss with Keras' serialization).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import keras
import numpy as np
from keras import ops

from forecasting.features import Scaling

STUDENT_T_DF = 5.0
# softplus(x + SCALE_OFFSET) = 1 at x = 0: an untrained head starts at the target's own spread.
SCALE_OFFSET = math.log(math.e - 1.0)
SCALE_FLOOR = 1e-6
T_CONSTANT = (
    math.lgamma((STUDENT_T_DF + 1) / 2)
    - math.lgamma(STUDENT_T_DF / 2)
    - 0.5 * math.log(STUDENT_T_DF * math.pi)
)

STEPS_PER_CALL = 32
"""Training steps Keras runs in one call into TensorFlow: a daily fine-tune's epoch, a third of
a retrain's. The same steps give the same numbers; on CPU, where Python's dispatch of each step
is a large part of a small LSTM's, they take about a third less time (docs/benchmarks.md)."""


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
        hidden = input_scaling(scaling)(hidden)
    seeds = layer_seeds(seed, 4 * layers + 1)
    hidden = lstm_stack(hidden, layers, units, dropout=dropout, seeds=seeds)
    raw = keras.layers.Dense(
        2, kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)), name="head"
    )(hidden)
    outputs = DistributionHead(
        target_mean=scaling.target_mean if scaling is not None else 0.0,
        target_std=scaling.target_std if scaling is not None else 1.0,
        name="distribution",
    )(raw)
    model = keras.Model(inputs, outputs, name="lstm_forecaster")
    compile_model(model, learning_rate)
    return model


def lstm_stack(
    hidden, layers: int, units: int, *, dropout: float = 0.0, seeds: Iterator[int] | None = None
):
    """``layers`` LSTMs of ``units`` each on ``hidden`` (the last one returns its final state).

    With ``seeds``, each layer takes four: its kernel's, its recurrent kernel's, its own and its
    dropout's (taken with or without dropout, so the rate never changes the other seeds), and a
    ``Dropout`` follows it when ``dropout`` > 0. Without, the layers start from zeros and draw
    no random numbers (the shared network of :mod:`forecasting.model.trace`).
    """
    for index in range(layers):
        if seeds is None:
            kernel, recurrent, seed, dropout_seed = "zeros", "zeros", 0, 0
        else:
            kernel = keras.initializers.GlorotUniform(seed=next(seeds))
            recurrent = keras.initializers.Orthogonal(seed=next(seeds))
            seed, dropout_seed = next(seeds), next(seeds)
        hidden = keras.layers.LSTM(
            units,
            return_sequences=index < layers - 1,
            kernel_initializer=kernel,
            recurrent_initializer=recurrent,
            seed=seed,
            name=f"lstm_{index + 1}",
        )(hidden)
        if dropout > 0:
            hidden = keras.layers.Dropout(dropout, seed=dropout_seed, name=f"dropout_{index + 1}")(
                hidden
            )
    return hidden


def compile_model(model: keras.Model, learning_rate: float) -> None:
    """A fresh Adam at ``learning_rate`` and the Student's t loss."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss=student_t_nll,
        steps_per_execution=STEPS_PER_CALL,
    )


def reset_optimizer(optimizer: keras.optimizers.Optimizer, learning_rate: float) -> None:
    """Start ``optimizer`` afresh at ``learning_rate`` (step 0, zero moments), with no retrace.

    Recompiling would make Keras trace the training step again (about 3 s for the default LSTM
    on 2 cores); zeroing the state of the compiled optimizer gives the same fresh start.
    """
    for variable in optimizer.variables:
        if variable.name == "learning_rate":
            variable.assign(learning_rate)
        else:
            variable.assign(np.zeros(variable.shape, dtype=variable.dtype))


def input_scaling(scaling) -> keras.layers.Normalization:
    """The layer that standardizes the inputs with the fit windows' statistics (``Scaling``)."""
    return keras.layers.Normalization(
        axis=-1,
        mean=[float(value) for value in scaling.feature_mean],
        variance=[float(value) ** 2 for value in scaling.feature_std],
        name="input_scaling",
    )


def layer_seeds(seed: int, count: int) -> Iterator[int]:
    """``count`` independent layer seeds from ``seed``, in [1, 2**31)."""
    state = np.random.SeedSequence(seed).generate_state(count, dtype=np.uint32)
    return iter(int(value) % (2**31 - 1) + 1 for value in state)
