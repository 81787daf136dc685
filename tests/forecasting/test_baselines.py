import datetime as dt
import math
import sys
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecasting.baselines import (
    garch_forecasts,
    interval_columns,
    naive_volatility_forecasts,
)
from forecasting.conformal import conformal_quantile
from forecasting.scoring import coverage

COLUMNS = ["base_close", "predicted_close", "lower_80", "upper_80", "lower_95", "upper_95"]


def simulated_garch_close(
    n: int, seed: int, *, omega: float = 0.02, alpha: float = 0.08, beta: float = 0.9
) -> pd.Series:
    """Closes whose daily log returns (in percent) follow a GARCH(1,1) with t(6) innovations."""
    generator = np.random.default_rng(seed)
    nu = 6
    innovations = generator.standard_t(nu, n) * math.sqrt((nu - 2) / nu)
    variance = omega / (1 - alpha - beta)
    returns = np.empty(n)
    for t in range(n):
        returns[t] = math.sqrt(variance) * innovations[t]
        variance = omega + alpha * returns[t] ** 2 + beta * variance
    close = 100.0 * np.exp(np.cumsum(returns / 100.0))
    return pd.Series(close, index=pd.bdate_range("2001-01-01", periods=n), name="close")


def poisoned_after(close: pd.Series, day: pd.Timestamp) -> pd.Series:
    poisoned = close.copy()
    poisoned[poisoned.index > day] *= 1000.0
    return poisoned


def test_naive_volatility_forecasts_on_a_hand_computed_example():
    # Returns r1..r7 = 0.01, -0.01, 0.02, -0.03, 0, 0.06, -0.03; volatility window 2, so
    # sigma_j = |r_{j-1} - r_j| / sqrt(2): sigma2 = 0.02/√2, sigma3 = 0.03/√2, sigma4 = 0.05/√2,
    # sigma5 = 0.03/√2, sigma6 = 0.06/√2, sigma7 = 0.09/√2.
    # Scores |r_s| / sigma_{s-1}: s3 = √2, s4 = √2, s5 = 0, s6 = 2√2, s7 = √2/2.
    # As of day 6 (calibration window 4): scores [√2, √2, 0, 2√2]; 50%: rank ceil(5 * 0.5) = 3,
    # q = √2; 80%: rank 4, q = 2√2. Half widths q * sigma6: 0.06 and 0.12; C6 = 100 e^0.05.
    # As of day 7: scores [√2, 0, 2√2, √2/2]: q50 = √2, q80 = 2√2; half widths 0.09, 0.18;
    # C7 = 100 e^0.02.
    returns = [0.01, -0.01, 0.02, -0.03, 0.0, 0.06, -0.03]
    close = pd.Series(
        100.0 * np.exp(np.cumsum([0.0, *returns])),
        index=pd.bdate_range("2024-01-01", periods=8),
    )
    result = naive_volatility_forecasts(
        close, levels=(0.5, 0.8), volatility_window=2, calibration_window=4
    )
    assert list(result.index) == list(close.index[6:])
    assert result.index.name == "as_of"
    assert list(result.columns) == [
        "base_close",
        "predicted_close",
        "lower_50",
        "upper_50",
        "lower_80",
        "upper_80",
        "volatility",
        "variance",
    ]
    expected = pd.DataFrame(
        {
            "base_close": 100 * np.exp([0.05, 0.02]),
            "predicted_close": 100 * np.exp([0.05, 0.02]),
            "lower_50": 100 * np.exp([-0.01, -0.07]),
            "upper_50": 100 * np.exp([0.11, 0.11]),
            "lower_80": 100 * np.exp([-0.07, -0.16]),
            "upper_80": 100 * np.exp([0.17, 0.20]),
            "volatility": np.array([0.06, 0.09]) / math.sqrt(2),
            "variance": np.array([0.06, 0.09]) ** 2 / 2,
        },
        index=result.index,
    )
    pd.testing.assert_frame_equal(result, expected, rtol=1e-12)


def test_naive_volatility_forecasts_match_a_day_by_day_reference():
    close = simulated_garch_close(400, seed=1)
    result = naive_volatility_forecasts(close, volatility_window=20, calibration_window=100)
    returns = np.log(close / close.shift(1))
    sigma = returns.rolling(20).std()
    scores = (returns.abs() / sigma.shift(1)).to_numpy()
    for day in (120, 250, 399):  # as-of positions; the first row is at 20 + 100
        as_of = close.index[day]
        trailing = scores[day - 99 : day + 1]
        for level in (0.80, 0.95):
            lower, upper = interval_columns(level)
            half_width = conformal_quantile(trailing, level) * sigma.iloc[day]
            assert result.loc[as_of, lower] == pytest.approx(
                close.iloc[day] * math.exp(-half_width)
            )
            assert result.loc[as_of, upper] == pytest.approx(close.iloc[day] * math.exp(half_width))
    assert result.index[0] == close.index[120]
    assert len(result) == 400 - 120


def test_naive_volatility_forecasts_never_look_ahead():
    close = simulated_garch_close(600, seed=2)
    day = close.index[450]
    original = naive_volatility_forecasts(close)
    poisoned = naive_volatility_forecasts(poisoned_after(close, day))
    pd.testing.assert_frame_equal(poisoned.loc[:day], original.loc[:day], rtol=0, atol=0)
    assert not np.allclose(poisoned.loc[day:, "upper_95"], original.loc[day:, "upper_95"])


def test_naive_volatility_coverage_is_near_nominal_on_a_garch_series():
    close = simulated_garch_close(5_000, seed=3)
    result = naive_volatility_forecasts(close)
    actual = close.shift(-1).loc[result.index].to_numpy()[:-1]
    rows = result.iloc[:-1]  # the last row's target is not in the series
    assert coverage(actual, rows["lower_80"], rows["upper_80"]) == pytest.approx(0.80, abs=0.02)
    assert coverage(actual, rows["lower_95"], rows["upper_95"]) == pytest.approx(0.95, abs=0.01)


def test_naive_volatility_forecasts_are_fast():
    close = simulated_garch_close(6_500, seed=4)
    started = time.perf_counter()
    naive_volatility_forecasts(close)
    assert time.perf_counter() - started < 1.0  # about 0.03 s


def test_naive_volatility_forecasts_of_a_short_series_are_empty():
    close = simulated_garch_close(200, seed=5)
    result = naive_volatility_forecasts(close)
    assert result.empty
    assert list(result.columns) == [*COLUMNS, "volatility", "variance"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"calibration_window": 10}, "too small"),
        ({"volatility_window": 1}, "volatility_window"),
        ({"levels": (0.975,)}, "whole percentage"),
    ],
)
def test_naive_volatility_forecasts_refuse_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        naive_volatility_forecasts(simulated_garch_close(300, seed=6), **kwargs)


def test_baselines_refuse_unsorted_or_non_positive_closes():
    close = simulated_garch_close(300, seed=7)
    with pytest.raises(ValueError, match="sorted"):
        naive_volatility_forecasts(close.iloc[::-1])
    with pytest.raises(ValueError, match="positive"):
        naive_volatility_forecasts(close.where(close.index != close.index[5], 0.0))


GARCH_DAYS = 400
GARCH_WINDOW = 250
GARCH_REFIT = 60


@pytest.fixture(scope="module")
def garch_close() -> pd.Series:
    return simulated_garch_close(GARCH_DAYS, seed=8)


@pytest.fixture(scope="module")
def garch_result(garch_close) -> pd.DataFrame:
    start = garch_close.index[300].date()
    return garch_forecasts(
        garch_close, start=start, window=GARCH_WINDOW, refit_every=GARCH_REFIT, dist="t"
    )


def test_garch_forecasts_cover_the_days_from_start(garch_result, garch_close):
    assert list(garch_result.index) == list(garch_close.index[300:])
    assert list(garch_result.columns) == [*COLUMNS, "volatility", "variance", "df"]
    assert (garch_result["df"] > 2).all()
    assert (garch_result["lower_95"] < garch_result["lower_80"]).all()
    assert (garch_result["lower_80"] < garch_result["predicted_close"]).all()
    assert (garch_result["predicted_close"] < garch_result["upper_80"]).all()
    assert (garch_result["upper_80"] < garch_result["upper_95"]).all()


def test_garch_forecasts_follow_the_garch_recursion_between_refits(garch_result, garch_close):
    from arch import arch_model

    percent_returns = 100 * np.diff(np.log(garch_close.to_numpy()))
    refit_day = 300  # the first as-of day is a refit day; it sees returns[:300]
    fit = arch_model(
        percent_returns[refit_day - GARCH_WINDOW : refit_day],
        mean="Constant",
        vol="GARCH",
        p=1,
        q=1,
        dist="t",
        rescale=False,
    ).fit(disp="off", show_warning=False)
    mu, omega, alpha, beta, nu = fit.params[["mu", "omega", "alpha[1]", "beta[1]", "nu"]]
    # On the refit day: the fit's own one-step forecast.
    variance = fit.forecast(horizon=1, reindex=False).variance.iloc[-1, 0]
    # Then the same parameters, one GARCH step per new return.
    for day in range(refit_day, refit_day + GARCH_REFIT):
        if day > refit_day:
            variance = omega + alpha * (percent_returns[day - 1] - mu) ** 2 + beta * variance
        row = garch_result.loc[garch_close.index[day]]
        base = garch_close.iloc[day]
        assert row["volatility"] == pytest.approx(math.sqrt(variance) / 100, rel=1e-6)
        assert row["variance"] == pytest.approx(variance / 100**2, rel=1e-6)
        assert row["predicted_close"] == pytest.approx(base * math.exp(mu / 100), rel=1e-9)
        # arch's t innovations have unit variance: t quantile * sqrt((nu - 2) / nu).
        z = stats.t.ppf(0.975, nu) * math.sqrt((nu - 2) / nu)
        assert row["upper_95"] == pytest.approx(
            base * math.exp((mu + math.sqrt(variance) * z) / 100), rel=1e-6
        )
    # The next block has its own fit: its first day differs from the old parameters' recursion.
    next_variance = omega + alpha * (percent_returns[refit_day + GARCH_REFIT - 1] - mu) ** 2
    next_variance += beta * variance
    next_row = garch_result.loc[garch_close.index[refit_day + GARCH_REFIT]]
    assert next_row["volatility"] != pytest.approx(math.sqrt(next_variance) / 100, rel=1e-6)


def test_garch_forecasts_never_look_ahead(garch_result, garch_close):
    day = garch_close.index[330]  # inside the first block, so the block's own fit is tested
    poisoned = garch_forecasts(
        poisoned_after(garch_close, day),
        start=garch_close.index[300].date(),
        window=GARCH_WINDOW,
        refit_every=GARCH_REFIT,
    )
    pd.testing.assert_frame_equal(poisoned.loc[:day], garch_result.loc[:day], rtol=0, atol=0)
    assert not np.allclose(poisoned.loc[day:, "upper_95"], garch_result.loc[day:, "upper_95"])


def test_garch_forecasts_leave_out_days_without_a_full_window(garch_close):
    result = garch_forecasts(
        garch_close.iloc[:300], start=dt.date(2001, 1, 1), window=280, refit_every=100
    )
    assert result.index[0] == garch_close.index[280]
    assert len(result) == 20


def test_garch_forecasts_refuse_bad_arguments(garch_close):
    with pytest.raises(ValueError, match="refit_every"):
        garch_forecasts(garch_close, window=250, refit_every=0)
    with pytest.raises(ValueError, match="window"):
        garch_forecasts(garch_close, window=10)


def test_garch_forecasts_say_how_to_install_arch_when_it_is_missing(garch_close, monkeypatch):
    monkeypatch.setitem(sys.modules, "arch", None)  # makes `import arch` raise ImportError
    with pytest.raises(ImportError, match="pip install arch"):
        garch_forecasts(garch_close, window=250)


def test_garch_forecasts_variance_is_the_square_of_volatility(garch_result):
    np.testing.assert_allclose(
        garch_result["variance"], garch_result["volatility"] ** 2, rtol=1e-12
    )


def test_garch_forecasts_are_unchanged_by_naming_the_default_kind(garch_result, garch_close):
    # kind="garch" is the default: the same call spelled out gives the same numbers, bit for bit.
    spelled_out = garch_forecasts(
        garch_close,
        start=garch_close.index[300].date(),
        window=GARCH_WINDOW,
        refit_every=GARCH_REFIT,
        dist="t",
        kind="garch",
    )
    pd.testing.assert_frame_equal(spelled_out, garch_result, rtol=0, atol=0)


GJR_DAYS = 400  # the newest NVDA sessions of the bundled sample: 300 returns per fit
GJR_WINDOW = 300
GJR_REFIT = 50


@pytest.fixture(scope="module")
def nvda_close() -> pd.Series:
    from forecasting.prices.sources import load_prices

    return load_prices("sample")["close"].iloc[-GJR_DAYS:]


def test_gjr_forecasts_follow_the_gjr_recursion_on_real_returns(nvda_close):
    from arch import arch_model

    gjr = garch_forecasts(nvda_close, window=GJR_WINDOW, refit_every=GJR_REFIT, kind="gjr")
    garch = garch_forecasts(nvda_close, window=GJR_WINDOW, refit_every=GJR_REFIT)
    assert list(gjr.index) == list(nvda_close.index[GJR_WINDOW:])
    assert np.isfinite(gjr.to_numpy()).all()
    assert (gjr["variance"] > 0).all() and (gjr["volatility"] > 0).all()
    assert (gjr["lower_95"] < gjr["lower_80"]).all() and (gjr["upper_80"] < gjr["upper_95"]).all()
    # The leverage term moves the intervals: by about 11 dollars at most on a ~130 dollar close.
    assert (gjr["upper_95"] - garch["upper_95"]).abs().max() > 1.0

    percent_returns = 100 * np.diff(np.log(nvda_close.to_numpy()))
    fit = arch_model(
        percent_returns[:GJR_WINDOW],
        mean="Constant",
        vol="GARCH",
        p=1,
        o=1,
        q=1,
        dist="t",
        rescale=False,
    ).fit(disp="off", show_warning=False)
    mu, omega, alpha, gamma, beta = fit.params[["mu", "omega", "alpha[1]", "gamma[1]", "beta[1]"]]
    assert gamma >= 0  # falls raise NVDA's variance more than rises (about 0.2 on this window)
    variance = fit.forecast(horizon=1, reindex=False).variance.iloc[-1, 0]
    for day in range(GJR_WINDOW, GJR_WINDOW + GJR_REFIT):
        if day > GJR_WINDOW:
            shock = percent_returns[day - 1] - mu
            variance = omega + (alpha + gamma * (shock < 0)) * shock**2 + beta * variance
        row = gjr.loc[nvda_close.index[day]]
        assert row["variance"] == pytest.approx(variance / 100**2, rel=1e-6)
        assert row["volatility"] == pytest.approx(math.sqrt(variance) / 100, rel=1e-6)


def test_garch_forecasts_refuse_an_unknown_kind(garch_close):
    with pytest.raises(ValueError, match="kind"):
        garch_forecasts(garch_close, window=250, kind="egarch")


def test_anchored_garch_forecasts_of_a_day_do_not_depend_on_the_range_asked_for(garch_close):
    """The product computes the newest weeks every day: with refits anchored to positions of
    the series, a day's forecast is the same from any start, and refits fall on the anchor."""
    days = garch_close.index
    kwargs = {"window": 300, "refit_every": 20, "anchor": 7}
    wide = garch_forecasts(garch_close, start=days[307].date(), **kwargs)
    for start in (days[327], days[340], days[351]):
        narrow = garch_forecasts(garch_close, start=start.date(), **kwargs)
        assert narrow.index[0] == start
        pd.testing.assert_frame_equal(narrow, wide.loc[narrow.index])
    # Not anchored, a later start refits on other days: the same day's forecast differs.
    unanchored = garch_forecasts(garch_close, start=days[333].date(), window=300, refit_every=20)
    assert not np.allclose(unanchored["upper_95"], wide.loc[unanchored.index, "upper_95"])


def test_anchored_garch_forecasts_start_at_the_first_anchored_refit_with_a_full_window(
    garch_close,
):
    forecasts = garch_forecasts(
        garch_close, start=garch_close.index[250].date(), window=300, refit_every=20, anchor=7
    )
    assert forecasts.index[0] == garch_close.index[307]  # 307 = 7 + 15 x 20, the first >= 300
