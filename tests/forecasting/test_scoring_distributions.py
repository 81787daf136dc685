"""The pinball loss and the CRPS of a normal and a Student-t, against hand computations."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from forecasting.scoring import crps_normal, crps_student_t, pinball_loss, winkler_score


def _standard_normal_cdf(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _crps_by_integral(cdf, actual: float) -> float:
    """``integral (F(x) - 1{x >= y})^2 dx``, the CRPS's definition, by quadrature."""
    below = integrate.quad(lambda x: cdf(x) ** 2, -np.inf, actual, limit=200)[0]
    above = integrate.quad(lambda x: (1.0 - cdf(x)) ** 2, actual, np.inf, limit=200)[0]
    return below + above


def test_pinball_loss_on_a_hand_computed_example():
    # tau 0.9, quantile 3: actual 1 lies 2 below (loss 0.1 * 2), actual 5 lies 2 above (0.9 * 2).
    np.testing.assert_allclose(pinball_loss([1.0, 5.0, 3.0], 3.0, 0.9), [0.2, 1.8, 0.0])
    # tau 0.5: half the absolute error.
    np.testing.assert_allclose(pinball_loss([1.0, 5.0], [2.0, 2.0], 0.5), [0.5, 1.5])


def test_winkler_score_is_the_scaled_sum_of_the_bounds_pinball_losses():
    actual, lower, upper = np.array([5.0, 1.0, 12.0, 10.0]), np.full(4, 2.0), np.full(4, 10.0)
    for level in (0.8, 0.95):
        alpha = 1.0 - level
        pinball = pinball_loss(actual, lower, alpha / 2) + pinball_loss(
            actual, upper, 1 - alpha / 2
        )
        np.testing.assert_allclose(
            (2.0 / alpha) * pinball, winkler_score(actual, lower, upper, level)
        )


def test_pinball_loss_refuses_a_tau_outside_0_1():
    with pytest.raises(ValueError, match="tau"):
        pinball_loss([1.0], [1.0], 1.0)


def test_crps_normal_at_known_points_matches_the_textbook_formula():
    # z = 0: sigma * (2 phi(0) - 1 / sqrt(pi)) = sigma * (sqrt(2) - 1) / sqrt(pi); sigma = 2.
    assert crps_normal(3.0, 3.0, 2.0) == pytest.approx(
        2.0 * (math.sqrt(2.0) - 1.0) / math.sqrt(math.pi)
    )
    assert crps_normal(3.0, 3.0, 2.0) == pytest.approx(0.467390, abs=1e-6)
    # z = 1, sigma = 1: (2 Phi(1) - 1) + 2 phi(1) - 1 / sqrt(pi) = 0.682689 + 0.483941 - 0.564190.
    by_hand = (
        (2.0 * _standard_normal_cdf(1.0) - 1.0)
        + 2.0 * math.exp(-0.5) / math.sqrt(2.0 * math.pi)
        - 1.0 / math.sqrt(math.pi)
    )
    assert crps_normal(1.0, 0.0, 1.0) == pytest.approx(by_hand)
    assert by_hand == pytest.approx(0.602441, abs=1e-6)
    # Symmetric in the error's sign, and scales with sigma: z = -1 with sigma 3.
    assert crps_normal(-3.0, 0.0, 3.0) == pytest.approx(3.0 * by_hand)


@pytest.mark.parametrize(
    ("actual", "location", "scale"), [(0.3, 0.0, 1.0), (-2.5, 1.0, 0.7), (4.0, 0.5, 2.0)]
)
def test_crps_normal_matches_its_integral_definition(actual, location, scale):
    expected = _crps_by_integral(lambda x: stats.norm.cdf(x, location, scale), actual)
    assert crps_normal(actual, location, scale) == pytest.approx(expected, rel=1e-7)


def test_crps_student_t_at_the_centre_with_3_df_by_hand():
    # z = 0, nu = 3: f_3(0) = 2 / (pi sqrt(3)), so 2 f (nu + 0) / (nu - 1) = 2 sqrt(3) / pi;
    # B(1/2, 5/2) = 3 pi / 8 and B(1/2, 3/2) = pi / 2, so the last term is
    # 2 sqrt(3) (3 pi / 8) / (2 (pi / 2)^2) = 3 sqrt(3) / (2 pi). CRPS = sqrt(3) / (2 pi).
    assert crps_student_t(0.0, 0.0, 1.0, 3.0) == pytest.approx(math.sqrt(3.0) / (2.0 * math.pi))
    assert crps_student_t(1.0, 1.0, 2.5, 3.0) == pytest.approx(2.5 * math.sqrt(3.0) / (2 * math.pi))


@pytest.mark.parametrize(
    ("actual", "location", "scale", "df"),
    [(1.7, 0.5, 2.0, 3.0), (-3.0, 0.0, 1.0, 5.0), (0.3, 0.0, 1.0, 1.5), (1.0, 1.0, 0.5, 30.0)],
)
def test_crps_student_t_matches_its_integral_definition(actual, location, scale, df):
    expected = _crps_by_integral(lambda x: stats.t.cdf((x - location) / scale, df), actual)
    assert crps_student_t(actual, location, scale, df) == pytest.approx(expected, rel=1e-7)


def test_crps_student_t_tends_to_the_normals_as_df_grows():
    actual = np.array([-2.0, 0.0, 0.4, 3.0])
    normal = crps_normal(actual, 0.2, 1.3)
    gaps = [np.max(np.abs(crps_student_t(actual, 0.2, 1.3, df) - normal)) for df in (5, 50, 5e6)]
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 1e-6
    # Heavier tails spread the mass: at the centre the t's CRPS is the larger.
    assert crps_student_t(0.2, 0.2, 1.3, 5.0) > crps_normal(0.2, 0.2, 1.3)


def test_crps_broadcasts_per_day_parameters():
    actual = np.array([0.0, 1.0, -1.0])
    scale, df = np.array([1.0, 2.0, 0.5]), np.array([3.0, 4.0, 10.0])
    each = [crps_student_t(a, 0.0, s, d) for a, s, d in zip(actual, scale, df, strict=True)]
    np.testing.assert_allclose(crps_student_t(actual, 0.0, scale, df), each)
    assert crps_normal(actual, 0.0, scale).shape == (3,)


def test_crps_refuses_bad_parameters():
    with pytest.raises(ValueError, match="scale"):
        crps_normal([1.0], [0.0], [0.0])
    with pytest.raises(ValueError, match="df"):
        crps_student_t([1.0], [0.0], [1.0], 1.0)
