import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from forecasting.calendar import session_close, trading_days
from forecasting.config import DriftConfig
from forecasting.monitoring.drift import (
    PSI_EPSILON,
    data_drift,
    drift_inputs,
    population_stability_index,
    run_checks,
    two_sample_metric,
)
from forecasting.monitoring.performance import performance_drift, relative_rmse
from forecasting.monitoring.quality import data_quality

CONFIG = DriftConfig()


def quantiles(size: int, scale: float = 0.02) -> np.ndarray:
    """``size`` evenly spaced quantiles of a normal: a sample with exactly its distribution."""
    from scipy.stats import norm

    return norm.ppf((np.arange(size) + 0.5) / size) * scale


def features(returns: np.ndarray, volume_change: np.ndarray | None = None) -> pd.DataFrame:
    volume = quantiles(len(returns), 0.3) if volume_change is None else volume_change
    index = pd.bdate_range("2010-01-04", periods=len(returns), name="date")
    return pd.DataFrame({"close_return": returns, "volume_change": volume}, index=index)


def by_metric(findings):
    return {finding.metric: finding for finding in findings}


def test_identical_distributions_do_not_drift():
    reference, recent = features(quantiles(1000)), features(quantiles(60))
    findings = by_metric(data_drift(reference, recent, CONFIG))
    assert not any(finding.breached for finding in findings.values())
    assert findings["returns_ks_p_value"].value > 0.9
    assert findings["volatility_ratio"].value == pytest.approx(1.0, abs=0.05)


def test_random_samples_of_one_distribution_do_not_drift():
    random = np.random.default_rng(7)
    reference = features(random.normal(0, 0.02, 1000), random.normal(0, 0.3, 1000))
    recent = features(random.normal(0, 0.02, 60), random.normal(0, 0.3, 60))
    assert not any(finding.breached for finding in data_drift(reference, recent, CONFIG))


@pytest.mark.parametrize(("factor", "severity"), [(2.0, "warning"), (3.0, "critical")])
def test_a_volatility_jump_fires(factor, severity):
    reference, recent = features(quantiles(1000)), features(quantiles(60) * factor)
    findings = by_metric(data_drift(reference, recent, CONFIG))
    volatility = findings["volatility_ratio"]
    assert volatility.breached and volatility.severity == severity
    assert volatility.value == pytest.approx(factor, rel=0.05)
    # KS and PSI are weaker against a pure change of scale: they need a bigger jump.
    assert findings["returns_psi"].breached is (factor >= 3)
    assert findings["returns_ks_p_value"].breached is (factor >= 3)
    assert not findings["volume_change_ks_p_value"].breached
    assert f"{volatility.value:.2f}x" in volatility.message and "1.75x" in volatility.message


def test_psi_of_identical_samples_is_about_zero_and_grows_with_a_shift():
    sample = quantiles(1000)
    assert population_stability_index(sample, sample, 5) == pytest.approx(0.0, abs=1e-12)
    assert population_stability_index(sample, quantiles(60), 10) < 0.01
    assert population_stability_index(sample, quantiles(60) + 0.02, 5) > 0.25


def test_psi_gives_an_empty_bin_the_epsilon_share():
    reference = np.arange(100.0)
    recent = np.full(10, 99.0)  # every value in the top quintile
    shares = np.array([PSI_EPSILON] * 4 + [1.0])
    expected = float(np.sum((shares - 0.2) * np.log(shares / 0.2)))
    assert population_stability_index(reference, recent, 5) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("size", "metric", "threshold"),
    [(1000, "returns_ks_p_value", CONFIG.ks_p_value), (1001, "returns_wasserstein", 0.5)],
)
def test_reference_size_chooses_ks_or_wasserstein_as_evidently_does(size, metric, threshold):
    assert two_sample_metric("close_return", size) == metric
    findings = by_metric(data_drift(features(quantiles(size)), features(quantiles(60)), CONFIG))
    assert findings[metric].threshold == threshold
    assert not findings[metric].breached
    shifted = by_metric(
        data_drift(features(quantiles(size)), features(quantiles(60) * 3 + 0.01), CONFIG)
    )
    assert shifted[metric].breached


def test_too_short_samples_are_not_judged():
    findings = data_drift(features(quantiles(1000)), features(quantiles(30)), CONFIG)
    assert len(findings) == 5
    assert all(math.isnan(f.value) and not f.breached and not f.clear for f in findings)


def prices_on(days: list[dt.date], close: np.ndarray | None = None) -> pd.DataFrame:
    close = np.linspace(10, 20, len(days)) if close is None else close
    index = pd.DatetimeIndex(days, name="date")
    frame = pd.DataFrame({"open": close, "high": close * 1.01, "low": close * 0.99}, index=index)
    frame["close"], frame["adj_close"] = close, close
    frame["volume"] = 1e6 + 1e4 * np.arange(len(days)) % 7
    return frame


def test_drift_inputs_split_trailing_reference_and_recent_window():
    days = trading_days("2019-01-02", "2024-12-31")
    config = DriftConfig(reference_window=500)
    reference, recent = drift_inputs(prices_on(days), config=config)
    assert len(recent) == 60 and recent.index[-1] == pd.Timestamp(days[-1])
    assert len(reference) == 500 and reference.index[-1] < recent.index[0]
    training = DriftConfig(reference="training")
    reference, _ = drift_inputs(
        prices_on(days), config=training, train_start=days[0], train_end=days[800]
    )
    assert reference.index[0] == pd.Timestamp(days[1]) and len(reference) == 800


def realized_frame(relative_errors: np.ndarray, half_width: float = 0.05) -> pd.DataFrame:
    """Forecasts of a flat 100 close; the actual closes move by the given relative errors."""
    n = len(relative_errors)
    actual = 100.0 * (1 - relative_errors)
    frame = pd.DataFrame(
        {
            "target_date": pd.bdate_range("2024-01-02", periods=n).date,
            "base_close": 100.0 * (1 + 0.5 * relative_errors),
            "predicted_close": 100.0,
            "actual_close": actual,
        }
    )
    for level, width in ((80, half_width / 2), (95, half_width)):
        frame[f"lower_{level}"], frame[f"upper_{level}"] = 100 * (1 - width), 100 * (1 + width)
    return frame


ERRORS = np.resize([0.01, -0.02, 0.015, -0.005, 0.02, -0.01, 0.005, -0.015], 20)


def test_performance_drift_fires_when_errors_double():
    reference = relative_rmse(realized_frame(ERRORS))
    calm = by_metric(
        performance_drift(realized_frame(ERRORS * 1.2), reference_relative_rmse=reference)
    )
    worse = by_metric(
        performance_drift(realized_frame(ERRORS * 2), reference_relative_rmse=reference)
    )
    assert calm["realized_rmse_ratio"].value == pytest.approx(1.2, rel=0.05)
    assert not calm["realized_rmse_ratio"].breached
    assert worse["realized_rmse_ratio"].value == pytest.approx(2.0, rel=0.05)
    assert worse["realized_rmse_ratio"].breached


def test_skill_compares_with_the_naive_forecast_on_the_same_days():
    frame = realized_frame(ERRORS)
    naive_better = frame.assign(base_close=frame["actual_close"] * 1.001)
    findings = by_metric(performance_drift(naive_better, reference_relative_rmse=0.01))
    assert findings["realized_skill"].breached and findings["realized_skill"].value > 5
    lucky = frame.assign(predicted_close=frame["actual_close"] * 1.001)
    assert not by_metric(performance_drift(lucky, reference_relative_rmse=0.01))[
        "realized_skill"
    ].breached


@pytest.mark.parametrize(("misses", "breached"), [(2, False), (5, False), (6, True)])
def test_coverage_rule_is_a_one_sided_binomial_test(misses, breached):
    frame = realized_frame(np.full(20, 0.001), half_width=0.05)
    frame.loc[: misses - 1, "actual_close"] = 80.0  # outside both intervals
    coverage = by_metric(performance_drift(frame, reference_relative_rmse=0.01))
    finding = coverage["coverage_95_p_value"]
    from scipy.stats import binom

    assert finding.value == pytest.approx(binom.sf(misses - 1, 20, 0.05))
    assert finding.breached is breached
    assert f"{misses} of the last 20" in finding.message


def test_performance_needs_min_realized_forecasts():
    frame = realized_frame(ERRORS * 5)
    frame.loc[9:, "actual_close"] = np.nan  # the rest has not happened yet
    findings = performance_drift(frame, reference_relative_rmse=0.001)
    assert len(findings) == 4
    assert all(math.isnan(f.value) and not f.breached for f in findings)
    assert "9 of the 10" in findings[0].message


def test_only_the_newest_realized_forecasts_count():
    frame = pd.concat([realized_frame(ERRORS * 10), realized_frame(ERRORS)], ignore_index=True)
    frame["target_date"] = pd.bdate_range("2024-01-02", periods=len(frame)).date
    findings = by_metric(
        performance_drift(frame, reference_relative_rmse=relative_rmse(frame[20:]))
    )
    assert findings["realized_rmse_ratio"].value == pytest.approx(1.0)


DAYS = trading_days("2024-01-02", "2024-12-31")


def test_fresh_complete_prices_pass_quality_checks_across_holidays():
    last = DAYS[-1]
    findings = by_metric(
        data_quality(prices_on(DAYS), now=session_close(last) + pd.Timedelta(hours=1))
    )
    assert findings["stale_sessions"].value == 0 and not findings["stale_sessions"].breached
    assert findings["missing_sessions"].value == 0  # Christmas, Thanksgiving, ... are no sessions


def test_stale_prices_count_completed_sessions_behind():
    prices = prices_on(DAYS[:-3])  # newest bar three sessions old
    now = session_close(DAYS[-1]) + pd.Timedelta(minutes=5)
    stale = by_metric(data_quality(prices, now=now))["stale_sessions"]
    assert stale.value == 3 and stale.breached and stale.severity == "warning"
    before_close = session_close(DAYS[-1]) - pd.Timedelta(minutes=5)
    assert by_metric(data_quality(prices, now=before_close))["stale_sessions"].value == 2


def test_replays_judge_staleness_against_the_as_of_date():
    prices = prices_on(DAYS[:100])
    now = dt.datetime(2025, 6, 2, 12, tzinfo=dt.UTC)
    assert by_metric(data_quality(prices, now=now, as_of=DAYS[99]))["stale_sessions"].value == 0
    weekend = DAYS[99] + dt.timedelta(days=(5 - DAYS[99].weekday()) % 7 or 7)
    assert by_metric(data_quality(prices, now=now, as_of=weekend))["stale_sessions"].value <= 1


def test_missing_sessions_are_counted_and_named():
    prices = prices_on([day for day in DAYS if day not in (DAYS[-10], DAYS[-20])])
    now = session_close(DAYS[-1]) + pd.Timedelta(hours=1)
    missing = by_metric(data_quality(prices, now=now))["missing_sessions"]
    assert missing.value == 2 and missing.breached
    assert str(DAYS[-10]) in missing.message
    short = by_metric(data_quality(prices, now=now, config=DriftConfig(missing_lookback=15)))
    assert short["missing_sessions"].value == 1


def test_restated_history_and_failed_download_are_flags():
    now = session_close(DAYS[-1]) + pd.Timedelta(hours=1)
    findings = by_metric(
        data_quality(prices_on(DAYS), now=now, restated=True, download_failed=True)
    )
    restated = findings["history_restated"]
    assert restated.breached and restated.severity == "warning"
    assert (
        findings["download_failed"].breached and findings["download_failed"].severity == "warning"
    )


def test_the_restatement_alert_names_its_factor():
    now = session_close(DAYS[-1]) + pd.Timedelta(hours=1)
    what = "adj_close x0.999 on 6,428 stored bars from 1999-01-22 to 2024-08-08"
    restated = by_metric(data_quality(prices_on(DAYS), now=now, restatement=what))
    finding = restated["history_restated"]
    assert finding.breached and finding.severity == "warning"
    assert f"restated: {what};" in finding.message


def volume_findings(volume: np.ndarray, **config) -> dict:
    prices = prices_on(DAYS[: len(volume)])
    prices["volume"] = volume
    now = session_close(DAYS[len(volume) - 1]) + pd.Timedelta(hours=1)
    return by_metric(data_quality(prices, now=now, config=DriftConfig(**config)))


def test_steady_volumes_raise_no_volume_finding():
    findings = volume_findings(np.round(np.random.default_rng(3).uniform(2e6, 6e6, 100), -2))
    assert findings["zero_volume_sessions"].value == 0
    assert findings["repeated_volume_sessions"].value == 1
    assert findings["volume_jump_ratio"].value < 3
    assert not any(f.breached for f in findings.values())


def test_three_identical_volumes_20x_too_low_are_found():
    volume = np.round(np.random.default_rng(3).uniform(2e6, 6e6, 100), -2)
    volume[-5:-2] = 200_000.0  # about 20x below the usual four million

    findings = volume_findings(volume)

    repeated = findings["repeated_volume_sessions"]
    assert (repeated.value, repeated.breached, repeated.severity) == (3, True, "warning")
    assert f"to {DAYS[97]}, volume 200,000" in repeated.message
    jump = findings["volume_jump_ratio"]
    assert jump.value > 20 and jump.breached and f"{DAYS[95]}" in jump.message
    assert "below the median of the 20 sessions before" in jump.message


def test_zero_volume_and_a_jump_are_found_in_the_lookback_only():
    volume = np.full(100, 4_000_000.0) + 100 * (np.arange(100) % 2)
    volume[-3] = 0.0
    volume[-10] = 100_000_000.0  # 25x
    findings = volume_findings(volume)
    zero = findings["zero_volume_sessions"]
    assert zero.value == 1 and zero.breached and str(DAYS[97]) in zero.message
    jump = findings["volume_jump_ratio"]
    assert jump.value == pytest.approx(25, rel=1e-3) and jump.breached
    assert "above the median" in jump.message
    # Older than the lookback: history, not a feed that is broken now.
    quiet = volume_findings(volume, volume_lookback=2)
    assert not any(quiet[m].breached for m in ("zero_volume_sessions", "volume_jump_ratio"))


def test_run_checks_returns_every_metric_once_judged_or_not():
    days = trading_days("2019-01-02", "2024-12-31")
    prices = prices_on(days, close=100 * np.exp(np.cumsum(np.resize(quantiles(61), len(days)))))
    findings = run_checks(prices, now=session_close(days[-1]) + pd.Timedelta(hours=1))
    metrics = [finding.metric for finding in findings]
    assert len(metrics) == len(set(metrics)) == 18
    assert {f.kind for f in findings} == {
        "data_drift",
        "performance_drift",
        "data_quality",
        "pipeline",
    }
    unjudged = {f.metric for f in findings if not f.judged}
    assert unjudged == {
        "realized_rmse_ratio",
        "realized_skill",
        "coverage_80_p_value",
        "coverage_95_p_value",
        "challenger_rejected",
    }
    earlier = run_checks(prices, now=dt.datetime(2026, 1, 5), as_of=days[-100])
    assert by_metric(earlier)["stale_sessions"].value == 0


def test_every_message_is_one_line_with_value_and_threshold():
    days = trading_days("2019-01-02", "2024-12-31")
    prices = prices_on(days[:-2], close=np.linspace(50, 60, len(days) - 2))
    realized = realized_frame(ERRORS * 3)
    findings = run_checks(
        prices,
        now=session_close(days[-1]) + pd.Timedelta(hours=1),
        realized=realized,
        reference_relative_rmse=0.01,
        restated=True,
        challenger_rejected=True,
        promotion_reason="skill 1.10 vs champion 1.00",
    )
    for finding in findings:
        assert "\n" not in finding.message
        shown = f"{finding.threshold:g}"
        assert shown in finding.message, finding.message
        value = finding.value
        candidates = {f"{value:.2f}", f"{value:.3f}", f"{value:.2g}", f"{value:g}", f"{value:.0f}"}
        assert any(text in finding.message for text in candidates), finding.message
