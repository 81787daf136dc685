"""The truth-versus-prediction chart of the test window, as a PNG data URI for Prefect artifacts."""

from __future__ import annotations

import base64
import io

import pandas as pd

# The object-oriented Figure needs no pyplot state and no display: safe in worker threads.
from matplotlib.figure import Figure

# A year of sessions keeps the chart readable and the artifact small (~80 kB PNG, ~105 kB base64).
DEFAULT_DAYS = 250


def truth_vs_prediction_png(
    test_predictions: pd.DataFrame, *, ticker: str, days: int = DEFAULT_DAYS
) -> bytes:
    """Plot actual and predicted close with the 95% band for the last ``days`` test days."""
    frame = test_predictions.sort_values("target_date").tail(days)
    dates = pd.to_datetime(frame["target_date"])
    figure = Figure(figsize=(9, 3.6), dpi=90)
    axes = figure.subplots()
    axes.fill_between(
        dates, frame["lower_95"], frame["upper_95"], color="tab:blue", alpha=0.15, label="95%"
    )
    axes.plot(dates, frame["actual_close"], color="black", linewidth=1.1, label="actual")
    axes.plot(dates, frame["predicted_close"], color="tab:blue", linewidth=1.0, label="forecast")
    axes.set_title(f"{ticker}: next-day close, test window (last {len(frame)} days)")
    axes.set_ylabel("close ($)")
    axes.grid(alpha=0.3)
    # Wherever the lines leave room: a fixed corner hid the start of the series.
    axes.legend(loc="best", frameon=False)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def png_data_uri(png: bytes) -> str:
    """Embed PNG bytes as a ``data:`` URI, which the Prefect UI renders without a file server."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def chart_markdown(data_uri: str, *, ticker: str) -> str:
    """The chart as a markdown image, which the Prefect UI shows without printing the URI."""
    return f"![{ticker}: truth vs prediction over the test window]({data_uri})"
