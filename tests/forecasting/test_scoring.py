import math

import numpy as np
import pytest
from scipy import stats

from forecasting.scoring import coverage, diebold_mariano, winkler_score

ACTUAL = np.array([5.0, 1.0, 12.0, 10.0])
LOWER = np.full(4, 2.0)
UPPER = np.full(4, 10.0)


def test_coverage_counts_days_inside_the_bounds_included():
    # 5 inside, 1 below, 12 above, 10 on the upper bound (inside).
    assert coverage(ACTUAL, LOWER, UPPER) == 0.5


def test_winkler_score_on_a_hand_computed_example():
    # level 0.8: alpha 0.2, penalty 2 / 0.2 = 10 per unit outside; width 8.
    # inside: 8; 1 below 2 by 1: 8 + 10; 12 above 10 by 2: 8 + 20; on the bound: 8.
    scores = winkler_score(ACTUAL, LOWER, UPPER, 0.8)
    np.testing.assert_allclose(scores, [8.0, 18.0, 28.0, 8.0])
    # level 0.95: penalty 40.
    np.testing.assert_allclose(winkler_score(ACTUAL, LOWER, UPPER, 0.95), [8.0, 48.0, 88.0, 8.0])


def test_winkler_score_is_minimised_in_expectation_by_the_true_quantiles():
    actual = np.random.default_rng(0).standard_normal(200_000)
    z = stats.norm.ppf(0.975)
    scores = {
        width: winkler_score(
            actual, np.full_like(actual, -width), np.full_like(actual, width), 0.95
        )
        for width in (0.8 * z, z, 1.2 * z)
    }
    assert scores[z].mean() < scores[0.8 * z].mean()
    assert scores[z].mean() < scores[1.2 * z].mean()


def test_interval_scores_refuse_bad_input():
    with pytest.raises(ValueError, match="equal length"):
        coverage(ACTUAL, LOWER[:3], UPPER)
    with pytest.raises(ValueError, match="level"):
        winkler_score(ACTUAL, LOWER, UPPER, 95)
    with pytest.raises(ValueError, match="lower bound"):
        winkler_score(ACTUAL, UPPER, LOWER, 0.95)


def test_diebold_mariano_on_a_hand_computed_example_with_horizon_2():
    errors_a = np.array([1.0, -2.0, 3.0, 0.0, 2.0])
    errors_b = np.ones(5)
    # d = e_a^2 - e_b^2 = [0, 3, 8, -1, 3], mean 2.6, centred [-2.6, 0.4, 5.4, -3.6, 0.4]
    # g0 = (6.76 + 0.16 + 29.16 + 12.96 + 0.16) / 5 = 9.84
    # g1 = (0.4 * -2.6 + 5.4 * 0.4 + -3.6 * 5.4 + 0.4 * -3.6) / 5 = -19.76 / 5 = -3.952
    # long-run variance 9.84 - 2 * 3.952 = 1.936; DM = 2.6 / sqrt(1.936 / 5) = 4.1784
    # HLN: sqrt((5 + 1 - 4 + 2 / 5) / 5) = sqrt(0.48); DM* = 2.8949, t with 4 df: p = 0.04435
    result = diebold_mariano(errors_a, errors_b, horizon=2)
    assert result.statistic == pytest.approx(2.6 / math.sqrt(1.936 / 5) * math.sqrt(0.48))
    assert result.statistic == pytest.approx(2.894852, abs=1e-6)
    assert result.p_value == pytest.approx(0.044346, abs=1e-6)
    assert result.n == 5
    assert result.mean_loss_difference == pytest.approx(2.6)


def test_diebold_mariano_at_horizon_1_is_the_paired_t_test():
    generator = np.random.default_rng(1)
    errors_a = generator.normal(0.0, 1.0, 300)
    errors_b = generator.normal(0.0, 1.2, 300)
    for power in (1, 2):
        result = diebold_mariano(errors_a, errors_b, power=power)
        paired = stats.ttest_rel(np.abs(errors_a) ** power, np.abs(errors_b) ** power)
        assert result.statistic == pytest.approx(paired.statistic, rel=1e-10)
        assert result.p_value == pytest.approx(paired.pvalue, rel=1e-10)
    # a has the smaller errors: a negative statistic, and on 300 days a clear one.
    assert result.statistic < 0
    assert result.p_value < 0.01


def test_diebold_mariano_falls_back_to_the_lag_0_variance_when_the_long_run_one_is_negative():
    # d = [2, 0, 2, 0, 2, 0]: mean 1, g0 = 1, g1 = -5 / 6, so g0 + 2 g1 < 0; with g0 alone
    # DM = 1 / sqrt(1 / 6), times HLN's sqrt((6 + 1 - 4 + 2 / 6) / 6).
    errors_a = np.sqrt(np.array([2.0, 0.0, 2.0, 0.0, 2.0, 0.0]))
    result = diebold_mariano(errors_a, np.zeros(6), horizon=2)
    assert result.statistic == pytest.approx(math.sqrt(6) * math.sqrt((3 + 1 / 3) / 6))
    assert result.p_value == pytest.approx(0.127464, abs=1e-6)


def test_diebold_mariano_with_identical_losses_finds_no_difference():
    errors = np.array([0.5, -1.0, 2.0])
    result = diebold_mariano(errors, -errors)  # same absolute errors every day
    assert (result.statistic, result.p_value, result.n) == (0.0, 1.0, 3)
    assert result.mean_loss_difference == 0.0


def test_diebold_mariano_with_a_constant_non_zero_loss_difference_is_undefined():
    result = diebold_mariano(np.full(4, 2.0), np.ones(4))
    assert math.isnan(result.statistic) and math.isnan(result.p_value)
    assert result.mean_loss_difference == 3.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"horizon": 0}, "horizon"), ({"horizon": 3}, "horizon"), ({"power": 0}, "power")],
)
def test_diebold_mariano_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        diebold_mariano(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0]), **kwargs)


def test_diebold_mariano_refuses_missing_errors():
    with pytest.raises(ValueError, match="finite"):
        diebold_mariano(np.array([1.0, np.nan, 3.0]), np.ones(3))
