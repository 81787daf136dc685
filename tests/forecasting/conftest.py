"""Shared fixtures for the price, feature, model and evaluation tests: small, seeded,
deterministic."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from forecasting.calendar import trading_days
from forecasting.config import FeatureConfig, TrainingConfig

# A Friday before a Monday holiday (Labor Day 2024), so the next session is Tuesday 2024-09-03.
LAST_DAY = "2024-08-30"


def synthetic_prices(days: int = 300, *, seed: int = 7, end: str = LAST_DAY) -> pd.DataFrame:
    """A seeded geometric random walk on real NYSE sessions, shaped like ``load_prices``."""
    generator = np.random.default_rng(seed)
    sessions = pd.DatetimeIndex(trading_days("2000-01-03", end)[-days:], name="date")
    returns = generator.normal(0.0005, 0.02, days)
    close = 50.0 * np.exp(np.cumsum(returns))
    open_ = close * np.exp(generator.normal(0.0, 0.005, days))
    high = np.maximum(open_, close) * np.exp(np.abs(generator.normal(0.0, 0.01, days)))
    low = np.minimum(open_, close) * np.exp(-np.abs(generator.normal(0.0, 0.01, days)))
    volume = np.round(1e6 * np.exp(generator.normal(0.0, 0.3, days)))
    return pd.DataFrame(
        {
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "adj_close": close,
            "volume": volume,
        },
        index=sessions,
    )


def consistent_bars(start: str = "2025-01-02", end: str = "2025-02-12") -> pd.DataFrame:
    """Consistent bars on every NYSE session from start to end, volumes in round lots."""
    days = pd.DatetimeIndex(trading_days(start, end), name="date")
    close = 100.0 + (days - pd.Timestamp("2024-01-01")).days * 0.1  # the same on any range
    return pd.DataFrame(
        {
            "open": close - 1,
            "high": close + 2,
            "low": close - 2,
            "close": close,
            "adj_close": close * 0.999,
            "volume": np.full(len(days), 200_000_000.0) + 100 * np.arange(len(days)),
        },
        index=days,
    )


@pytest.fixture(scope="session")
def prices() -> pd.DataFrame:
    """300 sessions ending on :data:`LAST_DAY`."""
    return synthetic_prices()


@pytest.fixture(scope="session")
def feature_config() -> FeatureConfig:
    return FeatureConfig()


@pytest.fixture(scope="session")
def prepared(prices, feature_config):
    from forecasting.features import prepare

    return prepare(prices, feature_config)


@pytest.fixture(scope="session")
def tiny_training() -> TrainingConfig:
    """Small enough to train in well under a second on one core."""
    return TrainingConfig(
        layers=1,
        units=4,
        max_epochs=3,
        batch_size=64,
        patience=2,
        learning_rate=1e-2,
        finetune_epochs=2,
        finetune_windows=50,
        # Unlike the fit's rate, as in the defaults: walking a fresh retrain forward recompiles.
        finetune_learning_rate=5e-3,
        seed=3,
    )


@pytest.fixture(scope="session")
def trained(prepared, tiny_training):
    """One tiny model trained once for the whole session; tests must not modify it."""
    from forecasting.model import train

    return train(prepared, tiny_training)


def constant_model(
    sequence_length: int, n_features: int, location: float, scale: float, *, scaling=None
):
    """A tiny ``build_model`` network that forecasts ``[location, scale]`` for every window.

    The Dense head's kernel is zero, so its output is its bias, set to invert the
    :class:`~forecasting.model.DistributionHead` (without ``scaling``: mean 0, std 1).
    """
    from forecasting.model import SCALE_FLOOR, SCALE_OFFSET, build_model

    model = build_model(n_features, sequence_length, layers=1, units=2, scaling=scaling)
    head = model.get_layer("distribution")
    raw_location = (location - head.target_mean) / head.target_std
    softplus = (scale - SCALE_FLOOR) / head.target_std
    raw_scale = math.log(math.expm1(softplus)) - SCALE_OFFSET
    kernel, _ = model.get_layer("head").get_weights()
    model.get_layer("head").set_weights(
        [np.zeros_like(kernel), np.array([raw_location, raw_scale], dtype=kernel.dtype)]
    )
    return model


@pytest.fixture(scope="session")
def make_constant_model():
    """The :func:`constant_model` factory, for tests that need a model with known outputs."""
    return constant_model


@pytest.fixture(scope="session")
def make_prices():
    """The :func:`synthetic_prices` factory, for tests that need a second history."""
    return synthetic_prices


@pytest.fixture(scope="session")
def make_bars():
    """The :func:`consistent_bars` factory, for the validation and restatement tests."""
    return consistent_bars
