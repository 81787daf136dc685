import math

import numpy as np
import pytest

from forecasting.conformal import (
    aci_update,
    adaptive_quantiles,
    conformal_quantile,
    conformal_rank,
    minimum_scores,
)


def test_conformal_quantile_is_the_right_order_statistic():
    scores = np.arange(19, 0, -1, dtype="float64")  # 19 scores, 1..19, in reverse order
    assert conformal_rank(19, 0.80) == 16
    assert conformal_quantile(scores, 0.80) == 16.0  # ceil(20 * 0.80) = 16th smallest
    assert conformal_quantile(scores, 0.95) == 19.0  # ceil(20 * 0.95) = 19th smallest
    assert conformal_quantile(np.arange(10.0), 0.95) == math.inf  # ceil(11 * 0.95) = 11 > 10
    assert conformal_quantile(np.array([]), 0.5) == math.inf


@pytest.mark.parametrize(("level", "expected"), [(0.5, 1), (0.8, 4), (0.9, 9), (0.95, 19)])
def test_minimum_scores_is_the_fewest_for_a_finite_quantile(level, expected):
    assert minimum_scores(level) == expected
    assert conformal_quantile(np.arange(float(expected)), level) < math.inf
    assert conformal_quantile(np.arange(float(expected - 1)), level) == math.inf


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, 1.5])
def test_conformal_quantile_refuses_a_level_outside_0_1(level):
    with pytest.raises(ValueError, match="level"):
        conformal_quantile(np.arange(5.0), level)


def test_aci_update_moves_alpha_by_gamma_times_target_minus_miss():
    # Gibbs & Candes eq. (2): alpha + gamma * (target - err).
    assert aci_update(0.05, target_alpha=0.05, gamma=0.005, missed=False) == pytest.approx(
        0.05 + 0.005 * 0.05
    )
    assert aci_update(0.05, target_alpha=0.05, gamma=0.005, missed=True) == pytest.approx(
        0.05 - 0.005 * 0.95
    )
    assert aci_update(0.3, target_alpha=0.2, gamma=0.0, missed=True) == 0.3
    with pytest.raises(ValueError, match="gamma"):
        aci_update(0.1, target_alpha=0.1, gamma=-0.01, missed=False)


def test_adaptive_quantiles_follow_hand_computed_steps():
    # level 0.5 (target alpha 0.5), gamma 1: a hit adds 0.5 to alpha, a miss subtracts 0.5.
    # t=0: window [1,2,3,4], alpha 0.5: rank ceil(5 * 0.5) = 3 -> q = 3; s = 2 <= 3 hit -> 1.0
    # t=1: alpha 1.0 >= 1 -> q = 0; s = 0.5 > 0 miss -> alpha 0.5
    # t=2: window [3,4,2,0.5] sorted [0.5,2,3,4], rank 3 -> q = 3; s = 3.5 miss -> alpha 0.0
    # t=3: alpha 0 <= 0 -> q = max of window [4,2,0.5,3.5] = 4; s = 1 hit -> alpha 0.5
    # t=4: window [2,0.5,3.5,1] sorted [0.5,1,2,3.5], rank 3 -> q = 2; s = 2 hit (tie) -> 1.0
    # next: alpha 1.0 -> q = 0
    result = adaptive_quantiles(
        np.array([2.0, 0.5, 3.5, 1.0, 2.0]),
        level=0.5,
        gamma=1.0,
        window=4,
        warmup=np.array([1.0, 2.0, 3.0, 4.0]),
    )
    np.testing.assert_array_equal(result.quantile, [3.0, 0.0, 3.0, 4.0, 2.0])
    np.testing.assert_array_equal(result.alpha, [0.5, 1.0, 0.5, 0.0, 0.5])
    np.testing.assert_array_equal(result.missed, [False, True, True, False, False])
    assert result.next_alpha == 1.0
    assert result.next_quantile == 0.0


def test_adaptive_quantiles_with_too_few_scores_use_the_largest():
    # level 0.8 (target 0.2), gamma 0.1: a hit adds 0.02, a miss subtracts 0.08; no warmup.
    # t=0: no score yet -> q = inf, a hit -> alpha 0.22
    # t=1: [1], level 0.78: rank ceil(2 * 0.78) = 2 > 1 -> largest, 1; s = 3 miss -> 0.14
    # t=2: [1,3], level 0.86: rank ceil(3 * 0.86) = 3 > 2 -> 3; s = 2 hit -> 0.16
    # t=3: [1,3,2], level 0.84: rank ceil(4 * 0.84) = 4 > 3 -> 3; s = 5 miss -> 0.08
    # next: [1,3,2,5], level 0.92: rank ceil(5 * 0.92) = 5 > 4 -> 5
    result = adaptive_quantiles(np.array([1.0, 3.0, 2.0, 5.0]), level=0.8, gamma=0.1, window=10)
    np.testing.assert_array_equal(result.quantile, [math.inf, 1.0, 3.0, 3.0])
    np.testing.assert_allclose(result.alpha, [0.2, 0.22, 0.14, 0.16])
    np.testing.assert_array_equal(result.missed, [False, True, False, True])
    assert result.next_alpha == pytest.approx(0.08)
    assert result.next_quantile == 5.0


def test_adaptive_quantiles_with_gamma_0_are_rolling_split_conformal():
    scores = np.random.default_rng(1).exponential(size=300)
    result = adaptive_quantiles(scores[100:], level=0.9, gamma=0.0, window=100, warmup=scores[:100])
    expected = [conformal_quantile(scores[t : t + 100], 0.9) for t in range(200)]
    np.testing.assert_array_equal(result.quantile, expected)
    np.testing.assert_array_equal(result.missed, scores[100:] > result.quantile)
    assert result.next_quantile == conformal_quantile(scores[200:], 0.9)
    np.testing.assert_allclose(result.alpha, np.full(200, 0.1))


def test_adaptive_quantiles_never_look_ahead():
    scores = np.random.default_rng(2).exponential(size=400)
    original = adaptive_quantiles(scores, level=0.9, window=50)
    day = 237
    poisoned = scores.copy()
    poisoned[day:] *= 1000.0  # the score of day `day` and everything after
    result = adaptive_quantiles(poisoned, level=0.9, window=50)
    np.testing.assert_array_equal(result.quantile[: day + 1], original.quantile[: day + 1])
    np.testing.assert_array_equal(result.alpha[: day + 1], original.alpha[: day + 1])
    np.testing.assert_array_equal(result.missed[:day], original.missed[:day])
    assert not np.array_equal(result.quantile, original.quantile)  # the poison did reach later days


def test_adaptive_miss_rate_is_close_to_alpha_on_exchangeable_scores():
    generator = np.random.default_rng(3)
    scores = np.abs(generator.standard_normal(5_000))
    result = adaptive_quantiles(
        scores, level=0.9, gamma=0.005, window=250, warmup=np.abs(generator.standard_normal(250))
    )
    # Gibbs & Candes, Proposition 4.1: |miss rate - alpha| <= (max(a1, 1 - a1) + gamma) / (gamma T)
    bound = (0.9 + 0.005) / (0.005 * len(scores))
    assert abs(result.missed.mean() - 0.1) <= bound
    assert abs(result.missed.mean() - 0.1) < 0.01  # and on exchangeable data, far tighter


def test_adaptive_quantiles_recover_coverage_after_a_shift_where_split_conformal_does_not():
    generator = np.random.default_rng(4)
    warmup = np.abs(generator.standard_normal(500))
    # The scale of the scores doubles half-way through.
    scale = np.repeat([1.0, 2.0], 2_000)
    scores = np.abs(generator.standard_normal(4_000)) * scale
    # A window longer than the series: the quantile sees all past scores, so only ACI's level
    # (not a short window forgetting the old regime) can restore coverage.
    adaptive = adaptive_quantiles(scores, level=0.9, gamma=0.005, window=10_000, warmup=warmup)
    fixed_missed = scores > conformal_quantile(warmup, 0.9)
    after = slice(2_000, None)
    assert abs(adaptive.missed[after].mean() - 0.1) < 0.02
    assert fixed_missed[after].mean() > 0.3  # P(|N(0, 4)| > 1.645) = 0.41
    assert abs(adaptive.missed[:2_000].mean() - 0.1) < 0.02


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"level": 1.0}, "level"),
        ({"level": 0.9, "window": 0}, "window"),
        ({"level": 0.9, "gamma": -1.0}, "gamma"),
        ({"level": 0.9, "warmup": np.array([np.nan])}, "warmup"),
    ],
)
def test_adaptive_quantiles_refuse_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        adaptive_quantiles(np.array([1.0, 2.0]), **kwargs)


def test_adaptive_quantiles_refuse_non_finite_scores():
    with pytest.raises(ValueError, match="scores"):
        adaptive_quantiles(np.array([1.0, np.inf]), level=0.9)
