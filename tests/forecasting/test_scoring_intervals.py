"""Coverage per volatility tercile and Christoffersen's tests, against hand computations."""

import math

import numpy as np
import pytest

from forecasting.scoring import christoffersen_test, coverage_by_tercile

CLUSTERED = [1, 1, 1, 1, 0, 0, 0, 1, 1, 1]  # 7 hits of 10, the misses in one run


def _chi2_sf_1(statistic: float) -> float:
    """P(chi2_1 > x) = erfc(sqrt(x / 2))."""
    return math.erfc(math.sqrt(statistic / 2.0))


def _chi2_sf_2(statistic: float) -> float:
    """P(chi2_2 > x) = exp(-x / 2)."""
    return math.exp(-statistic / 2.0)


def test_coverage_by_tercile_on_a_hand_computed_example():
    proxy = np.array([6.0, 1.0, 5.0, 2.0, 4.0, 3.0])
    actual = np.array([0.0, 1.0, 1.0, 1.0, 0.0, 1.0])  # inside [0.5, 2] on days 1, 2, 3, 5
    lower, upper = np.full(6, 0.5), np.full(6, 2.0)
    # Low tercile: proxies 1 and 2 (days 1, 3): both inside. Middle: 3 and 4 (days 5, 4): one.
    # High: 5 and 6 (days 2, 0): one.
    np.testing.assert_allclose(coverage_by_tercile(actual, lower, upper, proxy), [1.0, 0.5, 0.5])


def test_coverage_by_tercile_splits_ties_in_time_order_into_equal_thirds():
    # Every proxy equal: the first two days are the low tercile, the last two the high one.
    actual = np.array([1.0, 1.0, 0.0, 1.0, 0.0, 0.0])
    result = coverage_by_tercile(actual, np.full(6, 0.5), np.full(6, 2.0), np.zeros(6))
    np.testing.assert_allclose(result, [1.0, 0.5, 0.0])


def test_coverage_by_tercile_refuses_too_few_days_or_a_missing_proxy():
    with pytest.raises(ValueError, match="3 days"):
        coverage_by_tercile([1.0, 1.0], [0.0, 0.0], [2.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="proxy"):
        coverage_by_tercile([1.0] * 3, [0.0] * 3, [2.0] * 3, [1.0, np.nan, 2.0])


def test_christoffersen_on_a_hand_computed_clustered_sequence():
    result = christoffersen_test(CLUSTERED, 0.8)
    # Unconditional: n1 = 7 hits, n0 = 3 misses, p = 0.8, pi = 0.7.
    lr_uc = -2 * (3 * math.log(0.2) + 7 * math.log(0.8)) + 2 * (
        3 * math.log(0.3) + 7 * math.log(0.7)
    )
    assert lr_uc == pytest.approx(0.563351, abs=1e-6)
    # Transitions (9): hit->hit n11 = 5, hit->miss n10 = 1, miss->miss n00 = 2, miss->hit n01 = 1.
    # pi_01 = 1/3, pi_11 = 5/6, pi_2 = 6/9 = 2/3.
    markov = 2 * math.log(2 / 3) + math.log(1 / 3) + math.log(1 / 6) + 5 * math.log(5 / 6)
    one_rate = 3 * math.log(1 / 3) + 6 * math.log(2 / 3)
    lr_ind = -2 * (one_rate - markov)
    assert lr_ind == pytest.approx(2.231436, abs=1e-6)
    assert result.n == 10 and result.hit_rate == 0.7
    assert result.lr_uc == pytest.approx(lr_uc)
    assert result.lr_ind == pytest.approx(lr_ind)
    assert result.lr_cc == pytest.approx(lr_uc + lr_ind)
    assert result.p_uc == pytest.approx(_chi2_sf_1(lr_uc))
    assert result.p_ind == pytest.approx(_chi2_sf_1(lr_ind))
    assert result.p_cc == pytest.approx(_chi2_sf_2(lr_uc + lr_ind))
    assert result.p_cc == pytest.approx(0.247241, abs=1e-6)


def test_christoffersen_independence_is_exactly_zero_when_both_transition_rates_agree():
    # Transitions of [1,1,0,1,1,1,0,0,1,1]: n11 = 4, n10 = 2, n01 = 2, n00 = 1, so
    # pi_01 = 2/3 = pi_11 = pi_2: no evidence of dependence.
    result = christoffersen_test([1, 1, 0, 1, 1, 1, 0, 0, 1, 1], 0.8)
    assert result.lr_ind == pytest.approx(0.0, abs=1e-12)
    assert result.p_ind == pytest.approx(1.0)
    assert result.lr_cc == pytest.approx(result.lr_uc)


def test_christoffersen_with_no_miss_is_finite():
    # n0 = 0: LR_uc = -2 (20 log 0.95 - 20 log 1) = -40 log 0.95; no miss, so no dependence.
    result = christoffersen_test(np.ones(20, dtype=bool), 0.95)
    assert result.lr_uc == pytest.approx(-40 * math.log(0.95))
    assert result.lr_ind == 0.0


def test_christoffersen_rejects_clustered_misses_and_keeps_its_size_on_iid_hits():
    clustered = np.r_[np.ones(380, dtype=bool), np.zeros(20, dtype=bool)]  # right rate, one run
    assert christoffersen_test(clustered, 0.95).p_ind < 1e-6
    generator = np.random.default_rng(3)
    draws = generator.random((1000, 500)) < 0.95
    rejections = np.mean([christoffersen_test(hits, 0.95).p_cc < 0.05 for hits in draws])
    assert 0.02 < rejections < 0.09


@pytest.mark.parametrize(
    ("inside", "level", "message"),
    [([1], 0.95, "at least 2"), ([1, 0, 2], 0.95, "booleans"), ([1, 0], 95, "level")],
)
def test_christoffersen_refuses_bad_input(inside, level, message):
    with pytest.raises(ValueError, match=message):
        christoffersen_test(inside, level)
