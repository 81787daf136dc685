"""What a person sees of a run in the Prefect UI: the chart artifact."""

from __future__ import annotations

import datetime as dt

import pytest

pytestmark = pytest.mark.slow


def test_the_chart_artifact_shows_the_image_not_its_data_url(flow_settings):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.daily import daily_forecast

    summary = daily_forecast(ticker="NVDA", source="sample", as_of=dt.date(2004, 12, 31))
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["nvda-test-window-chart"]))
        )
    (chart,) = [a for a in artifacts if str(a.flow_run_id) == summary.flow_run_id]
    # An image artifact's page prints its URL as text: ~100 kB of base64 across the page.
    assert chart.type == "markdown"
    assert chart.data.startswith("![NVDA: truth vs prediction, ")
    assert f"and the forecast for {summary.target_date}](data:image/png" in chart.data
    assert chart.data.endswith(")") and chart.data.count("data:") == 1
