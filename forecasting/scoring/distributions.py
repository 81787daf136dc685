"""Quantile and distribution forecasts: the pinball loss and the CRPS of a normal and a Student-t.

Both are strictly proper scoring rules in the sense of Gneiting & Raftery, "Strictly Proper
Scoring Rules, Prediction, and Estimation", JASA 102 (2007) 359-378: in expectation they are
minimised by the true quantile (pinball) or the true distribution (CRPS). Lower is better; both
are in the units of the forecast variable, so an average over days compares with a mean absolute
error (the CRPS of a point forecast, a distribution with all its mass at one value, *is* its
absolute error).

This module needs numpy and scipy.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import special, stats

_INVERSE_SQRT_PI = 1.0 / math.sqrt(math.pi)


def pinball_loss(actual: npt.ArrayLike, quantile: npt.ArrayLike, tau: float) -> np.ndarray:
    """The pinball (quantile) loss of a forecast of the ``tau`` quantile, day by day.

    ``L = (1{y < q} - tau) * (q - y)``, i.e. ``tau * (y - q)`` when the actual ``y`` lies above
    the forecast quantile ``q`` and ``(1 - tau) * (q - y)`` when it lies below.

    For a central interval at level ``1 - alpha`` with bounds at the ``alpha / 2`` and
    ``1 - alpha / 2`` quantiles, the Winkler score is ``(2 / alpha)`` times the sum of the two
    bounds' pinball losses (Gneiting & Raftery 2007, Section 6.2).

    Parameters
    ----------
    actual, quantile : array_like
        What happened and the forecast quantile of it; broadcast together.
    tau : float
        The quantile's probability level in (0, 1).

    Returns
    -------
    numpy.ndarray
        The loss per day (non-negative), in the units of ``actual``.

    References
    ----------
    Koenker & Bassett, "Regression Quantiles", Econometrica 46 (1978) 33-50.
    Gneiting & Raftery (2007), Section 6.1 (quantile scores).
    """
    if not 0.0 < tau < 1.0:
        raise ValueError(f"tau must be in (0, 1), got {tau!r}")
    difference = np.asarray(actual, dtype="float64") - np.asarray(quantile, dtype="float64")
    return np.maximum(tau * difference, (tau - 1.0) * difference)


def _standardized(
    actual: npt.ArrayLike, location: npt.ArrayLike, scale: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """``(z, scale)`` with ``z = (actual - location) / scale``, after checking the scale."""
    actual_values, location_values, scale_values = np.broadcast_arrays(
        *(np.asarray(value, dtype="float64") for value in (actual, location, scale))
    )
    if (scale_values <= 0).any() or np.isinf(scale_values).any():
        raise ValueError("scale must be positive and finite")
    return (actual_values - location_values) / scale_values, scale_values


def crps_normal(actual: npt.ArrayLike, location: npt.ArrayLike, scale: npt.ArrayLike) -> np.ndarray:
    """The continuous ranked probability score of a normal forecast, in closed form.

    ``CRPS(F, y) = integral (F(x) - 1{x >= y})^2 dx``; for ``F = N(mu, sigma^2)`` and
    ``z = (y - mu) / sigma``::

        CRPS = sigma * (z * (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi))

    with ``Phi`` and ``phi`` the standard normal cdf and density. At ``y = mu`` it is
    ``sigma * (sqrt(2) - 1) / sqrt(pi)``, about ``0.2337 sigma``.

    Parameters
    ----------
    actual : array_like
        What happened.
    location, scale : array_like
        The normal's mean and standard deviation (positive), broadcast with ``actual``.

    Returns
    -------
    numpy.ndarray
        The score per day, in the units of ``actual``.

    References
    ----------
    Gneiting, Raftery, Westveld & Goldman, "Calibrated Probabilistic Forecasting Using Ensemble
    Model Output Statistics and Minimum CRPS Estimation", Monthly Weather Review 133 (2005)
    1098-1118, eq. (5). Gneiting & Raftery (2007), Section 4.2.
    """
    z, sigma = _standardized(actual, location, scale)
    return sigma * (z * (2.0 * special.ndtr(z) - 1.0) + 2.0 * stats.norm.pdf(z) - _INVERSE_SQRT_PI)


def crps_student_t(
    actual: npt.ArrayLike, location: npt.ArrayLike, scale: npt.ArrayLike, df: npt.ArrayLike
) -> np.ndarray:
    """The continuous ranked probability score of a location-scale Student-t, in closed form.

    For ``F = mu + sigma T_nu`` (``T_nu`` Student's t with ``nu > 1`` degrees of freedom, cdf
    ``F_nu`` and density ``f_nu``) and ``z = (y - mu) / sigma``::

        CRPS = sigma * (z (2 F_nu(z) - 1) + 2 f_nu(z) (nu + z^2) / (nu - 1)
                        - 2 sqrt(nu) B(1/2, nu - 1/2) / ((nu - 1) B(1/2, nu / 2)^2))

    with ``B`` the beta function. It tends to :func:`crps_normal`'s as ``nu`` grows; for
    ``nu <= 1`` the t has no mean and its CRPS is infinite.

    Parameters
    ----------
    actual : array_like
        What happened.
    location : array_like
        The t's location ``mu`` (its mean).
    scale : array_like
        The t's scale ``sigma`` (positive): **not** its standard deviation, which is
        ``sigma * sqrt(nu / (nu - 2))`` for ``nu > 2``. A unit-variance ("standardized") t of
        volatility ``s``, as GARCH models use, has ``sigma = s * sqrt((nu - 2) / nu)``.
    df : array_like
        Degrees of freedom ``nu > 1``, broadcast with the others.

    Returns
    -------
    numpy.ndarray
        The score per day, in the units of ``actual``.

    References
    ----------
    Jordan, Krüger & Lerch, "Evaluating Probabilistic Forecasts with scoringRules", J.
    Statistical Software 90(12) (2019), and the scoringRules vignette "Closed-form expressions
    for the continuous ranked probability score" (the ``t`` family). Thorarinsdottir &
    Gneiting, "Probabilistic forecasts of wind speed", JRSS A 173 (2010) 371-388.
    """
    z, sigma = _standardized(actual, location, scale)
    nu = np.broadcast_to(np.asarray(df, dtype="float64"), z.shape)
    if not (nu > 1.0).all():
        raise ValueError("df must be greater than 1 (the CRPS of a t with df <= 1 is infinite)")
    # B(1/2, nu - 1/2) / B(1/2, nu / 2)^2 in logs: both betas under- or overflow for large nu.
    beta_ratio = np.exp(special.betaln(0.5, nu - 0.5) - 2.0 * special.betaln(0.5, nu / 2.0))
    spread = 2.0 * np.sqrt(nu) * beta_ratio / (nu - 1.0)
    cdf, density = stats.t.cdf(z, nu), stats.t.pdf(z, nu)
    return sigma * (z * (2.0 * cdf - 1.0) + 2.0 * density * (nu + z * z) / (nu - 1.0) - spread)
