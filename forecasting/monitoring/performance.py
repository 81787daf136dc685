"""Performance drift: the realized error of forecasts already made, against the champion's
test error and the naive forecast, and interval coverage (docs/alerts.md, "Performance drift").

Errors are relative to the base close, because dollar errors do not compare across price levels.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from forecasting.config import DriftConfig
from forecasting.monitoring.alerting import Finding, assess, unjudged


def relative_rmse(forecasts: pd.DataFrame, column: str = "predicted_close") -> float:
    """RMSE of forecast errors relative to the base close, over rows whose actual is known.

    Parameters
    ----------
    forecasts : pandas.DataFrame
        Columns ``base_close``, ``actual_close`` and ``column`` (e.g. an ``Evaluation``'s
        ``test_predictions``, or rows of the ``forecast_accuracy`` view).
    column : str
        The forecast to score: ``predicted_close``, or ``base_close`` for the naive forecast.

    Returns
    -------
    float
        ``sqrt(mean(((forecast - actual) / base_close) ** 2))``, scale-free so that it compares
        across price levels ($5 and $140); NaN if no row has an actual.
    """
    known = forecasts[forecasts["actual_close"].notna()]
    if known.empty:
        return math.nan
    errors = (known[column] - known["actual_close"]) / known["base_close"]
    return float(np.sqrt(np.mean(np.square(errors.to_numpy(dtype="float64")))))


def performance_drift(
    realized: pd.DataFrame,
    *,
    reference_relative_rmse: float | None,
    config: DriftConfig | None = None,
) -> list[Finding]:
    """Realized error of the forecasts already made, over the last ``performance_window``.

    Parameters
    ----------
    realized : pandas.DataFrame
        Rows of the ``forecast_accuracy`` view (``target_date, base_close, predicted_close,
        actual_close, lower_80, upper_80, lower_95, upper_95``); rows without an actual yet
        are ignored, the newest ``performance_window`` realized ones are judged.
    reference_relative_rmse : float or None
        ``relative_rmse(champion_evaluation.test_predictions)``: the champion's own test error;
        None when there is no champion yet.
    config : DriftConfig, optional
        Thresholds; the defaults if omitted.

    Returns
    -------
    list of Finding
        ``realized_rmse_ratio`` (realized / test relative RMSE), ``realized_skill`` (realized
        relative RMSE / naive's on the same days), ``coverage_80_p_value`` and
        ``coverage_95_p_value`` (one-sided binomial test of the interval misses against the
        nominal miss rate). NaN values while fewer than ``min_realized`` forecasts are realized.
    """
    config = config if config is not None else DriftConfig()
    known = realized[realized["actual_close"].notna()].sort_values("target_date")
    window = known.iloc[-config.performance_window :]
    limits = {
        "realized_rmse_ratio": config.rmse_ratio,
        "realized_skill": config.skill_threshold,
        "coverage_80_p_value": config.coverage_p_value,
        "coverage_95_p_value": config.coverage_p_value,
    }
    if len(window) < config.min_realized:
        reason = f"{len(window)} of the {config.min_realized} realized forecasts needed"
        return [unjudged("performance_drift", m, limit, reason) for m, limit in limits.items()]
    ours = relative_rmse(window)
    naive = relative_rmse(window, "base_close")
    days = f"the last {len(window)} realized forecasts"
    findings = [
        _ratio(
            "realized_rmse_ratio",
            ours / reference_relative_rmse if reference_relative_rmse else math.nan,
            config.rmse_ratio,
            config,
            f"Relative RMSE of {days} is {{value:.2f}}x the champion's test error "
            f"({ours:.2%} vs {reference_relative_rmse or math.nan:.2%}; threshold {{limit:g}}x).",
            "no champion test error to compare with",
        ),
        _ratio(
            "realized_skill",
            ours / naive if naive > 0 else math.nan,
            config.skill_threshold,
            config,
            f"RMSE of {days} is {{value:.2f}}x the naive last-close forecast's on the same days "
            f"(threshold {{limit:g}}x).",
            "the close never moved, so the naive forecast has no error",
        ),
    ]
    for level in (80, 95):
        findings.append(_coverage(window, level, config))
    return findings


def _ratio(
    metric: str, value: float, limit: float, config: DriftConfig, template: str, missing: str
) -> Finding:
    if not math.isfinite(value):
        return unjudged("performance_drift", metric, limit, missing)
    breached, clear, severity = assess(
        value, limit, neutral=1.0, resolve_margin=config.resolve_margin
    )
    message = template.format(value=value, limit=limit)
    return Finding("performance_drift", metric, value, limit, breached, severity, message, clear)


def _coverage(window: pd.DataFrame, level: int, config: DriftConfig) -> Finding:
    metric, limit = f"coverage_{level}_p_value", config.coverage_p_value
    lower, upper = window[f"lower_{level}"], window[f"upper_{level}"]
    scored = lower.notna() & upper.notna()
    n = int(scored.sum())
    if n < config.min_realized:
        return unjudged(
            "performance_drift", metric, limit, f"{n} forecasts with a {level}% interval"
        )
    actual = window["actual_close"][scored]
    misses = int(((actual < lower[scored]) | (actual > upper[scored])).sum())
    nominal = 1.0 - level / 100
    p_value = float(stats.binom.sf(misses - 1, n, nominal))
    breached, clear, severity = assess(
        p_value, limit, neutral=1.0, resolve_margin=config.resolve_margin,
        lower_is_worse=True, log_scale=True,
    )  # fmt: skip
    message = (
        f"{misses} of the last {n} realized closes fell outside their {level}% interval "
        f"(expected {nominal * n:.1f}); binomial p-value {p_value:.2g} (alert below {limit:g})."
    )
    return Finding("performance_drift", metric, p_value, limit, breached, severity, message, clear)
