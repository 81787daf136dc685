"""No look-ahead: what a run as of day D forecasts, serves and stores depends on bars up to D only.

Every bar after D is poisoned (prices x 7: a jump no split ratio explains, under the 30x that
validation refuses) and, worse, already stored by a later run: the run as of D must still
forecast, calibrate and score exactly what a run on clean data forecasts.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest
from sqlalchemy import select

from db.engine import dispose_engines, get_engine, unit_of_work
from db.models import DriftReport, Evaluation, ModelVersion, Prediction
from flows.daily import daily_forecast
from forecasting.prices.sources import load_prices

# SQLite only: what is under test is what the pipeline reads, which the repository functions
# (tested on both databases in tests/db) bound by the as-of date.
pytestmark = pytest.mark.slow

AS_OF = dt.date(2005, 1, 7)
LATER = dt.date(2005, 2, 28)
PRICES = ["open", "high", "low", "close", "adj_close"]


def stored_as_of(url: str, day: dt.date) -> dict:
    """Everything a run stored about ``day``: predictions, the forecaster's metrics, drift."""
    with unit_of_work(get_engine(url)) as session:
        predictions = {
            (row.kind, row.method): (
                row.target_date,
                row.base_close,
                row.predicted_close,
                row.lower_80,
                row.upper_80,
                row.lower_95,
                row.upper_95,
                row.scale,
            )
            for row in session.scalars(
                select(Prediction).where(Prediction.as_of_date == day, Prediction.kind != "test")
            )
        }
        lstm_version = session.get(ModelVersion, _lstm_version(session, day))
        evaluation = session.scalars(
            select(Evaluation).where(
                Evaluation.as_of_date == day, Evaluation.model_version_id == lstm_version.id
            )
        ).one()
        metrics = {
            name: getattr(evaluation, name)
            for name in ("test_loss", "rmse", "skill", "coverage_95", "winkler_95", "n_realized")
        }
        drift = {
            row.metric: row.value
            for row in session.scalars(select(DriftReport).where(DriftReport.as_of_date == day))
            # Pipeline findings describe the run (a replay, a promotion), not the data.
            if row.kind != "pipeline"
        }
    return {"predictions": predictions, "metrics": metrics, "drift": drift}


def _lstm_version(session, day: dt.date) -> int:
    return session.scalars(
        select(Prediction.model_version_id).where(
            Prediction.as_of_date == day,
            Prediction.kind == "contender",
            Prediction.method == "lstm",
        )
    ).one()


def same(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for key in left:
        a, b = left[key], right[key]
        if isinstance(a, tuple):
            same(dict(enumerate(a)), dict(enumerate(b)))
        elif isinstance(a, dict):
            same(a, b)
        elif isinstance(a, float) and math.isnan(a):
            assert b is None or math.isnan(b), key
        elif not isinstance(a, float):
            assert a == b, key
        else:
            assert a == pytest.approx(b, rel=1e-9, nan_ok=True), key


def test_poisoned_future_bars_change_nothing_as_of_the_day(
    flow_settings, monkeypatch, tmp_path, write_yahoo_export
):
    from flows.settings import get_settings

    history = load_prices("sample", "NVDA", as_of=LATER)
    poisoned = history.copy()
    poisoned.loc[poisoned.index > str(AS_OF), PRICES] *= 7.0
    poisoned_source = write_yahoo_export(poisoned, tmp_path / "poisoned.csv")
    clean_source = write_yahoo_export(history, tmp_path / "clean.csv")

    # The database first learns the poisoned future (a later run), then replays the day.
    daily_forecast(ticker="NVDA", source=poisoned_source, as_of=LATER)
    replay = daily_forecast(ticker="NVDA", source=poisoned_source, as_of=AS_OF)
    assert replay.action == "retrain"
    poisoned_rows = stored_as_of(flow_settings, AS_OF)
    with unit_of_work(get_engine(flow_settings)) as session:
        champion = session.scalars(select(ModelVersion).where(ModelVersion.status == "champion"))
        # The replay forecast its own day and left the newer champion in place.
        assert champion.one().as_of_date == LATER

    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    monkeypatch.setenv("DATABASE_URL", clean_url)
    monkeypatch.setenv("NVDA_FORECAST_ARTIFACT_ROOT", str(tmp_path / "clean-artifacts"))
    get_settings.cache_clear()
    clean = daily_forecast(ticker="NVDA", source=clean_source, as_of=AS_OF)
    clean_rows = stored_as_of(clean_url, AS_OF)
    dispose_engines()

    assert replay.predicted_close == pytest.approx(clean.predicted_close, rel=1e-9)
    assert (replay.lower_95, replay.upper_95) == pytest.approx(
        (clean.lower_95, clean.upper_95), rel=1e-9
    )
    # Every contender's forecast, the GARCH family's included, is the clean store's.
    assert set(poisoned_rows["predictions"]) == {
        ("forecast", clean.served_by),
        *(("contender", m) for m in ("lstm", "naive", "garch", "gjr", "garch_avg")),
    }
    same(poisoned_rows, clean_rows)
