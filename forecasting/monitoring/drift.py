"""Drift, performance and data-quality checks: pure functions from frames to findings.

Every check returns one :class:`~forecasting.monitoring.alerting.Finding` per metric, breached or
not, so that each run can store every value and drift can be charted; a metric that cannot be
computed yet has a NaN value. Thresholds come from :class:`~forecasting.config.DriftConfig`;
docs/alerts.md gives each formula, default and the reasoning behind it.

Data drift compares *returns and volume changes*, never price levels (levels always drift).
Its statistics follow Evidently's default choice for a numerical column: the two-sample
Kolmogorov-Smirnov test when the reference holds at most 1000 values, else the Wasserstein
distance normed by the reference's standard deviation.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
from scipy import stats

from forecasting.config import DriftConfig
from forecasting.features import make_features
from forecasting.monitoring.alerting import Finding, Severity, assess, unjudged
from forecasting.monitoring.performance import performance_drift
from forecasting.monitoring.quality import data_quality, pipeline_findings

EVIDENTLY_SMALL_REFERENCE = 1000
"""Up to this many reference values Evidently tests with KS, above it with normed Wasserstein."""
PSI_EPSILON = 1e-4
"""Share given to an empty PSI bin, so that its log term stays finite (Evidently uses 1e-4)."""
WASSERSTEIN_STD_FLOOR = 1e-3
"""Evidently's floor on the reference standard deviation that norms the Wasserstein distance."""
DRIFT_COLUMNS = {"close_return": "returns", "volume_change": "volume_change"}
_SHOWN = {"returns": "returns", "volume_change": "volume changes"}


def _settings(config: DriftConfig | None) -> DriftConfig:
    return config if config is not None else DriftConfig()


def population_stability_index(reference: np.ndarray, recent: np.ndarray, bins: int = 5) -> float:
    """PSI of ``recent`` against ``reference`` over the reference's quantile bins.

    Parameters
    ----------
    reference, recent : numpy.ndarray
        The two samples.
    bins : int
        Number of bins; their edges are the reference's ``k / bins`` quantiles (outer bins
        open-ended), so each holds ``1 / bins`` of the reference.

    Returns
    -------
    float
        ``sum((c - r) * ln(c / r))`` over bins, with ``r`` and ``c`` the shares of reference
        and recent values per bin, an empty bin counting as :data:`PSI_EPSILON`.
    """
    reference = np.asarray(reference, dtype="float64")
    recent = np.asarray(recent, dtype="float64")
    edges = np.unique(np.quantile(reference, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    count = len(edges) + 1

    def shares(values: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=count)
        return np.maximum(counts / len(values), PSI_EPSILON)

    expected, actual = shares(reference), shares(recent)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def two_sample_metric(column: str, reference_size: int) -> str:
    """The metric name of the two-sample statistic Evidently would pick for this size."""
    prefix = DRIFT_COLUMNS.get(column, column)
    small = reference_size <= EVIDENTLY_SMALL_REFERENCE
    return f"{prefix}_ks_p_value" if small else f"{prefix}_wasserstein"


def drift_inputs(
    prices: pd.DataFrame,
    *,
    config: DriftConfig | None = None,
    train_start: dt.date | None = None,
    train_end: dt.date | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and recent daily features for :func:`data_drift`.

    Parameters
    ----------
    prices : pandas.DataFrame
        Price frame up to the as-of date (see :func:`forecasting.features.make_features`).
    config : DriftConfig, optional
        ``recent_window``, ``reference`` and ``reference_window``.
    train_start, train_end : datetime.date, optional
        The champion's training window; needed only when ``config.reference == "training"``.

    Returns
    -------
    tuple of pandas.DataFrame
        ``(reference, recent)``: recent = the last ``recent_window`` feature rows; reference =
        the ``reference_window`` rows just before them (``"trailing"``), or the rows from
        ``train_start`` to ``train_end`` (``"training"``; empty if the dates are unknown).
    """
    config = _settings(config)
    features = make_features(prices)
    recent = features.iloc[-config.recent_window :]
    if config.reference == "trailing":
        before = features.iloc[: max(len(features) - config.recent_window, 0)]
        return before.iloc[-config.reference_window :], recent
    if train_start is None or train_end is None:
        return features.iloc[:0], recent
    return features.loc[pd.Timestamp(train_start) : pd.Timestamp(train_end)], recent


def data_drift(
    reference: pd.DataFrame, recent: pd.DataFrame, config: DriftConfig | None = None
) -> list[Finding]:
    """Distribution drift of daily returns and volume changes, and the volatility regime.

    Parameters
    ----------
    reference, recent : pandas.DataFrame
        Feature frames with ``close_return`` and ``volume_change`` (:func:`drift_inputs`).
    config : DriftConfig, optional
        Thresholds; the defaults if omitted.

    Returns
    -------
    list of Finding
        Per column: the KS p-value (reference <= 1000 rows) or the normed Wasserstein distance
        (more), and the PSI; then ``volatility_ratio`` = recent / reference standard deviation of
        returns. All NaN if either sample is shorter than ``recent_window`` rows.
    """
    config = _settings(config)
    enough = min(len(recent), len(reference)) >= config.recent_window
    size = len(reference) if enough else _expected_reference_size(config)
    reason = f"{len(recent)} recent and {len(reference)} reference sessions"
    findings: list[Finding] = []
    for column, label in DRIFT_COLUMNS.items():
        name = two_sample_metric(column, size)
        small = size <= EVIDENTLY_SMALL_REFERENCE
        limit = config.ks_p_value if small else config.distance_threshold
        if not enough:
            findings.append(unjudged("data_drift", name, limit, reason))
            findings.append(unjudged("data_drift", f"{label}_psi", config.psi_threshold, reason))
            continue
        old = reference[column].to_numpy(dtype="float64")
        new = recent[column].to_numpy(dtype="float64")
        if small:
            value = float(stats.ks_2samp(old, new).pvalue)
            statistic = f"KS p-value {value:.2g} (alert below {limit:g})"
            judged = assess(value, limit, neutral=1.0, resolve_margin=config.resolve_margin,
                            lower_is_worse=True, log_scale=True)  # fmt: skip
        else:
            value = float(stats.wasserstein_distance(old, new))
            value /= max(float(np.std(old)), WASSERSTEIN_STD_FLOOR)
            statistic = f"normed Wasserstein distance {value:.2f} (threshold {limit:g})"
            judged = assess(value, limit, neutral=0.0, resolve_margin=config.resolve_margin)
        findings.append(_drift_finding(name, value, limit, judged, label, statistic, old, new))
        psi, limit = population_stability_index(old, new, config.psi_bins), config.psi_threshold
        statistic = f"PSI {psi:.3f} over {config.psi_bins} quantile bins (threshold {limit:g})"
        judged = assess(psi, limit, neutral=0.0, resolve_margin=config.resolve_margin)
        findings.append(
            _drift_finding(f"{label}_psi", psi, limit, judged, label, statistic, old, new)
        )
    findings.append(_volatility(reference, recent, config, reason if not enough else None))
    return findings


def _expected_reference_size(config: DriftConfig) -> int:
    if config.reference == "trailing":
        return config.reference_window
    return EVIDENTLY_SMALL_REFERENCE + 1


def _drift_finding(
    metric: str,
    value: float,
    threshold: float,
    judged: tuple[bool, bool, Severity],
    label: str,
    statistic: str,
    reference: np.ndarray,
    recent: np.ndarray,
) -> Finding:
    breached, clear, severity = judged
    verdict = "have drifted from" if breached else "are in line with"
    message = (
        f"Daily {_SHOWN[label]} over the last {len(recent)} sessions {verdict} the "
        f"{len(reference)} reference sessions: {statistic}."
    )
    return Finding("data_drift", metric, value, threshold, breached, severity, message, clear)


def _volatility(
    reference: pd.DataFrame, recent: pd.DataFrame, config: DriftConfig, unjudged_because: str | None
) -> Finding:
    limit = config.volatility_ratio
    if unjudged_because:
        return unjudged("data_drift", "volatility_ratio", limit, unjudged_because)
    old = reference["close_return"].std()
    ratio = float(recent["close_return"].std() / old) if old > 0 else math.inf
    breached, clear, severity = assess(
        ratio, limit, neutral=1.0, resolve_margin=config.resolve_margin
    )
    message = (
        f"Daily returns over the last {len(recent)} sessions are {ratio:.2f}x as volatile "
        f"as over the {len(reference)} reference sessions (threshold {limit:g}x)."
    )
    return Finding(
        "data_drift", "volatility_ratio", ratio, limit, breached, severity, message, clear
    )


def run_checks(
    prices: pd.DataFrame,
    *,
    now: dt.datetime,
    config: DriftConfig | None = None,
    as_of: dt.date | None = None,
    train_start: dt.date | None = None,
    train_end: dt.date | None = None,
    realized: pd.DataFrame | None = None,
    reference_relative_rmse: float | None = None,
    restated: bool = False,
    download_failed: bool = False,
    challenger_rejected: bool | None = None,
    promotion_reason: str = "",
    restatement: str | None = None,
) -> list[Finding]:
    """Every check of one run, every metric, breached or not (for ``drift_reports``).

    Parameters
    ----------
    prices : pandas.DataFrame
        The stored price frame; rows after ``as_of`` are ignored.
    now : datetime.datetime
        When the run happens (timezone-aware; naive means UTC).
    config : DriftConfig, optional
        Thresholds; the defaults if omitted.
    as_of : datetime.date, optional
        The run's as-of date, for replays and backfills.
    train_start, train_end : datetime.date, optional
        The champion's training window (``model_versions.train_start/train_end``); used when
        ``config.reference == "training"``.
    realized : pandas.DataFrame, optional
        Rows of ``forecast_accuracy`` for the ticker (see :func:`performance_drift`).
    reference_relative_rmse : float, optional
        The champion's :func:`relative_rmse` on its test predictions.
    restated, download_failed : bool
        Ingest's outcome (see :func:`forecasting.monitoring.quality.data_quality`).
    challenger_rejected : bool or None
        The promotion outcome; None when no candidate was trained.
    promotion_reason : str
        The promotion decision's reason, quoted if the challenger was rejected.
    restatement : str, optional
        What ingest restated, with its factors (``str(Ingested.restatement)``), for the
        ``history_restated`` message.

    Returns
    -------
    list of Finding
        Data drift, performance drift, data quality and pipeline findings, in that order; a
        metric that cannot be judged yet has a NaN value (stored as NULL).
    """
    config = _settings(config)
    if as_of is not None:
        prices = prices.loc[: pd.Timestamp(as_of)]
    if realized is None:
        realized = pd.DataFrame(columns=["target_date", "actual_close"])
    reference, recent = drift_inputs(
        prices, config=config, train_start=train_start, train_end=train_end
    )
    return [
        *data_drift(reference, recent, config),
        *performance_drift(
            realized, reference_relative_rmse=reference_relative_rmse, config=config
        ),
        *data_quality(
            prices,
            now=now,
            as_of=as_of,
            restated=restated,
            download_failed=download_failed,
            config=config,
            restatement=restatement,
        ),
        *pipeline_findings(challenger_rejected=challenger_rejected, reason=promotion_reason),
    ]
