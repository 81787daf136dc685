"""benchmarks/forecast_quality.py's scoring: stored rows as distributions, the per-day scores,
the tables of old and new results and the target checks (no backfill, no training)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from benchmarks import forecast_quality as fq
from forecasting.scoring import crps_student_t, winkler_score


def _rows(method: str, base: float, center: float, half: dict[float, float], scale: float):
    row = {"method": method, "base_close": base, "predicted_close": base * math.exp(center)}
    for level, width in half.items():
        row[f"lower_{round(100 * level)}"] = base * math.exp(center - width)
        row[f"upper_{round(100 * level)}"] = base * math.exp(center + width)
    return {**row, "scale": scale}


def test_an_lstm_row_is_its_t5_and_a_naive_row_has_no_distribution():
    missing = dict.fromkeys(["method", "base_close", "predicted_close", "scale"], np.nan)
    rows = pd.DataFrame(
        [
            _rows("lstm", 100.0, 0.001, {0.80: 0.02, 0.95: 0.04}, 0.015),
            _rows("naive", 100.0, 0.0, {0.80: 0.02, 0.95: 0.04}, 0.02),
            missing,
        ]
    )
    for column in ("lower_80", "upper_80", "lower_95", "upper_95"):
        rows.loc[2, column] = np.nan
    out = fq.stored_distribution(rows, lstm_df=5.0)
    assert out.loc[0, "variance"] == pytest.approx(0.015**2 * 5 / 3)
    assert (out.loc[0, "t_scale"], out.loc[0, "df"]) == (0.015, 5.0)
    assert out.loc[0, "center"] == pytest.approx(0.001)
    assert out.loc[1, "variance"] == pytest.approx(0.02**2)
    assert np.isnan(out.loc[1, "df"]) and out.loc[2].isna().all()


@pytest.mark.slow
def test_the_product_garch_rows_give_back_their_fitted_t():
    """Rows as the pipeline stores them (forecasting.forecast.garch_contenders): the recovered
    ``nu`` is the fitted one and the variance the model's."""
    from forecasting.config import ServingConfig
    from forecasting.forecast import garch_contenders

    rng = np.random.default_rng(3)
    returns = 0.015 * rng.standard_t(5, 1100) * np.sqrt(3 / 5)
    days = pd.bdate_range("2015-01-02", periods=1101)
    close = pd.Series(50 * np.exp(np.r_[0.0, np.cumsum(returns)]), index=days)
    frames = garch_contenders(close, start=days[-30].date(), config=ServingConfig())
    for method, frame in frames.items():
        stored = frame.assign(method=method, scale=frame["volatility"])
        out = fq.stored_distribution(stored, lstm_df=5.0)
        np.testing.assert_allclose(out["df"], frame["df"], rtol=1e-5)
        np.testing.assert_allclose(out["variance"], frame["variance"], rtol=1e-12)
        np.testing.assert_allclose(out["center"], 0.0, atol=1e-12)


def test_method_days_scores_each_day_and_leaves_missing_rows_out():
    rows = pd.DataFrame(
        [
            _rows("lstm", 100.0, 0.0, {0.80: 0.01, 0.95: 0.02}, 0.01),
            _rows("lstm", 100.0, 0.0, {0.80: 0.01, 0.95: 0.02}, 0.01),
        ]
    )
    rows.loc[1, ["lower_80", "upper_80", "lower_95", "upper_95"]] = np.nan
    distribution = fq.stored_distribution(rows, lstm_df=5.0)
    actual = np.array([101.5, 99.0])  # day 0: outside the 80%, inside the 95% interval
    scored = fq.method_days(rows, distribution, actual, np.array([1e-4, 2e-4]))
    assert scored["inside_80"][0] == 0.0 and scored["inside_95"][0] == 1.0
    assert np.isnan(scored["inside_80"][1]) and np.isnan(scored["winkler_95"][1])
    lower, upper = rows.loc[0, "lower_80"], rows.loc[0, "upper_80"]
    expected = winkler_score(np.array([101.5]), np.array([lower]), np.array([upper]), 0.80)
    assert scored["winkler_80"][0] == pytest.approx(expected[0])  # base 100: percent = dollars
    crps = crps_student_t(math.log(1.015), 0.0, 0.01, 5.0)
    assert scored["crps"][0] == pytest.approx(100 * float(crps))
    assert scored["qlike"][0] == pytest.approx(
        1e-4 / (0.01**2 * 5 / 3) - math.log(1e-4 / (0.01**2 * 5 / 3)) - 1
    )


def test_identical_losses_share_their_confidence_set_p_value():
    rng = np.random.default_rng(0)
    good, bad = rng.gamma(4, 1, 80), rng.gamma(4, 1, 80) + 2.0
    losses = pd.DataFrame({"served": good, "garch_avg": good, "naive": bad, "gjr": np.nan})
    p_values = fq.confidence_set(losses)
    assert p_values["served"] == p_values["garch_avg"] == 1.0
    assert p_values["naive"] < 0.10 and math.isnan(p_values["gjr"])
    assert fq.confidence_set(losses[["served", "garch_avg"]]) == {"served": 1.0, "garch_avg": 1.0}


def _result(ticker: str, days: int, seed: int, served_factor: float) -> dict:
    """A saved series of the current format, random but plausible; the served Winkler95 is
    ``served_factor`` times the bar's."""
    rng = np.random.default_rng(seed)
    base = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, days)))
    columns = {
        "base_close": base,
        "actual_close": base * np.exp(rng.normal(0, 0.01, days)),
        "naive_served": np.zeros(days),
        "lstm_served": np.zeros(days),
        "staleness": np.zeros(days),
        "proxy": rng.gamma(2, 5e-5, days),
    }
    columns["served_close"], columns["lstm_close"] = base, base * 1.001
    bar_winkler = rng.gamma(4, 1, days)
    for method in fq.METHODS:
        factor = served_factor if method in ("served", "garch_avg") else 1.0 + 0.01 * seed
        columns |= {
            f"{method}_inside_80": (rng.random(days) < 0.8).astype(float),
            f"{method}_inside_95": (rng.random(days) < 0.95).astype(float),
            f"{method}_width_95": rng.gamma(4, 1, days),
            f"{method}_winkler_80": rng.gamma(3, 1, days),
            f"{method}_winkler_95": bar_winkler * factor + rng.normal(0, 0.01, days),
            f"{method}_variance": rng.gamma(2, 5e-5, days),
            f"{method}_qlike": rng.gamma(2, 0.2, days) * factor,
            f"{method}_crps": np.full(days, np.nan if method == "naive" else 0.9),
        }
    columns["served_winkler_95"] = columns["garch_avg_winkler_95"]  # garch_avg served every day
    as_of = [(dt.date(2025, 1, 1) + dt.timedelta(days=k)).isoformat() for k in range(days)]
    values = {name: fq._json_list(pd.Series(v)) for name, v in columns.items()}
    return {
        "format": fq.FORMAT,
        "ticker": ticker,
        "days": {"as_of": as_of, **values},
        "naive_width_mismatch": 0.0,
        "seconds": 1.0,
    }


def test_the_tables_and_target_checks_of_new_results():
    results = {t: _result(t, 60, seed, 0.9) for seed, t in enumerate(("NVDA", "ABNB", "AVGO"))}
    rows = fq.table(results)
    assert list(rows)[3:] == ["pooled watchlist (2)", "pooled all (3)"]
    pooled = rows["pooled all (3)"]["methods"]
    served = pooled["served"]
    assert served["winkler_95_ratio"] == pytest.approx(0.9, abs=0.01)
    assert served["better_than_bar"] == 3 and served["mcs_p"] == pooled["garch_avg"]["mcs_p"]
    assert served["crps"] == pytest.approx(0.9) and math.isnan(pooled["naive"]["crps"])
    checks = fq.target_checks(rows, 3)
    assert len(checks) == 11 and None not in {met for _, _, met in checks}
    assert checks[0][0].startswith("served Winkler95 <= 0.95x") and checks[0][2] is True
    assert checks[-2][0] == "pooled served skill <= 1.000" and checks[-2][2] is True
    text = "\n".join(
        [fq.served_markdown(rows), fq.methods_markdown(rows, 3), fq.checks_text(checks)]
    )
    assert "| pooled all (3) | served |" in text and "| NVDA | bar |" in text
    assert "- PASS served Winkler95 <= 0.95x" in text


def test_results_saved_before_issue_24_still_print():
    old = _result("ABNB", 30, 1, 1.0)
    days = old.pop("days")
    old.pop("format")
    kept = ("base_close", "actual_close", "served_close", "lstm_close", "naive_served")
    old["days"] = {"as_of": days["as_of"], "staleness": days["staleness"]}
    old["days"] |= {name: days[name] for name in kept}
    for method, saved_as in (("lstm", "lstm"), ("naive", "naive"), ("bar", "garch")):
        for score in fq.SCORES:
            old["days"][f"{saved_as}_{score}"] = days[f"{method}_{score}"]
    frame = fq._days(old)
    assert frame["bar_winkler_95"].tolist() == days["bar_winkler_95"]
    assert frame["garch_winkler_95"].isna().all() and frame["lstm_served"].isna().all()
    rows = fq.table({"NVDA": _result("NVDA", 30, 0, 1.0), "ABNB": old})
    text = fq.served_markdown(rows) + fq.methods_markdown(rows, 2)
    assert "| ABNB | gjr | - | - | - / - / - |" in text
    checks = fq.target_checks(rows, 2)
    assert {met for _, _, met in checks[:9]} == {None}  # no served intervals in the old file
