import math

import pytest

from forecasting.monitoring.alerting import Finding, assess, reconcile, unjudged
from forecasting.monitoring.quality import flow_run_failure, pipeline_findings


def volatility(value: float, margin: float = 0.35) -> Finding:
    breached, clear, severity = assess(value, 1.75, neutral=1.0, resolve_margin=margin)
    message = f"returns are {value:.2f}x as volatile (threshold 1.75x)"
    return Finding(
        "data_drift", "volatility_ratio", value, 1.75, breached, severity, message, clear
    )


KEY = ("data_drift", "volatility_ratio")


def test_a_breach_opens_one_alert():
    outcome = reconcile(set(), [volatility(2.0)])
    assert [finding.key for finding in outcome.to_open] == [KEY]
    assert outcome.to_keep == [] and outcome.to_resolve == []


def test_an_open_alert_is_kept_while_the_condition_holds_without_a_duplicate():
    outcome = reconcile({KEY}, [volatility(2.2)])
    assert outcome.to_open == [] and outcome.to_resolve == []
    assert outcome.to_keep[0].value == 2.2


def test_an_open_alert_resolves_when_the_condition_clears():
    assert reconcile({KEY}, [volatility(1.1)]).to_resolve == [KEY]


def test_hysteresis_keeps_the_alert_open_just_below_the_threshold():
    # 1.75 - 0.35 * 0.75 = 1.4875: between it and the threshold nothing opens or resolves.
    hovering = volatility(1.6)
    assert not hovering.breached and not hovering.clear
    assert reconcile({KEY}, [hovering]).to_keep == [hovering]
    assert reconcile(set(), [hovering]) == reconcile(set(), [])
    assert reconcile({KEY}, [volatility(1.48)]).to_resolve == [KEY]
    assert reconcile({KEY}, [volatility(1.6, margin=0.0)]).to_resolve == [KEY]


def test_flapping_values_open_one_alert_not_many():
    open_alerts: set[tuple[str, str]] = set()
    opened = 0
    for value in [1.8, 1.7, 1.8, 1.6, 1.76, 1.7, 1.5, 1.3, 1.8]:
        outcome = reconcile(open_alerts, [volatility(value)])
        opened += len(outcome.to_open)
        open_alerts |= {finding.key for finding in outcome.to_open}
        open_alerts -= set(outcome.to_resolve)
    assert opened == 2  # the first episode until 1.3, then a new one at the last 1.8


def test_a_metric_not_judged_today_neither_opens_nor_resolves():
    missing = unjudged("data_drift", "volatility_ratio", 1.75, "too few sessions")
    assert missing.message == "volatility_ratio not judged: too few sessions"
    assert reconcile({KEY}, [missing]) == reconcile({KEY}, [])
    assert reconcile({KEY}, []).to_resolve == []


def test_reconcile_rejects_two_findings_for_one_metric():
    with pytest.raises(ValueError, match="two findings"):
        reconcile(set(), [volatility(2.0), volatility(1.0)])


@pytest.mark.parametrize(
    ("value", "breached", "clear", "severity"),
    [(0.5, False, True, "info"), (0.02, False, False, "info"), (0.005, True, False, "warning"),
     (1e-5, True, False, "critical")],
)  # fmt: skip
def test_p_values_are_judged_in_orders_of_magnitude(value, breached, clear, severity):
    # threshold 0.01 (10^-2): resolves at p >= 10^-1.3 = 0.05, critical below 10^-4.
    result = assess(value, 0.01, neutral=1.0, resolve_margin=0.35, lower_is_worse=True,
                    log_scale=True)  # fmt: skip
    assert result == (breached, clear, severity)


def test_findings_check_their_fields():
    with pytest.raises(ValueError, match="kind"):
        Finding("drift", "x", 1.0, 0.0, True, "warning", "x 1 0")
    with pytest.raises(ValueError, match="severity"):
        Finding("pipeline", "x", 1.0, 0.0, True, "fatal", "x 1 0")
    with pytest.raises(ValueError, match="one line"):
        Finding("pipeline", "x", 1.0, 0.0, True, "warning", "x\n1 0")
    with pytest.raises(ValueError, match="NaN"):
        Finding("pipeline", "x", math.nan, 0.0, True, "warning", "x")
    assert Finding("pipeline", "x", 0.0, 0.0, False, "info", "x").clear is True
    assert unjudged("pipeline", "x", 0.0, "why").to_dict()["value"] is None


def test_pipeline_findings_and_the_failure_constructor():
    rejected, failed = pipeline_findings(challenger_rejected=True, reason="skill 1.1 vs 1.0")
    assert rejected.breached and "skill 1.1 vs 1.0" in rejected.message
    assert failed.metric == "flow_run_failed" and failed.clear
    skipped, _ = pipeline_findings(challenger_rejected=None)
    assert not skipped.judged
    failure = flow_run_failure(RuntimeError("database is locked\ntraceback..."))
    assert failure.key == ("pipeline", "flow_run_failed")
    assert failure.breached and failure.severity == "critical"
    assert "RuntimeError: database is locked" in failure.message and "\n" not in failure.message
    assert reconcile({failure.key}, [failed]).to_resolve == [failure.key]
