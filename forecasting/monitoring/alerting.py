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

import math
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, field
from typing import Literal

Kind = Literal["data_drift", "performance_drift", "data_quality", "pipeline"]
Severity = Literal["info", "warning", "critical"]
KINDS: tuple[Kind, ...] = ("data_drift", "performance_drift", "data_quality", "pipeline")
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
RETRAIN_KINDS: tuple[Kind, ...] = ("data_drift", "performance_drift")
"""Kinds whose open alert makes the next run retrain (see ``forecasting.policy.decide``)."""
CRITICAL_EXCESS = 2.0
"""A breach is critical once the value is this many times as far from normal as the threshold."""


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
