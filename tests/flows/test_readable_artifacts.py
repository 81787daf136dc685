"""What the Prefect UI shows of a run, read at a glance (issue 26, section 4): the forecast
table, the many-ticker table, the chart, the run names, the backfill's summary. Fast: no
training, no Prefect server (the artifact functions are replaced by recorders)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from summaries import summary

from flows.report.money import money, money_range, percent
from flows.summary import AlertLine, RunSummary


def penny_stock() -> RunSummary:
    """The sample's 2004 prices, split-adjusted: a $0.20 stock."""
    return summary(
        as_of=dt.date(2004, 12, 31),
        target_date=dt.date(2005, 1, 3),
        base_close=0.2034,
        predicted_close=0.20412,
        lower_80=0.19871,
        upper_80=0.20953,
        lower_95=0.19502,
        upper_95=0.21322,
    )


def record(days: int = 300, *, last: dt.date = dt.date(2025, 2, 7)) -> pd.DataFrame:
    """A realized walk-forward record of ``days`` forecasts ending at ``last``."""
    targets = pd.bdate_range(end=last, periods=days)
    actual = np.linspace(100, 130, days)
    return pd.DataFrame(
        {
            "as_of_date": (targets - pd.offsets.BDay(1)).date,
            "target_date": targets.date,
            "base_close": actual - 0.3,
            "actual_close": actual,
            "predicted_close": actual + 0.5,
            "lower_80": actual - 2,
            "upper_80": actual + 2,
            "lower_95": actual - 3,
            "upper_95": actual + 3,
        }
    )


def width(row: dict[str, str]) -> int:
    """A table's width in characters: each column as wide as its header or its cell."""
    return sum(max(len(header), len(cell)) for header, cell in row.items())


@pytest.fixture
def artifacts(monkeypatch) -> dict[str, list]:
    """Record every artifact the report and fleet modules create, by kind."""
    import flows.fleet
    import flows.report.artifacts as report

    made: dict[str, list] = {"table": [], "markdown": []}

    def table(rows, **options):
        made["table"].append((rows, options))

    def markdown(text, **options):
        made["markdown"].append((text, options))

    for module in (report, flows.fleet):
        monkeypatch.setattr(module, "create_table_artifact", table, raising=False)
        monkeypatch.setattr(module, "create_markdown_artifact", markdown, raising=False)
    return made


def test_money_keeps_the_precision_of_a_price_of_any_size():
    assert money(130.123) == "$130.12"
    assert money(1234.5) == "$1,234.50"
    assert money(0.20341) == "$0.2034"
    assert money(0.0045123) == "$0.004512"
    assert money(-0.00021, like=0.2) == "-$0.0002"  # an error of a $0.20 stock
    assert money(-0.04, like=130.0) == "-$0.04"
    assert money(None) == "-" and money(float("nan")) == "-"
    assert money_range(0.19502, 0.21322) == "$0.1950 - $0.2132"
    assert percent(0.948) == "94.8%"


def test_the_forecast_table_reads_as_money_under_plain_headers(artifacts):
    from flows.report.artifacts import publish_report

    publish_report.fn(summary(), record())
    ((rows, _options),) = artifacts["table"]
    (row,) = rows
    # Headers a person reads; money with its dollar sign; the intervals one column each, and
    # few short columns: the UI cuts a table wider than its page (~780 px at 1400 px).
    assert row["Forecast close"] == "$130.12"
    assert row["80% interval"] == "$125.00 - $135.50"
    assert row["95% interval"] == "$121.90 - $138.70"
    assert row["Target day"] == "2025-02-10" and row["As of"] == "2025-02-07"
    assert row["Ticker"] == "NVDA"
    assert row["Served by"] == "LSTM"
    assert len(row) <= 7 and width(row) <= 90
    assert not any("_" in header for header in row)


def test_a_penny_stock_keeps_its_significant_digits_in_the_table(artifacts):
    from flows.report.artifacts import publish_report

    publish_report.fn(penny_stock(), record(last=dt.date(2004, 12, 31)))
    ((rows, _),) = artifacts["table"]
    (row,) = rows
    assert row["Forecast close"] == "$0.2041"
    assert row["95% interval"] == "$0.1950 - $0.2132"


def test_the_chart_covers_the_summary_record_and_draws_tomorrows_forecast(monkeypatch, artifacts):
    import flows.report.artifacts as report
    from flows.report.charts import truth_vs_prediction_figure

    drawn = []
    real = report.truth_vs_prediction_png

    def spy(frame, **options):
        drawn.append((frame, options))
        return real(frame, **options)

    monkeypatch.setattr(report, "truth_vs_prediction_png", spy)
    ran = summary(n_realized=60)
    report.publish_report.fn(ran, record(300))
    ((frame, options),) = drawn
    figure = truth_vs_prediction_figure(frame, **options)
    (axes,) = figure.axes
    lines = {line.get_label(): line for line in axes.get_lines()}
    # The summary's table scores 60 realized days: the chart draws exactly those.
    actual = pd.to_datetime(pd.Series(lines["actual"].get_xdata()))
    assert len(actual) == 60
    assert actual.iloc[-1].date() == dt.date(2025, 2, 7)
    assert actual.iloc[0].date() == record(300)["target_date"].iloc[-60]
    # Tomorrow's forecast: a point on the target day, with its intervals.
    (point,) = [line for label, line in lines.items() if label.startswith("forecast for")]
    assert pd.Timestamp(point.get_xdata()[0]).date() == ran.target_date
    assert point.get_ydata()[0] == pytest.approx(ran.predicted_close)
    assert "2025-02-10" in axes.get_title() or "2025-02-10" in point.get_label()


class _Outcome:
    def __init__(self, ticker, summary=None, error=None):
        self.ticker, self.summary, self.error = ticker, summary, error

    @property
    def ok(self):
        return self.error is None


def test_the_many_ticker_table_shows_forecast_interval_and_open_alerts(artifacts):
    from flows.fleet import TickerOutcome, _finish

    drift = (
        AlertLine("drift", "warning", "volatility 2.1x its reference", is_new=True),
        AlertLine("drift", "warning", "returns shifted (KS p=0.001)", is_new=True),
    )
    outcomes = [
        TickerOutcome("NVDA", summary=summary()),
        TickerOutcome("QCOM", summary=summary(ticker="QCOM", alerts=drift)),
        TickerOutcome("AVGO", error="no AVGO rows in /data/AVGO.csv"),
    ]
    _finish(outcomes, 0.0, "forecast")
    ((rows, _),) = artifacts["table"]
    by_ticker = {row["Ticker"]: row for row in rows}
    assert by_ticker["NVDA"]["Status"] == "ok"
    # Two new drift alerts are not "ok".
    assert by_ticker["QCOM"]["Status"] != "ok"
    assert by_ticker["QCOM"]["Status"] == "2 alerts (2 new)"
    assert by_ticker["QCOM"]["Open alerts"] == "drift x2"
    assert by_ticker["NVDA"]["Open alerts"] == "none"
    assert by_ticker["AVGO"]["Status"].startswith("failed")
    assert by_ticker["NVDA"]["Forecast close"] == "$130.12"
    assert by_ticker["NVDA"]["95% interval"] == "$121.90 - $138.70"
    assert by_ticker["NVDA"]["Target day"] == "2025-02-10"
    assert len({tuple(row) for row in rows}) == 1  # every row has the same columns
    # Short cells: the UI cuts a table wider than its page.
    assert max(width(row) for row in rows) <= 90


def _resolved_name(flow, parameters: dict, monkeypatch) -> str:
    """The name Prefect gives a run of ``flow`` with ``parameters``."""
    from prefect._internal.engine import resolve_custom_flow_run_name

    import flows.run_names

    monkeypatch.setattr(flows.run_names, "_parameters", lambda: parameters, raising=False)
    return resolve_custom_flow_run_name(flow, parameters)


def test_run_names_tell_runs_apart_by_ticker_and_day_never_by_source(monkeypatch):
    from flows.backfill import backfill
    from flows.daily import daily_forecast
    from flows.fleet import fleet_backfill, fleet_forecast

    csv = "csv:/home/me/prices/nvda.csv"
    assert (
        _resolved_name(
            daily_forecast,
            {"ticker": "nvda", "source": csv, "as_of": dt.date(2025, 2, 11)},
            monkeypatch,
        )
        == "NVDA 2025-02-11"
    )
    assert _resolved_name(daily_forecast, {"ticker": "NVDA", "source": "sample"}, monkeypatch) == (
        "NVDA latest"
    )
    # A deployment's run carries its parameters as JSON strings.
    assert _resolved_name(
        daily_forecast, {"ticker": "NVDA", "as_of": "2025-02-11"}, monkeypatch
    ) == ("NVDA 2025-02-11")
    start, end = dt.date(2025, 1, 2), dt.date(2025, 1, 31)
    parameters = {"ticker": "NVDA", "source": csv, "start": start, "end": end}
    assert (
        _resolved_name(backfill, parameters, monkeypatch) == "NVDA backfill 2025-01-02..2025-01-31"
    )
    many = {"tickers": ["NVDA", "avgo", "QCOM"], "source": "sample", "as_of": None}
    assert _resolved_name(fleet_forecast, many, monkeypatch) == "NVDA, AVGO, QCOM latest"
    six = {"tickers": ["A", "B", "C", "D", "E", "F"], "start": start, "end": end}
    assert _resolved_name(fleet_backfill, six, monkeypatch) == (
        "A, B, C, D +2 backfill 2025-01-02..2025-01-31"
    )


def test_a_many_ticker_runs_tasks_are_named_by_ticker_and_day():
    from prefect._internal.engine import resolve_custom_task_run_name

    from flows.fleet import backfill_one, forecast_ticker
    from flows.job import TickerJob

    job = TickerJob("QCOM", "csv:/data/QCOM.csv", "sqlite://", as_of=dt.date(2025, 2, 11))
    assert resolve_custom_task_run_name(forecast_ticker, {"job": job}) == "QCOM 2025-02-11"
    live = TickerJob("QCOM", "sample", "sqlite://")
    assert resolve_custom_task_run_name(forecast_ticker, {"job": live}) == "QCOM latest"
    ranged = TickerJob(
        "QCOM", "sample", "sqlite://", start=dt.date(2025, 1, 2), end=dt.date(2025, 1, 31)
    )
    assert resolve_custom_task_run_name(backfill_one, {"job": ranged}) == (
        "QCOM backfill 2025-01-02..2025-01-31"
    )
