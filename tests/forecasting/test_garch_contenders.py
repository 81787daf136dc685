"""The GARCH-family contenders of step 7 (`forecasting.forecast.garch_contenders`)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecasting.config import ServingConfig
from forecasting.forecast import garch_contenders, naive_forecast
from forecasting.prices.sources import load_prices

CONFIG = ServingConfig(garch_window=500, garch_refit_every=20)


@pytest.fixture(scope="module")
def close() -> pd.Series:
    return load_prices("sample", "NVDA", as_of=pd.Timestamp("2006-06-30").date())["close"]


@pytest.fixture(scope="module")
def frames(close) -> dict[str, pd.DataFrame]:
    return garch_contenders(close, close.index[-60].date(), CONFIG)


def test_every_contender_serves_the_last_close_with_ordered_bounds(frames, close):
    assert sorted(frames) == ["garch", "garch_avg", "gjr"]
    for name, frame in frames.items():
        assert frame.index[0] == close.index[-60] and frame.index[-1] == close.index[-1], name
        assert np.array_equal(frame["predicted_close"], frame["base_close"]), name
        assert np.array_equal(frame["base_close"], close.iloc[-60:].to_numpy()), name
        ordered = frame[["lower_95", "lower_80", "predicted_close", "upper_80", "upper_95"]]
        assert (ordered.diff(axis=1).iloc[:, 1:] > 0).all().all(), name


def test_zero_drift_keeps_each_garch_intervals_width_in_log_terms(close):
    from forecasting.baselines import garch_forecasts

    start = close.index[-20].date()
    raw = garch_forecasts(close, start=start, window=500, refit_every=20, kind="gjr", anchor=0)
    served = garch_contenders(close, start, CONFIG)["gjr"]
    for side in ("lower_95", "upper_80"):
        np.testing.assert_allclose(
            np.log(served[side] / served["base_close"]),
            np.log(raw[side] / raw["predicted_close"]),
            rtol=0, atol=1e-12,
        )  # fmt: skip


def test_the_average_is_a_unit_variance_t_with_the_mean_variance_and_df(frames):
    garch, gjr, average = (
        frames["garch"].iloc[-1],
        frames["gjr"].iloc[-1],
        frames["garch_avg"].iloc[-1],
    )
    variance = (garch["variance"] + gjr["variance"]) / 2
    df = (garch["df"] + gjr["df"]) / 2
    half = math.sqrt(variance) * math.sqrt((df - 2) / df) * stats.t.ppf(0.975, df)
    assert average["variance"] == pytest.approx(variance, rel=1e-12)
    assert average["upper_95"] == pytest.approx(average["base_close"] * math.exp(half), rel=1e-12)
    assert average["lower_95"] == pytest.approx(average["base_close"] * math.exp(-half), rel=1e-12)
    # Its width lies between the two it averages (the variances, not the widths, are averaged).
    widths = [f.iloc[-1]["upper_95"] - f.iloc[-1]["lower_95"] for f in frames.values()]
    assert min(widths[0], widths[1]) <= widths[2] <= max(widths[0], widths[1]) * 1.01


def test_a_days_forecasts_do_not_depend_on_the_first_day_asked_for(frames, close):
    later = garch_contenders(close, close.index[-13].date(), CONFIG)
    for name, frame in later.items():
        pd.testing.assert_frame_equal(frame, frames[name].loc[frame.index])


def test_no_look_ahead_the_bars_after_a_day_change_none_of_its_forecasts(frames, close):
    cut = close.index[-30]
    poisoned = close.copy()
    poisoned[poisoned.index > cut] *= np.linspace(2.0, 0.3, int((poisoned.index > cut).sum()))
    again = garch_contenders(poisoned, close.index[-60].date(), CONFIG)
    for name, frame in again.items():
        pd.testing.assert_frame_equal(frame.loc[:cut], frames[name].loc[:cut])
        assert not frame.loc[cut:].iloc[1:].equals(frames[name].loc[cut:].iloc[1:])


def test_a_history_too_short_for_a_fit_has_no_garch_contenders(close):
    assert garch_contenders(close.iloc[:501], close.index[-1].date(), CONFIG) == {}


def test_todays_contender_forecast_is_the_frames_last_row(frames, close):
    forecast = naive_forecast(frames["garch_avg"], "garch_avg")
    last = frames["garch_avg"].iloc[-1]
    assert (forecast.method, forecast.as_of_date) == ("garch_avg", close.index[-1].date())
    assert (forecast.predicted_close, forecast.predicted_return) == (last["base_close"], 0.0)
    assert (forecast.lower_95, forecast.upper_95, forecast.scale) == (
        last["lower_95"], last["upper_95"], last["volatility"],
    )  # fmt: skip


def test_a_failed_or_unusable_fit_sits_the_day_out_instead_of_failing_it(
    close, monkeypatch, caplog
):
    import forecasting.forecast as forecast

    def broken(*_, **__):
        raise ValueError("injected: the optimizer found no finite likelihood")

    with monkeypatch.context() as patch, caplog.at_level("WARNING", "forecasting.forecast"):
        patch.setattr(forecast, "garch_forecasts", broken)
        assert garch_contenders(close, close.index[-5].date(), CONFIG) == {}
    assert "sit this day out: injected" in caplog.text

    real = forecast._garch_frames

    def not_finite(*args):
        frames = real(*args)
        frames["gjr"].loc[frames["gjr"].index[-1], "variance"] = np.nan
        return frames

    monkeypatch.setattr(forecast, "_garch_frames", not_finite)
    assert garch_contenders(close, close.index[-5].date(), CONFIG) == {}
    monkeypatch.undo()
    assert sorted(garch_contenders(close, close.index[-5].date(), CONFIG)) == [
        "garch", "garch_avg", "gjr",
    ]  # fmt: skip
