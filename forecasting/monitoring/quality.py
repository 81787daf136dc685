"""Data-quality and pipeline findings: stale, missing or restated bars, volume anomalies, a
failed download, a rejected challenger, a failed flow run (docs/alerts.md, "Data quality" and
"Pipeline")."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from forecasting.calendar import last_completed_session, trading_days, trading_days_between
from forecasting.config import DriftConfig
from forecasting.monitoring.alerting import Finding, Kind, Severity, unjudged

STALE_CRITICAL_SESSIONS = 5
MISSING_CRITICAL_SESSIONS = 5
VOLUME_MEDIAN_SESSIONS = 20
"""Sessions before a bar whose median volume it is compared with."""
JUMP = "volume_jump_ratio"


def data_quality(
    prices: pd.DataFrame,
    *,
    now: dt.datetime,
    as_of: dt.date | None = None,
    restated: bool = False,
    download_failed: bool = False,
    config: DriftConfig | None = None,
    restatement: str | None = None,
) -> list[Finding]:
    """Stale or missing bars, volume anomalies, a restated history and a failed download.

    Parameters
    ----------
    prices : pandas.DataFrame
        The stored price frame (tz-naive ``DatetimeIndex`` of trading days).
    now : datetime.datetime
        When the run happens (timezone-aware; naive means UTC).
    as_of : datetime.date, optional
        The run's as-of date (replays, backfills): the newest bar is then expected on the
        last session on or before it, not on the wall clock's last completed session.
    restated, download_failed : bool
        Whether ingest found restated history, and whether the download failed after its
        retries; the flow knows both.
    config : DriftConfig, optional
        ``max_stale_sessions``, ``missing_lookback``, ``max_missing_sessions`` and the
        ``volume_*`` thresholds.
    restatement : str, optional
        What was restated, with its factors (``str(forecasting.prices.restatement.Resync)``), quoted
        in the ``history_restated`` message; giving it implies ``restated``.

    Returns
    -------
    list of Finding
        ``stale_sessions`` (completed NYSE sessions after the newest bar), ``missing_sessions``
        (sessions without a bar among the last ``missing_lookback`` up to the newest bar;
        holidays are not sessions), the volume anomalies among the last ``volume_lookback``
        bars (``zero_volume_sessions``, ``repeated_volume_sessions``, ``volume_jump_ratio``),
        ``history_restated`` (a warning) and ``download_failed`` (1 or 0).
    """
    config = config if config is not None else DriftConfig()
    expected = last_completed_session(now)
    if as_of is not None:
        expected = min(expected, _session_on_or_before(as_of))
    days = pd.DatetimeIndex(prices.index).normalize()
    inside = np.asarray(days <= pd.Timestamp(expected))
    days = days[inside]
    detail = f": {restatement}" if restatement else " (split or dividend re-adjustment)"
    return [
        _stale(days, expected, config),
        _missing(days, config),
        *volume_anomalies(prices[inside], config),
        _flag("data_quality", "history_restated", restated or bool(restatement), "warning",
              f"The price history was restated{detail}; the restated bars were replaced and "
              "the run retrains"),
        _flag("data_quality", "download_failed", download_failed, "warning",
              "The price download failed after all retries; the run used the stored bars"),
    ]  # fmt: skip


def _session_on_or_before(day: dt.date) -> dt.date:
    candidates = trading_days(day - dt.timedelta(days=10), day)
    return candidates[-1]


def _stale(days: pd.DatetimeIndex, expected: dt.date, config: DriftConfig) -> Finding:
    limit = float(config.max_stale_sessions)
    if days.empty:
        return unjudged("data_quality", "stale_sessions", limit, "no stored bars")
    newest = days[-1].date()
    behind = trading_days_between(newest, expected)
    breached = behind > limit
    severity: Severity = "critical" if behind > STALE_CRITICAL_SESSIONS else "warning"
    message = (
        f"The newest stored bar ({newest}) is {behind} completed session(s) behind {expected} "
        f"(threshold {limit:g})"
        + ("; refresh the source, or replay its last day with --as-of." if breached else ".")
    )
    return Finding("data_quality", "stale_sessions", float(behind), limit, breached,
                   severity if breached else "info", message)  # fmt: skip


def _missing(days: pd.DatetimeIndex, config: DriftConfig) -> Finding:
    limit = float(config.max_missing_sessions)
    if days.empty:
        return unjudged("data_quality", "missing_sessions", limit, "no stored bars")
    # 1.5 calendar days per session (weekends, holidays) reach back far enough, cheaply.
    start = max(days[0], days[-1] - pd.Timedelta(days=config.missing_lookback * 3 // 2 + 10))
    sessions = trading_days(start.date(), days[-1].date())[-config.missing_lookback :]
    stored = set(days[days >= start].date)
    absent = [day for day in sessions if day not in stored]
    breached = len(absent) > limit
    severity: Severity = "critical" if len(absent) > MISSING_CRITICAL_SESSIONS else "warning"
    shown = ", ".join(str(day) for day in absent[:3]) + (", ..." if len(absent) > 3 else "")
    message = (
        f"{len(absent)} of the last {len(sessions)} NYSE sessions have no stored bar"
        f"{f' ({shown})' if absent else ''} (threshold {limit:g})."
    )
    return Finding("data_quality", "missing_sessions", float(len(absent)), limit, breached,
                   severity if breached else "info", message)  # fmt: skip


def volume_anomalies(prices: pd.DataFrame, config: DriftConfig | None = None) -> list[Finding]:
    """Zero, repeated and jumping volumes among the newest bars: signs of a broken feed.

    Parameters
    ----------
    prices : pandas.DataFrame
        A price frame (``volume`` column), oldest first.
    config : DriftConfig, optional
        ``volume_lookback``, ``max_zero_volume_sessions``, ``max_repeated_volume`` and
        ``volume_jump_ratio``.

    Returns
    -------
    list of Finding
        Over the last ``volume_lookback`` bars: ``zero_volume_sessions`` (how many have zero
        volume), ``repeated_volume_sessions`` (the longest run of sessions in a row with the
        same volume) and ``volume_jump_ratio`` (the largest factor between a bar's volume and
        the median of the ``VOLUME_MEDIAN_SESSIONS`` bars before it, up or down; zero volumes
        left to the first metric). NaN values when there are no bars.
    """
    config = config if config is not None else DriftConfig()
    volume = prices["volume"].to_numpy(dtype="float64")
    days = pd.DatetimeIndex(prices.index)
    checked = min(config.volume_lookback, len(volume))
    limits = {
        "zero_volume_sessions": float(config.max_zero_volume_sessions),
        "repeated_volume_sessions": float(config.max_repeated_volume),
        JUMP: config.volume_jump_ratio,
    }
    if checked == 0:
        return [unjudged("data_quality", name, limit, "no stored bars")
                for name, limit in limits.items()]  # fmt: skip
    first = len(volume) - checked
    zero = np.flatnonzero(volume[first:] == 0) + first
    shown = ", ".join(f"{days[i]:%Y-%m-%d}" for i in zero[:3]) + (", ..." if zero.size > 3 else "")
    zeros = f"{zero.size} of the last {checked} bars have zero volume"
    if zero.size:
        zeros += f" ({shown})"
    findings = [_volume_finding("zero_volume_sessions", float(zero.size), limits, zeros)]
    run, end = _longest_repeat(volume, first)
    repeated = f"the longest run of sessions in a row with the same volume is {run}"
    if run > 1:
        repeated += f" (to {days[end]:%Y-%m-%d}, volume {volume[end]:,.0f})"
    findings.append(_volume_finding("repeated_volume_sessions", float(run), limits, repeated))
    factor, at = _largest_jump(volume, first)
    if at is None:
        reason = "no bar with a nonzero volume and sessions before it"
        findings.append(unjudged("data_quality", "volume_jump_ratio", limits[JUMP], reason))
        return findings
    direction = "above" if volume[at] > _median_before(volume, at) else "below"
    jump = (
        f"the volume of {days[at]:%Y-%m-%d} ({volume[at]:,.0f}) is {factor:.2f}x {direction} "
        f"the median of the {VOLUME_MEDIAN_SESSIONS} sessions before"
    )
    findings.append(_volume_finding(JUMP, factor, limits, jump))
    return findings


def _volume_finding(metric: str, value: float, limits: dict[str, float], what: str) -> Finding:
    limit = limits[metric]
    breached = value > limit
    return Finding("data_quality", metric, value, limit, breached,
                   "warning" if breached else "info",
                   f"Volume: {what} (threshold {limit:g}).")  # fmt: skip


def _longest_repeat(volume: np.ndarray, first: int) -> tuple[int, int]:
    """Longest run of equal volumes ending in the lookback (it may start before): length, end."""
    best, best_end, run = 1, len(volume) - 1, 1
    for position in range(1, len(volume)):
        run = run + 1 if volume[position] == volume[position - 1] else 1
        if position >= first and run > best:
            best, best_end = run, position
    return best, best_end


def _median_before(volume: np.ndarray, position: int) -> float:
    before = volume[max(0, position - VOLUME_MEDIAN_SESSIONS) : position]
    return float(np.median(before)) if before.size else float("nan")


def _largest_jump(volume: np.ndarray, first: int) -> tuple[float, int | None]:
    """The largest up-or-down factor against the median before, and where; (NaN, None) if none."""
    best, where = float("nan"), None
    for position in range(max(first, 1), len(volume)):
        median = _median_before(volume, position)
        if volume[position] <= 0 or not median > 0:
            continue
        factor = max(volume[position] / median, median / volume[position])
        if where is None or factor > best:
            best, where = factor, position
    return best, where


def _flag(kind: Kind, metric: str, raised: bool, severity: Severity, what: str) -> Finding:
    if raised:
        return Finding(kind, metric, 1.0, 0.0, True, severity, f"{what} ({metric} = 1 > 0).")
    message = f"No {metric.replace('_', ' ')} this run ({metric} = 0, threshold 0)."
    return Finding(kind, metric, 0.0, 0.0, False, "info", message)


def pipeline_findings(
    *, challenger_rejected: bool | None = None, reason: str = "", flow_run_failed: bool = False
) -> list[Finding]:
    """Pipeline findings of a run that got as far as the checks.

    Parameters
    ----------
    challenger_rejected : bool or None
        Whether today's candidate lost to the champion; None when no candidate was trained
        (the champion was reused), which leaves an open rejection alert as it is.
    reason : str
        The promotion decision's reason, quoted in the message of a rejection.
    flow_run_failed : bool
        False in a run that reaches the checks: it resolves the alert a failed run opened.

    Returns
    -------
    list of Finding
        ``challenger_rejected`` (1 or 0, NaN when not applicable) and ``flow_run_failed``.
    """
    if challenger_rejected is None:
        rejected = unjudged("pipeline", "challenger_rejected", 0.0, "no candidate was trained")
    elif challenger_rejected:
        detail = f": {reason}" if reason else ""
        rejected = Finding("pipeline", "challenger_rejected", 1.0, 0.0, True, "info",
                           f"The challenger was rejected and the champion kept{detail} "
                           "(challenger_rejected = 1 > 0).")  # fmt: skip
    else:
        rejected = _flag("pipeline", "challenger_rejected", False, "info", "")
    failed = (
        flow_run_failure("")
        if flow_run_failed
        else _flag("pipeline", "flow_run_failed", False, "critical", "")
    )
    return [rejected, failed]


def flow_run_failure(error: str | BaseException) -> Finding:
    """The finding a flow's on-failure hook records: one failed run, critical.

    Parameters
    ----------
    error : str or BaseException
        What failed; its first line is quoted in the message.

    Returns
    -------
    Finding
        ``pipeline`` / ``flow_run_failed`` with value 1 (threshold 0), severity critical.
    """
    text = str(error).strip().splitlines()[0] if str(error).strip() else "no error message"
    if isinstance(error, BaseException):
        text = f"{type(error).__name__}: {text}"
    return Finding("pipeline", "flow_run_failed", 1.0, 0.0, True, "critical",
                   f"The flow run failed ({text[:200]}) (flow_run_failed = 1 > 0).")  # fmt: skip
