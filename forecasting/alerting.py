"""Findings of the drift checks and the alert lifecycle: open, keep (dedupe), resolve.

A :class:`Finding` is one metric of one run: its value, its threshold, whether it is breached
and how bad that is. Every run stores every finding (``drift_reports``); :func:`reconcile` turns
the findings and the currently open alerts into what the database must open, keep and resolve.

Hysteresis: an open alert resolves only on a *clear* finding, one whose value is back past a
resolve level that lies between the threshold and the metric's no-drift value, so a value that
hovers around the threshold keeps one alert open instead of opening a new one every few days
(docs/alerts.md, "Lifecycle").
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, field
from typing import Literal

import pandas as pd

from forecasting.calendar import last_completed_session, trading_days, trading_days_between
from forecasting.config import DriftConfig

Kind = Literal["data_drift", "performance_drift", "data_quality", "pipeline"]
Severity = Literal["info", "warning", "critical"]
KINDS: tuple[Kind, ...] = ("data_drift", "performance_drift", "data_quality", "pipeline")
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
RETRAIN_KINDS: tuple[Kind, ...] = ("data_drift", "performance_drift")
"""Kinds whose open alert makes the next run retrain (see ``forecasting.policy.decide``)."""
CRITICAL_EXCESS = 2.0
"""A breach is critical once the value is this many times as far from normal as the threshold."""
STALE_CRITICAL_SESSIONS = 5
MISSING_CRITICAL_SESSIONS = 5


@dataclass(frozen=True)
class Finding:
    """One metric of one run of the checks.

    ``value`` is NaN when the metric could not be judged this run (e.g. too few realized
    forecasts); such a finding is never breached, never clear, and leaves alerts alone.
    ``clear`` says the condition is over with margin (the hysteresis); it defaults to
    "judged and not breached", which suits metrics without a resolve band.
    """

    kind: Kind
    metric: str
    value: float
    threshold: float
    breached: bool
    severity: Severity
    message: str
    clear: bool | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        if "\n" in self.message:
            raise ValueError("a finding's message must be one line")
        if not self.judged and (self.breached or self.clear):
            raise ValueError(
                f"{self.metric}: a finding with a NaN value is neither breached nor clear"
            )
        if self.clear is None:
            object.__setattr__(self, "clear", self.judged and not self.breached)
        if self.breached and self.clear:
            raise ValueError(f"{self.metric}: a breached finding cannot be clear")

    @property
    def judged(self) -> bool:
        """Whether the metric had a value this run."""
        return math.isfinite(self.value)

    @property
    def key(self) -> tuple[str, str]:
        """``(kind, metric)``: at most one alert per key is open at a time."""
        return (self.kind, self.metric)

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-ready dict; a NaN value becomes None (SQL NULL)."""
        values = asdict(self)
        values["value"] = self.value if self.judged else None
        return values


def unjudged(kind: Kind, metric: str, threshold: float, reason: str) -> Finding:
    """A finding for a metric that could not be computed this run, with the reason why."""
    return Finding(
        kind, metric, math.nan, threshold, False, "info", f"{metric} not judged: {reason}"
    )


def assess(
    value: float,
    threshold: float,
    *,
    neutral: float,
    resolve_margin: float,
    lower_is_worse: bool = False,
    log_scale: bool = False,
) -> tuple[bool, bool, Severity]:
    """Breach, clearance and severity of a value against its threshold.

    Parameters
    ----------
    value, threshold : float
        The metric and its alert threshold; higher is worse unless ``lower_is_worse``.
    neutral : float
        The metric's value when nothing drifted (1 for ratios, 0 for distances, 1 for p-values).
    resolve_margin : float
        Share of the way from the threshold back to ``neutral`` the value must travel before an
        open alert resolves (0 = resolve as soon as not breached).
    lower_is_worse : bool
        For p-values: breached when ``value < threshold``.
    log_scale : bool
        Measure distances in orders of magnitude (p-values).

    Returns
    -------
    tuple of (bool, bool, str)
        ``breached``, ``clear`` and the severity: critical once the value lies
        :data:`CRITICAL_EXCESS` times as far from ``neutral`` as the threshold does.
    """

    def position(number: float) -> float:
        return math.log10(max(number, 1e-300)) if log_scale else number

    start, limit = position(neutral), position(threshold)
    sign = -1.0 if lower_is_worse else 1.0
    excess = sign * (position(value) - start)
    allowed = sign * (limit - start)
    breached = excess > allowed
    clear = excess <= allowed * (1.0 - resolve_margin)
    critical = excess > allowed * CRITICAL_EXCESS
    severity: Severity = "critical" if breached and critical else "warning" if breached else "info"
    return breached, clear and not breached, severity


@dataclass(frozen=True)
class Reconciliation:
    """What the alert store must do after one run of the checks."""

    to_open: list[Finding]
    """Breached findings with no open alert for their ``(kind, metric)``: open one each."""
    to_keep: list[Finding]
    """Findings whose alert is open and not clear yet: keep it, refresh value and last-seen."""
    to_resolve: list[tuple[str, str]]
    """``(kind, metric)`` of open alerts whose finding is clear today: resolve them."""


def reconcile(
    open_alerts: Collection[tuple[str, str]], findings: Iterable[Finding]
) -> Reconciliation:
    """Apply the alert lifecycle to one run's findings.

    Parameters
    ----------
    open_alerts : collection of (str, str)
        ``(kind, metric)`` of every alert open now.
    findings : iterable of Finding
        This run's findings, at most one per ``(kind, metric)``.

    Returns
    -------
    Reconciliation
        A breached finding opens an alert unless one is open for its key (no duplicate while
        the condition holds); an open alert is kept while its finding is breached or inside the
        resolve band, and resolved once its finding is clear. An unjudged finding (NaN) or a
        missing one leaves its open alert untouched: only a metric computed today resolves.

    Raises
    ------
    ValueError
        If two findings share a ``(kind, metric)``.
    """
    open_keys = set(open_alerts)
    to_open: list[Finding] = []
    to_keep: list[Finding] = []
    to_resolve: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for finding in findings:
        if finding.key in seen:
            raise ValueError(f"two findings for {finding.key}; expected at most one per metric")
        seen.add(finding.key)
        if not finding.judged:
            continue
        if finding.key not in open_keys:
            if finding.breached:
                to_open.append(finding)
        elif finding.clear:
            to_resolve.append(finding.key)
        else:
            to_keep.append(finding)
    return Reconciliation(to_open, to_keep, to_resolve)


def data_quality(
    prices: pd.DataFrame,
    *,
    now: dt.datetime,
    as_of: dt.date | None = None,
    restated: bool = False,
    download_failed: bool = False,
    config: DriftConfig | None = None,
) -> list[Finding]:
    """Stale or missing bars, a restated history and a failed download.

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
        ``max_stale_sessions``, ``missing_lookback`` and ``max_missing_sessions``.

    Returns
    -------
    list of Finding
        ``stale_sessions`` (completed NYSE sessions after the newest bar), ``missing_sessions``
        (sessions without a bar among the last ``missing_lookback`` up to the newest bar;
        holidays are not sessions), ``history_restated`` and ``download_failed`` (1 or 0).
    """
    config = config if config is not None else DriftConfig()
    expected = last_completed_session(now)
    if as_of is not None:
        expected = min(expected, _session_on_or_before(as_of))
    days = pd.DatetimeIndex(prices.index).normalize()
    days = days[days <= pd.Timestamp(expected)]
    return [
        _stale(days, expected, config),
        _missing(days, config),
        _flag("data_quality", "history_restated", restated, "info",
              "The price history was restated (split or dividend re-adjustment) and re-synced; "
              "the next run retrains"),
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
        f"(threshold {limit:g})."
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
