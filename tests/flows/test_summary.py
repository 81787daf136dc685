import base64

import numpy as np
import pandas as pd
from summaries import summary

from flows.report.charts import png_data_uri, truth_vs_prediction_png
from flows.report.text import to_markdown, to_text
from flows.summary import AlertLine


def test_text_summary_names_the_forecast_interval_quality_and_decision():
    text = to_text(summary())
    assert "NVDA close on 2025-02-10 (next trading day after 2025-02-07): $130.12" in text
    assert "80% interval $125.00 - $135.50" in text
    assert "95% interval $121.90 - $138.70" in text
    assert "test loss -2.123 (Student-t NLL of log returns, lower is better)" in text
    # Two decimals decide: 0.9932 rounds to 0.99, a (small) win over naive.
    assert "walk-forward record, 60 days: skill 0.993 (beats naive)" in text
    assert "Winkler score $17.20 vs naive+vol $17.90 (lower is better)" in text
    assert "served by the LSTM: its skill 0.993 over 60 walk-forward forecasts" in text
    assert "fitted through 2025-02-07 (0 sessions before the as-of date)" in text
    assert "finetune -> model #4 (7 epochs, 3.2 s) promoted to champion" in text
    assert "alerts open: none" in text
    assert "stored in sqlite:////tmp/x.db" in text


def test_reuse_and_rejection_read_differently():
    reused = summary(promoted=None, candidate_version_id=None, action="reuse", epochs=None)
    assert reused.outcome == "reused"
    assert "reuse model #4" in to_text(reused)
    rejected = summary(promoted=False, candidate_version_id=5, promotion_reason="worse")
    assert rejected.outcome == "rejected"
    assert "-> model #5 (7 epochs, 3.2 s) rejected" in to_text(rejected)


def test_skill_words_do_not_call_a_tie_a_win():
    assert "(level with naive)" in to_text(summary(skill=0.9991))
    assert "(worse than naive)" in to_text(summary(skill=1.031))
    assert "(no record yet)" in to_text(summary(skill=None, n_realized=0))
    assert "(level with naive)" in to_markdown(summary(skill=1.004))


def test_a_naive_forecast_says_so_and_shows_what_the_lstm_said():
    naive = summary(
        served_by="naive",
        serving_reason="LSTM skill 1.080 over 60 walk-forward forecasts: worse than naive",
        predicted_close=129.84,
        lstm_close=131.5,
    )
    text = to_text(naive)
    assert "served by NAIVE (last close); the LSTM said $131.50" in text
    markdown = to_markdown(naive)
    assert "| Served by | **naive** (the LSTM is not served: see below) |" in markdown
    assert "**Why naive serves:** its skill 1.080 over 60 walk-forward forecasts" in markdown


def test_the_store_url_is_code_not_an_email_link():
    markdown = to_markdown(summary(database="postgresql+psycopg://postgres@127.0.0.1:5432/x"))
    assert "store `postgresql+psycopg://postgres@127.0.0.1:5432/x`" in markdown


def test_alerts_are_listed_with_severity_and_new_ones_marked():
    alerts = (
        AlertLine("data_drift", "warning", "returns 2.1x as volatile", is_new=True),
        AlertLine("data_quality", "info", "stale", is_new=False),
    )
    with_alerts = summary(alerts=alerts)
    assert "[warning] NEW data_drift: returns 2.1x as volatile" in to_text(with_alerts)
    assert "[info] data_quality: stale" in to_text(with_alerts)
    markdown = to_markdown(with_alerts)
    assert "**warning** `data_drift` (new): returns 2.1x as volatile" in markdown


def test_markdown_embeds_the_chart_and_json_dict_is_serialisable():
    markdown = to_markdown(summary(), "data:image/png;base64,AAAA")
    assert markdown.startswith("# NVDA forecast for 2025-02-10")
    assert "- **Finetune** -> model #4 (7 epochs, 3.2 s), promoted to champion." in markdown
    assert "- Promotion: skill 0.9932 vs champion 0.9950 (tolerance 0.02)." in markdown
    rejected = to_markdown(summary(promoted=False, candidate_version_id=5))
    assert "-> model #5 (7 epochs, 3.2 s), **rejected**; the champion forecasts." in rejected
    assert "![truth vs prediction](data:image/png;base64,AAAA)" in markdown
    as_dict = summary().to_dict()
    assert as_dict["as_of"] == "2025-02-07"
    assert as_dict["outcome"] == "promoted"


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


def test_no_label_is_said_twice():
    # Issue 26: "served by the LSTM: LSTM skill ..." and "| Served by | LSTM: LSTM skill ...".
    text, markdown = to_text(summary()), to_markdown(summary())
    assert "LSTM: LSTM" not in markdown and "the LSTM: LSTM" not in text
    assert "| Served by | LSTM |" in markdown
    assert "**Why the LSTM serves:** its skill 0.993 over 60 walk-forward forecasts" in markdown
    # The Prefect UI does not wrap a table's cells: a sentence in one is cut at the edge.
    cells = [line.split(" | ")[-1] for line in markdown.splitlines() if line.startswith("| ")]
    assert max(len(cell) for cell in cells) < 60, cells
    other = summary(serving_reason="only 3 realized LSTM forecasts (held-out); naive serves")
    assert "served by the LSTM: only 3 realized LSTM forecasts" in to_text(other)


def test_winkler_is_in_dollars_and_test_loss_is_named():
    # winkler_95 is the mean of forecasting.scoring.winkler_score, in the units of the closes.
    markdown = to_markdown(summary())
    assert (
        "| Winkler95 score ($, lower is better), LSTM vs naive + volatility | $17.20 vs $17.90 |"
        in markdown
    )
    assert "| Test loss (Student-t NLL of log returns, lower is better) | -2.123 |" in markdown


def test_a_twenty_cent_stock_keeps_its_digits():
    # Issue 26: a $0.20 stock of 2004 read "$0.00 vs $0.00".
    cheap = summary(
        base_close=0.2012,
        predicted_close=0.20187,
        lower_80=0.19501,
        upper_80=0.20873,
        lower_95=0.19012,
        upper_95=0.21399,
        lstm_close=0.20187,
        lstm_lower_95=0.19012,
        lstm_upper_95=0.21399,
        rmse=0.00412,
        naive_rmse=0.00398,
        winkler_95=0.0231,
        naive_winkler_95=0.0244,
    )
    text, markdown = to_text(cheap), to_markdown(cheap)
    assert "$0.00 " not in text and "$0.00 " not in markdown and "$0.20 " not in text
    assert "$0.2019  [last close $0.2012]" in text
    assert "80% interval $0.1950 - $0.2087" in text
    # One precision for the whole summary, set by the last close.
    assert "RMSE $0.0041 vs naive $0.0040" in text
    assert "Winkler score $0.0231 vs naive+vol $0.0244" in text
    assert "| 95% interval | $0.1901 - $0.2140 |" in markdown
