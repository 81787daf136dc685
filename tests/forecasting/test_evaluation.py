import datetime as dt
import json
import math

import numpy as np
import pytest

from forecasting.evaluation import (
    PREDICTION_COLUMNS,
    Calibration,
    conformal_quantile,
    directional_accuracy,
    evaluate,
    forecast_next,
    point_metrics,
    price_interval,
)

CONSTANT_RETURN = 0.001


@pytest.fixture(scope="module")
def constant_evaluation(prepared, make_constant_model):
    model = make_constant_model(10, prepared.n_features, CONSTANT_RETURN)
    return model, evaluate(model, prepared)


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
    naive = point_metrics(base, actual, base)
    assert naive.rmse == pytest.approx(math.sqrt((100 + 100 + 0 + 25) / 4))
    assert metrics.rmse / naive.rmse == pytest.approx(math.sqrt(87 / 4) / 7.5)


def test_directional_accuracy_rules_for_zero_moves():
    assert directional_accuracy(np.array([0.1, -0.2]), np.array([0.0, 0.0])) == 0.0
    assert math.isnan(directional_accuracy(np.array([0.0, 0.0]), np.array([0.1, -0.1])))


def test_conformal_quantile_is_the_right_order_statistic():
    scores = np.arange(19, 0, -1, dtype="float64")  # 19 scores, 1..19, shuffled order
    assert conformal_quantile(scores, 0.80) == 16.0  # ceil(20 * 0.80) = 16th smallest
    assert conformal_quantile(scores, 0.95) == 19.0  # ceil(20 * 0.95) = 19th smallest
    assert conformal_quantile(np.arange(10.0), 0.95) == math.inf  # ceil(11 * 0.95) = 11 > 10


def test_conformal_coverage_is_close_to_nominal_on_exchangeable_data():
    generator = np.random.default_rng(0)
    volatility = generator.uniform(0.005, 0.05, 22_000)  # regimes from calm to wild
    actual = generator.normal(0.0, volatility)
    predicted = np.zeros_like(actual)
    calibration_part, test_part = slice(0, 2_000), slice(2_000, None)
    scores = np.abs(actual[calibration_part]) / volatility[calibration_part]
    calibration = Calibration(
        quantile_80=conformal_quantile(scores, 0.80),
        quantile_95=conformal_quantile(scores, 0.95),
        n_calibration=2_000,
    )
    base = np.full(20_000, 100.0)
    actual_close = base * np.exp(actual[test_part])
    for level in (0.80, 0.95):
        lower, upper = price_interval(
            base, predicted[test_part], volatility[test_part], calibration, level
        )
        coverage = np.mean((actual_close >= lower) & (actual_close <= upper))
        assert coverage == pytest.approx(level, abs=0.02)


def test_evaluate_with_a_known_model(prepared, constant_evaluation):
    _, evaluation = constant_evaluation
    test = prepared.test
    predicted_close = test.base_close * math.exp(CONSTANT_RETURN)
    expected = point_metrics(test.base_close, test.target_close, predicted_close)
    naive = point_metrics(test.base_close, test.target_close, test.base_close)
    assert evaluation.rmse == pytest.approx(expected.rmse, rel=1e-6)
    assert evaluation.mae == pytest.approx(expected.mae, rel=1e-6)
    assert evaluation.mape == pytest.approx(expected.mape, rel=1e-6)
    assert evaluation.naive_rmse == pytest.approx(naive.rmse)
    assert evaluation.skill == pytest.approx(expected.rmse / naive.rmse, rel=1e-6)
    assert evaluation.directional_accuracy == pytest.approx(np.mean(test.y > 0))
    assert evaluation.test_loss == pytest.approx(np.mean((test.y - CONSTANT_RETURN) ** 2), rel=1e-4)
    assert (evaluation.n_train, evaluation.n_validation, evaluation.n_test) == (
        len(prepared.train),
        len(prepared.validation),
        len(test),
    )
    assert evaluation.test_start == test.target_dates[0].date()


def test_test_predictions_frame_and_coverage(prepared, constant_evaluation):
    _, evaluation = constant_evaluation
    frame = evaluation.test_predictions
    assert list(frame.columns) == list(PREDICTION_COLUMNS) and len(frame) == len(prepared.test)
    assert isinstance(frame["target_date"].iloc[0], dt.date)
    assert (frame["lower_95"] <= frame["lower_80"]).all()
    assert (frame["lower_80"] <= frame["predicted_close"]).all()
    assert (frame["predicted_close"] <= frame["upper_80"]).all()
    assert (frame["upper_80"] <= frame["upper_95"]).all()
    inside = (frame["actual_close"] >= frame["lower_95"]) & (
        frame["actual_close"] <= frame["upper_95"]
    )
    assert evaluation.coverage_95 == pytest.approx(inside.mean())
    assert evaluation.calibration.n_calibration == len(prepared.validation)
    stored = json.loads(json.dumps(evaluation.to_dict()))
    assert stored["skill"] == evaluation.skill
    assert stored["calibration_quantile_95"] == evaluation.calibration.quantile_95


def test_forecast_targets_the_next_session_after_a_holiday_weekend(prepared, constant_evaluation):
    model, evaluation = constant_evaluation
    forecast = forecast_next(model, prepared, evaluation.calibration)
    assert forecast.as_of_date == dt.date(2024, 8, 30)  # a Friday
    assert forecast.target_date == dt.date(2024, 9, 3)  # Monday 2 September is Labor Day
    assert forecast.predicted_return == pytest.approx(CONSTANT_RETURN, rel=1e-6)
    assert forecast.predicted_close == pytest.approx(
        prepared.next_base_close * math.exp(CONSTANT_RETURN), rel=1e-9
    )
    half_width = evaluation.calibration.quantile_95 * prepared.next_volatility
    assert forecast.upper_95 == pytest.approx(
        prepared.next_base_close * math.exp(forecast.predicted_return + half_width)
    )
    assert forecast.lower_95 < forecast.lower_80 < forecast.predicted_close < forecast.upper_80
    assert json.loads(json.dumps(forecast.to_dict()))["target_date"] == "2024-09-03"
