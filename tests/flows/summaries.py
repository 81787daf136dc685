"""A run summary to test what people read, shared by the summary and artifact tests."""

from __future__ import annotations

import datetime as dt

from flows.summary import RunSummary


def summary(**overrides) -> RunSummary:
    values = dict(
        ticker="NVDA",
        source="sample",
        as_of=dt.date(2025, 2, 7),
        target_date=dt.date(2025, 2, 10),
        base_close=129.84,
        served_by="lstm",
        serving_reason="LSTM skill 0.993 over 60 walk-forward forecasts (naive = 1)",
        predicted_close=130.12,
        lower_80=125.0,
        upper_80=135.5,
        lower_95=121.9,
        upper_95=138.7,
        lstm_close=130.12,
        lstm_lower_95=121.9,
        lstm_upper_95=138.7,
        basis="walk-forward",
        n_realized=60,
        test_loss=-2.123,
        rmse=2.91,
        naive_rmse=2.93,
        skill=0.9932,
        directional_accuracy=0.512,
        coverage_80=0.81,
        coverage_95=0.948,
        winkler_95=17.2,
        naive_winkler_95=17.9,
        train_end=dt.date(2025, 2, 7),
        staleness=0,
        action="finetune",
        reason="champion is 3 trading days from its last full retrain",
        champion_version_id=4,
        candidate_version_id=4,
        promoted=True,
        promotion_reason="skill 0.9932 vs champion 0.9950 (tolerance 0.02)",
        rows_ingested=6,
        restated=False,
        epochs=7,
        train_seconds=3.2,
        database="sqlite:////tmp/x.db",
        flow_run_id="abc",
    )
    values.update(overrides)
    return RunSummary(**values)
