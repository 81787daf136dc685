import base64
import datetime as dt

import numpy as np
import pandas as pd

from flows.charts import png_data_uri, truth_vs_prediction_png
from flows.summary import AlertLine, RunSummary, forecast_table, to_markdown, to_text


def summary(**overrides) -> RunSummary:
    values = dict(
        ticker="NVDA",
        source="sample",
        as_of=dt.date(2025, 2, 7),
        target_date=dt.date(2025, 2, 10),
        base_close=129.84,
        predicted_close=130.12,
        lower_80=125.0,
        upper_80=135.5,
        lower_95=121.9,
        upper_95=138.7,
        test_loss=0.00123,
        rmse=2.91,
        naive_rmse=2.93,
        skill=0.9932,
        directional_accuracy=0.512,
        coverage_80=0.81,
        coverage_95=0.948,
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


def test_text_summary_names_the_forecast_interval_quality_and_decision():
    text = to_text(summary())
    assert "NVDA close on 2025-02-10 (next trading day after 2025-02-07): $130.12" in text
    assert "80% interval $125.00 - $135.50" in text
    assert "95% interval $121.90 - $138.70" in text
    assert "test loss 0.00123" in text
    assert "skill 0.993" in text
    assert "finetune -> v4 (7 epochs, 3.2 s) promoted to champion" in text
    assert "alerts open: none" in text
    assert "stored in sqlite:////tmp/x.db" in text


def test_reuse_and_rejection_read_differently():
    reused = summary(promoted=None, candidate_version_id=None, action="reuse", epochs=None)
    assert reused.outcome == "reused"
    assert "reuse champion v4" in to_text(reused)
    rejected = summary(promoted=False, candidate_version_id=5, promotion_reason="worse")
    assert rejected.outcome == "rejected"
    assert "-> v5 (7 epochs, 3.2 s) rejected" in to_text(rejected)


def test_alerts_are_listed_with_severity():
    alerts = (AlertLine("data_drift", "warning", "returns 2.1x as volatile", is_new=True),)
    with_alerts = summary(alerts=alerts)
    assert "[warning] data_drift: returns 2.1x as volatile" in to_text(with_alerts)
    markdown = to_markdown(with_alerts)
    assert "**warning** `data_drift` (new): returns 2.1x as volatile" in markdown


def test_markdown_embeds_the_chart_and_json_dict_is_serialisable():
    markdown = to_markdown(summary(), "data:image/png;base64,AAAA")
    assert markdown.startswith("# NVDA forecast for 2025-02-10")
    assert "- **Finetune** -> v4 (7 epochs, 3.2 s), promoted to champion." in markdown
    assert "- Promotion: skill 0.9932 vs champion 0.9950 (tolerance 0.02)." in markdown
    rejected = to_markdown(summary(promoted=False, candidate_version_id=5))
    assert "-> v5 (7 epochs, 3.2 s), **rejected**; the champion forecasts." in rejected
    assert "![truth vs prediction](data:image/png;base64,AAAA)" in markdown
    as_dict = summary().to_dict()
    assert as_dict["as_of"] == "2025-02-07"
    assert as_dict["outcome"] == "promoted"
    assert forecast_table(summary())[0]["predicted_close"] == 130.12


def test_chart_is_a_png_data_uri():
    days = pd.bdate_range("2024-01-01", periods=30)
    actual = np.linspace(100, 110, 30)
    frame = pd.DataFrame(
        {
            "target_date": days.date,
            "actual_close": actual,
            "predicted_close": actual + 0.5,
            "lower_95": actual - 3,
            "upper_95": actual + 3,
        }
    )
    png = truth_vs_prediction_png(frame, ticker="NVDA")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    uri = png_data_uri(png)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == png
