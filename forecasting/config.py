"""What shapes a forecast: features, training, drift checks and serving, as plain pydantic models.

Pure configuration, read from nothing: the deployment's settings (``flows.settings.Settings``,
read from the environment and ``.env``) hold one of each and pass them in.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
)


class FeatureConfig(BaseModel):
    """How prices become model inputs; a change here forces a full retrain."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sequence_length: int = Field(10, ge=2, description="days of history in one input window")
    validation_windows: int = Field(
        250, ge=20, description="windows before the test windows, for early stopping"
    )
    test_windows: int = Field(
        250,
        ge=20,
        description="newest windows held out of a retrain's fit: its test loss and first "
        "interval calibration; the retrain then walks forward through them",
    )
    max_fit_windows: int = Field(
        2520,
        ge=20,
        description="newest windows a retrain fits on (2,520 sessions: ten years); older bars "
        "stay stored but are not learned",
    )
    holdout_share: float = Field(
        0.15, gt=0, le=0.3, description="most of a short history either holdout may take"
    )
    volatility_window: int = Field(
        20, ge=2, description="days of returns behind the volatility feature and baseline"
    )


class TrainingConfig(BaseModel):
    """Model architecture and training schedule; the defaults are the original design's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    layers: int = Field(3, ge=1, le=8)
    units: int = Field(50, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    learning_rate: float = Field(1e-3, gt=0)
    max_epochs: int = Field(100, ge=1)
    batch_size: int = Field(32, ge=1)
    patience: int = Field(5, ge=1, description="epochs without validation improvement to stop")
    finetune_epochs: int = Field(
        3, ge=1, description="passes over the newest windows when walking forward (no early stop)"
    )
    finetune_learning_rate: float = Field(1e-4, gt=0)
    finetune_windows: int = Field(
        250, ge=10, description="newest windows (targets up to the as-of date) to fine-tune on"
    )
    seed: int = 42


class DriftConfig(BaseModel):
    """Thresholds of the drift, performance and data-quality checks (see docs/alerts.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    recent_window: int = Field(60, ge=10, description="trading days compared with the reference")
    reference: str = Field(
        "trailing",
        pattern="^(trailing|training)$",
        description="drift reference: the sessions just before the recent window, or the "
        "champion's whole training window",
    )
    reference_window: int = Field(
        1000, ge=20, description="sessions in the trailing reference (<= 1000: KS test)"
    )
    distance_threshold: float = Field(
        0.5, gt=0, description="normed Wasserstein distance (reference > 1000 values) for drift"
    )
    ks_p_value: float = Field(
        0.01, gt=0, lt=1, description="KS-test p-value below which data drifted (<= 1000 values)"
    )
    psi_bins: int = Field(5, ge=2, description="PSI bins: quantiles of the reference")
    psi_threshold: float = Field(0.4, gt=0, description="population stability index for drift")
    volatility_ratio: float = Field(
        1.75, gt=1, description="recent / reference standard deviation of returns that alerts"
    )
    performance_window: int = Field(20, ge=5, description="realized forecasts in the rolling check")
    min_realized: int = Field(10, ge=3, description="realized forecasts needed before judging")
    rmse_ratio: float = Field(
        1.5, gt=1, description="realized relative RMSE / test relative RMSE that alerts"
    )
    skill_threshold: float = Field(
        1.2, gt=0, description="realized RMSE / naive RMSE on the same days that alerts"
    )
    coverage_p_value: float = Field(
        0.001, gt=0, lt=1, description="binomial p-value of the interval misses that alerts"
    )
    max_stale_sessions: int = Field(
        0, ge=0, description="completed sessions the newest stored bar may lag behind"
    )
    missing_lookback: int = Field(250, ge=10, description="sessions checked for missing bars")
    max_missing_sessions: int = Field(
        0, ge=0, description="sessions without a bar tolerated in the lookback"
    )
    volume_lookback: int = Field(
        20, ge=1, description="newest sessions checked for zero, repeated or jumping volume"
    )
    max_zero_volume_sessions: int = Field(
        0, ge=0, description="sessions with zero volume tolerated in the volume lookback"
    )
    max_repeated_volume: int = Field(
        2, ge=1, description="sessions in a row with the very same volume tolerated"
    )
    volume_jump_ratio: float = Field(
        20.0,
        gt=1,
        description="volume / median of the 20 sessions before (or its inverse) that alerts",
    )
    resolve_margin: float = Field(
        0.35,
        ge=0,
        lt=1,
        description="share of the way back from the threshold to normal before an alert resolves",
    )


class ServingConfig(BaseModel):
    """Which forecast is served, and how its intervals are calibrated (see docs/model.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: int = Field(
        60, ge=10, description="newest realized one-step forecasts that decide what is served"
    )
    min_realized: int = Field(
        20, ge=5, description="realized forecasts needed before the walk-forward record decides"
    )
    calibration_window: int = Field(
        250, ge=20, description="newest realized scores behind an interval's conformal quantile"
    )
    aci_gamma: float = Field(
        0.005, gt=0, lt=0.5, description="step of adaptive conformal inference (Gibbs & Candes)"
    )
    garch_window: int = Field(
        1000, ge=250, description="returns each GARCH-family contender is fitted on (4 years)"
    )
    garch_refit_every: int = Field(
        20, ge=1, description="sessions between a GARCH-family contender's refits (a month)"
    )


def config_fingerprint(features: FeatureConfig, training: TrainingConfig) -> str:
    """A short stable hash of what shapes a model, to tell when a retrain is due."""
    shaping = {
        "features": features.model_dump(),
        "training": training.model_dump(
            include={"layers", "units", "dropout", "learning_rate", "batch_size"}
        ),
    }
    text = json.dumps(shaping, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
