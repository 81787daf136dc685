"""Step 10: what a person sees of a run in the Prefect UI."""

from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.presentation.charts import chart_markdown, png_data_uri, truth_vs_prediction_png
from flows.presentation.summary import forecast_table, to_markdown
from flows.summary import RunSummary


def _key(summary: RunSummary, what: str) -> str:
    # Artifact keys group a ticker's runs in the UI's artifact history (lower-case, dashes).
    return f"{summary.ticker.lower()}-{what}"


@task(cache_policy=NO_CACHE)
def publish_report(summary: RunSummary, test_predictions: pd.DataFrame) -> None:
    """Publish the run summary, the forecast table and the truth-vs-prediction chart."""
    chart = png_data_uri(truth_vs_prediction_png(test_predictions, ticker=summary.ticker))
    create_markdown_artifact(
        to_markdown(summary, chart),
        key=_key(summary, "forecast-summary"),
        description=f"{summary.ticker} forecast for {summary.target_date}",
    )
    create_table_artifact(
        forecast_table(summary),
        key=_key(summary, "forecast"),
        description=f"{summary.ticker} next-day forecast with 80% and 95% intervals",
    )
    # The chart alone, as a markdown image: an image artifact's page also prints its URL, and
    # this one is a ~100 kB data: URI that ran across the page as text.
    create_markdown_artifact(
        chart_markdown(chart, ticker=summary.ticker),
        key=_key(summary, "test-window-chart"),
        description="Truth vs prediction over the test window",
    )
