"""The truth-versus-prediction chart, as a PNG data URI for Prefect artifacts.

It draws the realized record the run's summary scores (the same days as its table) and, when
given, the forecast the run served for the next session: a point with its 80% and 95% ranges.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from dataclasses import dataclass

import pandas as pd

# The object-oriented Figure needs no pyplot state and no display: safe in worker threads.
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from flows.report.money import money

# A year of sessions keeps the chart readable and the artifact small (~80 kB PNG, ~105 kB base64).
DEFAULT_DAYS = 250


@dataclass(frozen=True)
class NextForecast:
    """The served forecast for the session after the record: drawn past its last day."""

    target_date: dt.date
    predicted_close: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float


def _realized(frame: pd.DataFrame, days: int) -> pd.DataFrame:
    """The ``days`` newest forecasts whose close has arrived, oldest first."""
    frame = frame.sort_values("target_date")
    if "actual_close" in frame:
        frame = frame[frame["actual_close"].notna()]
    return frame.tail(max(int(days), 0))


def truth_vs_prediction_figure(
    test_predictions: pd.DataFrame,
    *,
    ticker: str,
    days: int = DEFAULT_DAYS,
    forecast: NextForecast | None = None,
    title: str | None = None,
) -> Figure:
    """Actual and predicted close with the 95% band over the ``days`` newest realized days,
    and ``forecast`` (the next session's) as a point with its intervals."""
    frame = _realized(test_predictions, days)
    dates = pd.to_datetime(frame["target_date"])
    figure = Figure(figsize=(9, 3.6), dpi=90)
    axes = figure.subplots()
    if {"lower_95", "upper_95"} <= set(frame) and frame[["lower_95", "upper_95"]].notna().any(
        axis=None
    ):
        _band(axes, dates, frame, 95, alpha=0.15)
    axes.plot(dates, frame["actual_close"], color="black", linewidth=1.1, label="actual")
    axes.plot(dates, frame["predicted_close"], color="tab:blue", linewidth=1.0, label="forecast")
    if forecast is not None:
        _draw_next(axes, forecast)
    span = f"{dates.iloc[0].date()} .. {dates.iloc[-1].date()}" if len(frame) else "no days"
    title = title or f"{ticker}: next-day close, last {len(frame)} realized days ({span})"
    _finish(figure, axes, title, float(frame["actual_close"].median()) if len(frame) else None)
    return figure


def _band(axes, dates, frame: pd.DataFrame, level: int, alpha: float) -> None:
    """The ``level``% interval of each day, shaded."""
    lower, upper = frame[f"lower_{level}"].astype(float), frame[f"upper_{level}"].astype(float)
    label = f"{level}% interval"
    axes.fill_between(dates, lower, upper, color="tab:blue", alpha=alpha, label=label)


def _finish(figure, axes, title: str, reference: float | None) -> None:
    """Title, money on the y axis, grid, legend wherever the lines leave room, dates."""
    axes.set_title(title)
    axes.set_ylabel("close")
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: money(value, like=reference)))
    axes.grid(alpha=0.3)
    # Wherever the lines leave room: a fixed corner hid the start of the series.
    axes.legend(loc="best", frameon=False, fontsize="small")
    figure.autofmt_xdate()
    figure.tight_layout()


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _draw_next(axes, forecast: NextForecast) -> None:
    """The next session's forecast: the 95% range thin, the 80% range thick, the point."""
    day = pd.Timestamp(forecast.target_date)
    axes.vlines(day, forecast.lower_95, forecast.upper_95, color="tab:red", linewidth=1.2)
    axes.vlines(day, forecast.lower_80, forecast.upper_80, color="tab:red", linewidth=4, alpha=0.6)
    axes.plot(
        [day],
        [forecast.predicted_close],
        marker="o",
        color="tab:red",
        linestyle="none",
        label=(
            f"forecast for {forecast.target_date}: {money(forecast.predicted_close)} "
            "(80% / 95% ranges)"
        ),
    )


def truth_vs_prediction_png(
    test_predictions: pd.DataFrame,
    *,
    ticker: str,
    days: int = DEFAULT_DAYS,
    forecast: NextForecast | None = None,
    title: str | None = None,
) -> bytes:
    """:func:`truth_vs_prediction_figure` as PNG bytes."""
    return _png(
        truth_vs_prediction_figure(
            test_predictions, ticker=ticker, days=days, forecast=forecast, title=title
        )
    )


def forecast_vs_realized_png(accuracy: pd.DataFrame, *, ticker: str, title: str) -> bytes:
    """A backfill's range: every stored forecast against the close that arrived, with the 80%
    and 95% intervals; forecasts still waiting for their day drawn without an actual."""
    frame = accuracy.sort_values("target_date")
    dates = pd.to_datetime(frame["target_date"])
    figure = Figure(figsize=(9, 3.6), dpi=90)
    axes = figure.subplots()
    _band(axes, dates, frame, 95, alpha=0.12)
    _band(axes, dates, frame, 80, alpha=0.22)
    axes.plot(
        dates,
        frame["predicted_close"].astype(float),
        color="tab:blue",
        marker=".",
        linewidth=1.0,
        label="forecast",
    )
    realized = frame[frame["actual_close"].notna()]
    axes.plot(
        pd.to_datetime(realized["target_date"]),
        realized["actual_close"].astype(float),
        color="black",
        marker=".",
        linewidth=1.1,
        label="actual",
    )
    _finish(figure, axes, title, float(frame["predicted_close"].median()) if len(frame) else None)
    return _png(figure)


def png_data_uri(png: bytes) -> str:
    """Embed PNG bytes as a ``data:`` URI, which the Prefect UI renders without a file server."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def chart_markdown(data_uri: str, *, ticker: str, what: str = "truth vs prediction") -> str:
    """The chart as a markdown image, which the Prefect UI shows without printing the URI."""
    return f"![{ticker}: {what}]({data_uri})"
