"""Pooled windows of many tickers for the panel network (:mod:`forecasting.model.panel`).

Each ticker's bars are cut at the panel's as-of date *before anything is computed from them*:
no window, no statistic and no forecast of any ticker reads a bar after it, its own or another
ticker's. A day of a ticker is the per-ticker model's features
(:func:`forecasting.features.make_features`) beside the range-based volatility inputs of
:func:`forecasting.volatility.range_features` (log Parkinson, Garman-Klass, Rogers-Satchell,
Yang-Zhang, overnight and close-to-close variances, the HAR 1/5/22 means of Garman-Klass and
the leverage term); a window is ``sequence_length`` such days and its target the next session's
log return. Every ticker keeps its newest windows (``validation_windows``, at most
``holdout_share`` of them) for early stopping, and each window carries its ticker's integer id
(1, 2, ... in sorted order; 0 is the unknown ticker).

**Standardization is pooled**: one mean and standard deviation per feature, and one for the
target, over the fit windows of every ticker. The inputs are log ratios and log variances, scale
free already, and the level of a ticker's volatility is information the network should see (a
per-ticker z-score of ``log_volatility`` would say "high for this ticker", not "high"); and a
ticker that the fit never saw goes through the very same map, with no statistics of its own to
estimate from a short history.

This module itself computes with numpy and pandas only (its package imports TensorFlow).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from forecasting.config import FeatureConfig, TrainingConfig
from forecasting.errors import InsufficientDataError
from forecasting.features import (
    MINIMUM_WINDOWS_PER_SPLIT,
    Scaling,
    Split,
    make_features,
    window_split,
    windows_ending_at,
)
from forecasting.volatility import range_features

if TYPE_CHECKING:
    from forecasting.model.panel import PanelModel

logger = logging.getLogger(__name__)

UNKNOWN_TICKER_ID = 0
# Bars before a day that its range features read: Yang-Zhang's 22 overnight returns (and the
# 22-session HAR mean) of range_features' defaults.
RANGE_LOOKBACK = 22
METADATA_FORMAT = 1
# The PanelModel fields its metadata holds as they are: numbers.
_PLAIN_FIELDS = (
    "seed",
    "fit_windows",
    "validation_windows",
    "epochs_run",
    "best_validation_loss",
    "seconds",
)


class PanelConfig(BaseModel):
    """The panel network: its features, architecture, schedule and ticker embedding."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    features: FeatureConfig = Field(default_factory=FeatureConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    embedding_dim: int = Field(
        4, ge=0, description="size of the learned per-ticker embedding; 0 pools every ticker"
    )
    unknown_share: float = Field(
        0.1,
        ge=0,
        lt=1,
        description="share of each ticker's fit windows that train the unknown ticker's id 0",
    )
    walk_forward: bool = Field(
        True,
        description="after early stopping, learn the validation windows too (finetune_epochs "
        "at finetune_learning_rate), so that the fit has seen every session up to as-of",
    )


@dataclass(frozen=True, eq=False)
class PanelData:
    """Everything :func:`forecasting.model.panel.fit_panel` trains on, from :func:`prepare_panel`.

    ``fit`` and ``validation`` pool the tickers' windows (sorted tickers, oldest first within
    each); ``fit_ids`` and ``validation_ids`` are their tickers' ids, with a seeded
    ``unknown_share`` of the fit windows relabelled :data:`UNKNOWN_TICKER_ID`.
    """

    feature_names: tuple[str, ...]
    ticker_ids: dict[str, int]
    spans: dict[str, tuple[dt.date, dt.date]]
    """Per ticker: the oldest bar its first window reads, and its newest window's target."""
    skipped: tuple[str, ...]
    """Tickers with too little history up to as-of: not fitted, forecast as unknown."""
    fit: Split
    fit_ids: np.ndarray
    validation: Split
    validation_ids: np.ndarray
    scaling: Scaling


def ticker_features(prices: pd.DataFrame, as_of: dt.date, config: FeatureConfig) -> pd.DataFrame:
    """One ticker's feature rows up to ``as_of``, from its first day with every feature known.

    Parameters
    ----------
    prices : pandas.DataFrame
        Validated daily bars (``open, high, low, close, volume`` on a sorted ``DatetimeIndex``,
        as ``forecasting.prices`` returns them); bars after ``as_of`` are dropped first.
    as_of : datetime.date
        The last day that may be read.
    config : FeatureConfig
        ``volatility_window`` of the per-ticker features.

    Returns
    -------
    pandas.DataFrame
        Columns: :data:`forecasting.features.FEATURE_NAMES`, then those of
        :func:`forecasting.volatility.range_features`; finite, one row per bar.
    """
    if not isinstance(prices.index, pd.DatetimeIndex):
        raise ValueError("prices must be indexed by a DatetimeIndex of trading days")
    bars = prices.loc[prices.index <= pd.Timestamp(as_of)]
    features = make_features(bars, config.volatility_window).join(range_features(bars))
    finite = np.isfinite(features.to_numpy(dtype="float64")).all(axis=1)
    if not finite.any():
        return features.iloc[:0]
    first = int(np.argmax(finite))
    if not finite[first:].all():
        raise ValueError("features are not finite: prices hold missing or non-positive values")
    return features.iloc[first:]


def _first_bar(prices: pd.DataFrame, day: pd.Timestamp, config: FeatureConfig) -> dt.date:
    """The oldest bar the features of ``day`` read."""
    position = prices.index.get_loc(day)
    lookback = max(config.volatility_window, RANGE_LOOKBACK)
    return prices.index[max(0, position - lookback)].date()


@dataclass(frozen=True, eq=False)
class _TickerWindows:
    fit: Split
    validation: Split
    fit_rows: np.ndarray
    """The feature rows the fit windows cover, each once: the pooled statistics' share."""
    first_day: pd.Timestamp
    """The first day of the oldest window."""


def _ticker_windows(
    features: pd.DataFrame, close: pd.Series, config: FeatureConfig
) -> _TickerWindows | None:
    """One ticker's fit and validation windows; None when it has too few for
    :data:`MINIMUM_WINDOWS_PER_SPLIT` in each."""
    length = config.sequence_length
    values = features.to_numpy(dtype="float64")
    ends = np.arange(length - 1, len(values) - 1)  # every window that has a next session
    cap = math.floor(len(ends) * config.holdout_share + 1e-9)
    n_validation = min(config.validation_windows, cap)
    n_fit = min(len(ends) - n_validation, config.max_fit_windows)
    if min(n_fit, n_validation) < MINIMUM_WINDOWS_PER_SPLIT:
        return None
    ends = ends[len(ends) - n_validation - n_fit :]
    volatility = np.exp(features["log_volatility"].to_numpy())
    closes = close.reindex(features.index).to_numpy(dtype="float64")

    def split(window_ends: np.ndarray) -> Split:
        return window_split(values, window_ends, length, features.index, closes, volatility)

    return _TickerWindows(
        fit=split(ends[:n_fit]),
        validation=split(ends[n_fit:]),
        fit_rows=values[ends[0] - length + 1 : ends[n_fit - 1] + 1],
        first_day=features.index[ends[0] - length + 1],
    )


def _pooled(splits: list[Split]) -> Split:
    return Split(
        x=np.concatenate([split.x for split in splits]),
        y=np.concatenate([split.y for split in splits]),
        as_of_dates=pd.DatetimeIndex(np.concatenate([split.as_of_dates for split in splits])),
        target_dates=pd.DatetimeIndex(np.concatenate([split.target_dates for split in splits])),
        base_close=np.concatenate([split.base_close for split in splits]),
        target_close=np.concatenate([split.target_close for split in splits]),
        volatility=np.concatenate([split.volatility for split in splits]),
    )


def _fit_ids(ticker_id: int, count: int, config: PanelConfig, seed: int) -> np.ndarray:
    """``count`` copies of ``ticker_id``, a seeded ``unknown_share`` of them the unknown id.

    The unknown id's embedding then learns "a ticker like these" (none if ``embedding_dim`` is
    0). The draw depends on the seed, the id and the count only: never on another ticker.
    """
    ids = np.full(count, ticker_id, dtype="int32")
    unknown = round(count * config.unknown_share) if config.embedding_dim > 0 else 0
    if unknown:
        generator = np.random.default_rng([seed, ticker_id])
        ids[generator.choice(count, size=unknown, replace=False)] = UNKNOWN_TICKER_ID
    return ids


def prepare_panel(
    prices_by_ticker: Mapping[str, pd.DataFrame],
    as_of: dt.date,
    config: PanelConfig,
    *,
    seed: int,
) -> PanelData:
    """The pooled fit and validation windows of every ticker, and their pooled statistics.

    Parameters
    ----------
    prices_by_ticker : Mapping[str, pandas.DataFrame]
        Validated daily bars per ticker; every bar after ``as_of`` is dropped before use.
    as_of : datetime.date
        One date for every ticker: a window's target is at most ``as_of``. (A later cut for
        another ticker would let its bars after ``as_of`` into the fit that forecasts this one.)
    config : PanelConfig
        Windows, holdouts and embedding.
    seed : int
        Draws which fit windows train the unknown ticker's id.

    Returns
    -------
    PanelData
        The pooled windows, ids, spans and fit-only statistics.

    Raises
    ------
    InsufficientDataError
        If no ticker has enough history up to ``as_of``.
    """
    if not prices_by_ticker:
        raise ValueError("prices_by_ticker is empty: a panel needs at least one ticker")
    if any(not isinstance(ticker, str) or not ticker for ticker in prices_by_ticker):
        raise ValueError(
            f"tickers must be non-empty strings, got {sorted(map(repr, prices_by_ticker))}"
        )
    windows: dict[str, _TickerWindows] = {}
    spans, skipped, feature_names = {}, [], ()
    for ticker in sorted(prices_by_ticker):
        prices = prices_by_ticker[ticker]
        features = ticker_features(prices, as_of, config.features)
        made = _ticker_windows(features, prices["close"], config.features)
        if made is None:
            skipped.append(ticker)
            continue
        windows[ticker], feature_names = made, tuple(features.columns)
        first_bar = _first_bar(prices, made.first_day, config.features)
        spans[ticker] = (first_bar, made.validation.target_dates[-1].date())
    if not windows:
        raise InsufficientDataError(
            f"no ticker of {sorted(prices_by_ticker)} has {MINIMUM_WINDOWS_PER_SPLIT} fit and "
            f"{MINIMUM_WINDOWS_PER_SPLIT} validation windows up to {as_of}: load longer histories"
        )
    if skipped:
        logger.warning("panel: too little history up to %s for %s", as_of, ", ".join(skipped))
    ticker_ids = {ticker: index + 1 for index, ticker in enumerate(windows)}
    fit = _pooled([made.fit for made in windows.values()])
    rows = np.concatenate([made.fit_rows for made in windows.values()])
    targets = fit.y.astype("float64")
    return PanelData(
        feature_names=feature_names,
        ticker_ids=ticker_ids,
        spans=spans,
        skipped=tuple(skipped),
        fit=fit,
        fit_ids=np.concatenate(
            [
                _fit_ids(ticker_ids[ticker], len(made.fit), config, seed)
                for ticker, made in windows.items()
            ]
        ),
        validation=_pooled([made.validation for made in windows.values()]),
        validation_ids=np.concatenate(
            [
                np.full(len(made.validation), ticker_ids[ticker], dtype="int32")
                for ticker, made in windows.items()
            ]
        ),
        scaling=Scaling(
            feature_mean=rows.mean(axis=0),
            feature_std=rows.std(axis=0),
            target_mean=float(targets.mean()),
            target_std=float(targets.std()),
        ),
    )


def next_window(
    prices: pd.DataFrame, as_of: dt.date, config: FeatureConfig
) -> tuple[np.ndarray, dt.date]:
    """The window that ends at the last bar up to ``as_of``, for the next session's forecast.

    Returns
    -------
    (numpy.ndarray, datetime.date)
        The window, float32 of shape (1, sequence_length, features), and its last day.

    Raises
    ------
    InsufficientDataError
        If fewer than ``sequence_length`` days up to ``as_of`` have every feature.
    """
    features = ticker_features(prices, as_of, config)
    length = config.sequence_length
    if len(features) < length:
        raise InsufficientDataError(
            f"{len(features)} days with every feature up to {as_of} are too few for a window "
            f"of {length}: load a longer history"
        )
    values = features.to_numpy(dtype="float64")
    window = windows_ending_at(values, np.array([len(values) - 1]), length).astype("float32")
    return window, features.index[-1].date()


def panel_metadata(panel: PanelModel) -> dict[str, Any]:
    """Everything of ``panel`` but its Keras model, as JSON-ready values."""
    return {
        "format": METADATA_FORMAT,
        **{name: getattr(panel, name) for name in _PLAIN_FIELDS},
        "config": panel.config.model_dump(mode="json"),
        "as_of": panel.as_of.isoformat(),
        "ticker_ids": panel.ticker_ids,
        "spans": {
            ticker: [first.isoformat(), last.isoformat()]
            for ticker, (first, last) in panel.spans.items()
        },
        "skipped": list(panel.skipped),
        "feature_names": list(panel.feature_names),
        "scaling": {
            "feature_mean": panel.scaling.feature_mean.tolist(),
            "feature_std": panel.scaling.feature_std.tolist(),
            "target_mean": panel.scaling.target_mean,
            "target_std": panel.scaling.target_std,
        },
    }


def panel_fields(metadata: dict[str, Any]) -> dict[str, Any]:
    """The fields of a ``PanelModel`` but its Keras model, from :func:`panel_metadata`."""
    if metadata.get("format") != METADATA_FORMAT:
        raise ValueError(f"panel metadata of format {metadata.get('format')!r}")
    scaling = metadata["scaling"]
    return {
        **{name: metadata[name] for name in _PLAIN_FIELDS},
        "config": PanelConfig.model_validate(metadata["config"]),
        "as_of": dt.date.fromisoformat(metadata["as_of"]),
        "ticker_ids": dict(metadata["ticker_ids"]),
        "spans": {
            ticker: (dt.date.fromisoformat(first), dt.date.fromisoformat(last))
            for ticker, (first, last) in metadata["spans"].items()
        },
        "skipped": tuple(metadata["skipped"]),
        "feature_names": tuple(metadata["feature_names"]),
        "scaling": Scaling(
            feature_mean=np.array(scaling["feature_mean"], dtype="float64"),
            feature_std=np.array(scaling["feature_std"], dtype="float64"),
            target_mean=scaling["target_mean"],
            target_std=scaling["target_std"],
        ),
    }
