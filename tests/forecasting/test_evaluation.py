import dataclasses
import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest

from forecasting.baselines import naive_volatility_forecasts
from forecasting.config import ServingConfig
from forecasting.errors import InsufficientDataError
from forecasting.features import prepare
from forecasting.forecast import (
    interval_quantiles,
    lstm_forecast,
    naive_forecast,
    same_days,
    score_held_out,
)
from forecasting.model import predict_distribution
from forecasting.scoring import (
    RECORD_COLUMNS,
    directional_accuracy,
    point_metrics,
    record_metrics,
    scores,
    scores_signed,
    skills_on_same_days,
    student_t_loss,
)

LOCATION, SCALE = 0.001, 0.02
# Four realized days forecast from a close of 100, and a fifth still to come.
HAND_RECORD = {
    "as_of_date": pd.bdate_range("2025-03-03", periods=5),
    "target_date": pd.bdate_range("2025-03-04", periods=5),
    "base_close": [100.0, 100.0, 100.0, 100.0, 100.0],
    "actual_close": [110.0, 90.0, 100.0, 105.0, np.nan],
    "predicted_close": [105.0, 95.0, 101.0, 99.0, 500.0],  # errors -5, 5, 1, -6
    "scale": [0.05, 0.05, 0.05, 0.05, 0.05],
    # 80%: above, below, inside (on the lower bound), above: 1 of 4 covered.
    "lower_80": [100.0, 92.0, 100.0, 95.0, 1.0],
    "upper_80": [108.0, 98.0, 103.0, 103.0, 2.0],
    # 95%: widths 20, 14, 6, 14; the last misses by 1 above.
    "lower_95": [95.0, 88.0, 100.0, 90.0, 1.0],
    "upper_95": [115.0, 102.0, 106.0, 104.0, 2.0],
}


def _record(days: pd.DatetimeIndex, score_values, *, scale: float = 0.01) -> pd.DataFrame:
    """A record of forecasts mu = 0 from a close of 100 whose scores are ``score_values``."""
    score_values = np.asarray(score_values, dtype="float64")
    return pd.DataFrame(
        {
            "as_of_date": days - pd.offsets.BDay(1),
            "target_date": days,
            "base_close": 100.0,
            "actual_close": 100.0 * np.exp(score_values * scale),
            "predicted_close": 100.0,
            "scale": scale,
            **dict.fromkeys(["lower_80", "upper_80", "lower_95", "upper_95"], np.nan),
        },
        columns=list(RECORD_COLUMNS),
    )


@pytest.fixture(scope="module")
def constant(prepared, make_constant_model):
    """A model that forecasts mu = LOCATION, sigma = SCALE, and what it really outputs."""
    model = make_constant_model(10, prepared.n_features, LOCATION, SCALE)
    location, scale = predict_distribution(model, prepared.test.x[:1])
    return model, float(location[0]), float(scale[0])


def test_point_metrics_on_a_hand_computed_example():
    base = np.array([100.0, 100.0, 100.0, 100.0])
    actual = np.array([110.0, 90.0, 100.0, 105.0])
    predicted = np.array([105.0, 95.0, 101.0, 99.0])  # errors -5, 5, 1, -6
    metrics = point_metrics(base, actual, predicted)
    assert metrics.rmse == pytest.approx(math.sqrt((25 + 25 + 1 + 36) / 4))
    assert metrics.mae == pytest.approx((5 + 5 + 1 + 6) / 4)
    assert metrics.mape == pytest.approx(100 * (5 / 110 + 5 / 90 + 1 / 100 + 6 / 105) / 4)
    # Day 3 did not move and is left out; days 1 and 2 are hits, day 4 a miss.
    assert metrics.directional_accuracy == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="equal length"):
        point_metrics(base, actual, predicted[:3])


def test_directional_accuracy_rules_for_zero_moves():
    assert directional_accuracy(np.array([0.1, -0.2]), np.array([0.0, 0.0])) == 0.0
    assert directional_accuracy(np.array([0.1, -0.2, 0.3]), np.array([1, -1, -1])) == 2 / 3
    assert math.isnan(directional_accuracy(np.array([0.0, 0.0]), np.array([0.1, -0.1])))


def test_record_metrics_by_hand():
    metrics = record_metrics(pd.DataFrame(HAND_RECORD))
    assert metrics.n == 4  # the unrealized fifth day is left out
    assert metrics.rmse == pytest.approx(math.sqrt(87 / 4), rel=1e-12)
    assert metrics.mae == pytest.approx(17 / 4, rel=1e-12)
    assert metrics.mape == pytest.approx(100 * (5 / 110 + 5 / 90 + 1 / 100 + 6 / 105) / 4)
    # Naive errors 10, -10, 0, 5.
    assert metrics.naive_rmse == pytest.approx(7.5, rel=1e-12)
    assert metrics.naive_mae == pytest.approx(25 / 4, rel=1e-12)
    assert metrics.skill == pytest.approx(math.sqrt(87 / 4) / 7.5, rel=1e-12)
    assert metrics.directional_accuracy == pytest.approx(2 / 3)
    assert metrics.coverage_80 == 0.25
    assert metrics.coverage_95 == 0.75
    # Widths 20 + 14 + 6 + 14, and a miss of 1 costs 2 / 0.05 = 40.
    assert metrics.winkler_95 == pytest.approx((20 + 14 + 6 + 14 + 40) / 4, rel=1e-12)


def test_record_metrics_without_intervals_or_realized_days():
    record = pd.DataFrame(HAND_RECORD)
    record.loc[1, "upper_95"] = np.nan  # a held-out record has no intervals
    metrics = record_metrics(record)
    assert metrics.skill == pytest.approx(math.sqrt(87 / 4) / 7.5, rel=1e-12)
    assert math.isnan(metrics.coverage_80) and math.isnan(metrics.winkler_95)
    assert record_metrics(record.iloc[4:]) is None
    flat = record.assign(actual_close=100.0)  # naive is perfect: no skill ratio
    assert math.isnan(record_metrics(flat).skill)


def test_scores_are_standardised_errors_of_the_log_return():
    record = pd.DataFrame(HAND_RECORD)
    signed = scores_signed(record.iloc[:4])
    expected = (np.log([1.10, 0.90, 1.00, 1.05]) - np.log([1.05, 0.95, 1.01, 0.99])) / 0.05
    np.testing.assert_allclose(signed, expected, rtol=1e-12)
    record.loc[2, "scale"] = np.nan
    np.testing.assert_allclose(scores(record), np.abs(expected[[0, 1, 3]]), rtol=1e-12)


def test_skills_on_same_days_by_hand():
    candidate = pd.DataFrame(HAND_RECORD).iloc[:4].copy()
    candidate.loc[3, "actual_close"] = np.nan  # shared, but not realized
    champion = pd.DataFrame(
        {
            "target_date": pd.bdate_range("2025-03-05", periods=4),  # days 2 .. 5
            "predicted_close": [92.0, 100.0, 104.0, 50.0],
        }
    )
    candidate_skill, champion_skill, shared = skills_on_same_days(candidate, champion)
    # Days 2 and 3: naive errors 10, 0; candidate 5, 1; champion 2, 0.
    assert shared == 2
    assert candidate_skill == pytest.approx(math.sqrt(26 / 2) / math.sqrt(100 / 2), rel=1e-12)
    assert champion_skill == pytest.approx(math.sqrt(4 / 2) / math.sqrt(100 / 2), rel=1e-12)
    elsewhere = champion.assign(target_date=champion["target_date"] + pd.Timedelta(days=30))
    skills = skills_on_same_days(candidate, elsewhere)
    assert math.isnan(skills[0]) and math.isnan(skills[1]) and skills[2] == 0


def test_interval_quantiles_warm_up_only_before_the_walk_forward_record():
    days = pd.bdate_range("2025-01-06", periods=10)
    # Held-out days 0-9; the walk-forward record covers days 5-9 with small scores.
    held_out = _record(days, [1, 2, 3, 4, 5, 10, 20, 30, 40, 50])
    walk_forward = _record(days[5:], [0.1, 0.2, 0.3, 0.4, 0.5])
    quantiles = interval_quantiles(walk_forward, held_out, ServingConfig())
    # Every walk-forward day is covered, so alpha rises by 0.005 * alpha five times:
    # 80%: alpha 0.205, rank ceil(11 * 0.795) = 9 of the ten scores 0.1 .. 0.5, 1 .. 5 -> 4.
    # 95%: alpha 0.05125, rank ceil(11 * 0.94875) = 11 > 10 -> the largest, 5.
    # (Had held-out days 5-9 been used too: 30 and 50.)
    assert quantiles[0.80] == pytest.approx(4.0, rel=1e-9)
    assert quantiles[0.95] == pytest.approx(5.0, rel=1e-9)
    # No walk-forward record yet: all ten held-out scores at the nominal levels,
    # rank ceil(11 * 0.8) = 9 -> 40 and rank 11 > 10 -> 50.
    empty = walk_forward.iloc[:0]
    only_held_out = interval_quantiles(empty, held_out, ServingConfig())
    assert only_held_out[0.80] == pytest.approx(40.0, rel=1e-9)
    assert only_held_out[0.95] == pytest.approx(50.0, rel=1e-9)


def test_lstm_forecast_intervals_come_from_mu_and_sigma(prepared, constant):
    model, location, scale = constant
    assert location == pytest.approx(LOCATION, rel=1e-5)
    assert scale == pytest.approx(SCALE, rel=1e-5)
    forecast = lstm_forecast(model, prepared, {0.80: 1.5, 0.95: 2.5})
    base = prepared.next_base_close
    assert forecast.method == "lstm"
    assert forecast.as_of_date == dt.date(2024, 8, 30)  # a Friday
    assert forecast.target_date == dt.date(2024, 9, 3)  # Monday 2 September is Labor Day
    assert forecast.base_close == base
    assert (forecast.predicted_return, forecast.scale) == (location, scale)
    assert forecast.predicted_close == pytest.approx(base * math.exp(location), rel=1e-12)
    expected = {
        "lower_80": base * math.exp(location - 1.5 * scale),
        "upper_80": base * math.exp(location + 1.5 * scale),
        "lower_95": base * math.exp(location - 2.5 * scale),
        "upper_95": base * math.exp(location + 2.5 * scale),
    }
    for name, value in expected.items():
        assert getattr(forecast, name) == pytest.approx(value, rel=1e-12), name
    assert forecast.upper_95 == pytest.approx(base * math.exp(0.001 + 0.05), rel=1e-6)
    stored = json.loads(json.dumps(forecast.to_dict()))
    assert stored["target_date"] == "2024-09-03" and stored["method"] == "lstm"


def test_constant_model_with_scaling_inverts_the_head(prepared, make_constant_model):
    model = make_constant_model(10, prepared.n_features, -0.002, 0.03, scaling=prepared.scaling)
    location, scale = predict_distribution(model, prepared.test.x)
    np.testing.assert_allclose(location, -0.002, rtol=1e-5)
    np.testing.assert_allclose(scale, 0.03, rtol=1e-5)


def test_naive_forecast_reads_the_last_baseline_row():
    baseline = pd.DataFrame(
        {
            "base_close": [10.0, 20.0],
            "predicted_close": [10.0, 20.0],
            "lower_80": [9.0, 19.0],
            "upper_80": [11.0, 21.0],
            "lower_95": [8.0, 18.0],
            "upper_95": [12.0, 22.0],
            "volatility": [0.01, 0.02],
        },
        index=pd.DatetimeIndex(["2024-08-29", "2024-08-30"], name="as_of"),
    )
    forecast = naive_forecast(baseline)
    assert forecast.method == "naive"
    assert (forecast.as_of_date, forecast.target_date) == (
        dt.date(2024, 8, 30),
        dt.date(2024, 9, 3),
    )
    assert (forecast.base_close, forecast.predicted_close, forecast.predicted_return) == (
        20.0,
        20.0,
        0.0,
    )
    assert (forecast.lower_80, forecast.upper_80, forecast.lower_95, forecast.upper_95) == (
        19.0,
        21.0,
        18.0,
        22.0,
    )
    assert forecast.scale == 0.02


def test_naive_forecast_of_a_real_baseline(prices):
    baseline = naive_volatility_forecasts(prices["close"], calibration_window=20)
    forecast = naive_forecast(baseline)
    assert forecast.as_of_date == prices.index[-1].date()
    assert forecast.base_close == forecast.predicted_close == prices["close"].iloc[-1]
    assert forecast.lower_95 < forecast.lower_80 < forecast.base_close < forecast.upper_80
    assert forecast.upper_80 < forecast.upper_95


def test_a_history_too_short_for_the_baseline_is_a_one_line_error(make_prices):
    prices = make_prices(200)
    assert len(prepare(prices).windows) == 170  # enough for the LSTM
    baseline = naive_volatility_forecasts(
        prices["close"], calibration_window=ServingConfig().calibration_window
    )
    assert baseline.empty
    with pytest.raises(InsufficientDataError) as caught:
        naive_forecast(baseline)
    assert "\n" not in str(caught.value)


def test_same_days_puts_a_baseline_on_the_records_days_and_closes():
    record = pd.DataFrame(HAND_RECORD)
    baseline = pd.DataFrame(
        {
            "base_close": [100.0, 100.0],
            "predicted_close": [100.0, 100.0],
            "lower_80": [97.0, 96.0],
            "upper_80": [103.0, 104.0],
            "lower_95": [95.0, 94.0],
            "upper_95": [105.0, 106.0],
            "volatility": [0.03, 0.04],
        },
        index=pd.DatetimeIndex([HAND_RECORD["as_of_date"][1], HAND_RECORD["as_of_date"][3]]),
    )
    joined = same_days(baseline, record)
    assert list(joined.columns) == list(RECORD_COLUMNS)
    assert list(joined["actual_close"]) == [90.0, 105.0]
    assert list(joined["scale"]) == [0.03, 0.04]
    assert list(joined["target_date"]) == [HAND_RECORD["target_date"][i] for i in (1, 3)]


def test_score_held_out_with_a_known_model(prepared, constant):
    model, location, scale = constant
    held = score_held_out(model, prepared, ServingConfig())
    record, test = held.record, prepared.test
    assert list(record.columns) == list(RECORD_COLUMNS) and len(record) == len(test) == 40
    assert list(record["target_date"]) == list(test.target_dates)
    np.testing.assert_allclose(record["predicted_close"], test.base_close * math.exp(location))
    np.testing.assert_array_equal(record["scale"], scale)
    # The test loss is the Student-t NLL of the test targets, by hand.
    z = (test.y.astype("float64") - location) / scale
    by_hand = np.mean(
        np.log(scale) + 3.0 * np.log1p(z * z / 5) + math.log(3 * math.pi * math.sqrt(5) / 8)
    )
    assert held.test_loss == pytest.approx(by_hand, rel=1e-5)
    assert held.test_loss == pytest.approx(student_t_loss(record), rel=1e-5)
    # The first test day is calibrated on the 40 validation scores alone:
    # 80% -> the ceil(41 * 0.8) = 33rd smallest, 95% -> the ceil(41 * 0.95) = 39th.
    validation = prepared.validation
    realized = np.log(validation.target_close / validation.base_close)
    warmup = np.sort(np.abs(realized - location) / scale)
    base = test.base_close[0]
    for level, rank in ((80, 33), (95, 39)):
        half = warmup[rank - 1] * scale
        assert record[f"lower_{level}"].iloc[0] == pytest.approx(base * math.exp(location - half))
        assert record[f"upper_{level}"].iloc[0] == pytest.approx(base * math.exp(location + half))


def test_a_held_out_days_interval_ignores_that_day_and_later(prepared, constant):
    model, _, _ = constant
    test, day = prepared.test, 20
    # Days 20 onwards closed 30% higher: their own intervals must not know it.
    shocked_close = test.target_close * np.where(np.arange(len(test)) >= day, 1.3, 1.0)
    shocked = dataclasses.replace(
        prepared,
        test=dataclasses.replace(
            test,
            target_close=shocked_close,
            y=np.log(shocked_close / test.base_close).astype("float32"),
        ),
    )
    columns = ["lower_80", "upper_80", "lower_95", "upper_95"]
    before = score_held_out(model, prepared, ServingConfig()).record[columns]
    after = score_held_out(model, shocked, ServingConfig()).record[columns]
    pd.testing.assert_frame_equal(after.iloc[: day + 1], before.iloc[: day + 1])
    # The next day's calibration has seen day 20's miss.
    assert (after.iloc[day + 1, 1] - after.iloc[day + 1, 0]) > (
        before.iloc[day + 1, 1] - before.iloc[day + 1, 0]
    )


def test_score_held_out_with_a_trained_model(trained, prepared):
    held = score_held_out(trained.model, prepared, ServingConfig())
    record, test = held.record, prepared.test
    assert list(record.columns) == list(RECORD_COLUMNS) and len(record) == len(test)
    assert np.isfinite(record.drop(columns=["as_of_date", "target_date"]).to_numpy()).all()
    assert (record["lower_95"] <= record["lower_80"]).all()
    assert (record["lower_80"] < record["predicted_close"]).all()
    assert (record["predicted_close"] < record["upper_80"]).all()
    assert (record["upper_80"] <= record["upper_95"]).all()
    evaluated = trained.model.evaluate(test.x, test.y, verbose=0)
    assert held.test_loss == pytest.approx(evaluated, rel=1e-6)
    assert held.test_loss == pytest.approx(student_t_loss(record), rel=1e-4)
    metrics = record_metrics(record)
    assert metrics.n == 40 and 0.5 <= metrics.coverage_95 <= 1.0
