"""Every source is judged stale against the day asked for: a file or the bundled sample that ends
long ago is stale in a live run, and a replay is judged against its own as-of date."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from db.engine import get_engine, unit_of_work
from db.models import Alert
from flows.daily import daily_forecast
from forecasting.prices.sources import load_prices

pytestmark = pytest.mark.slow

LAST_BAR = dt.date(2005, 1, 14)


def stale_alerts(url: str) -> list[Alert]:
    with unit_of_work(get_engine(url)) as session:
        statement = select(Alert).where(Alert.metric == "stale_sessions")
        alerts = list(session.scalars(statement))
        session.expunge_all()
        return alerts


def test_a_file_that_ended_long_ago_is_stale_in_a_live_run(
    flow_settings, tmp_path, write_yahoo_export
):
    source = write_yahoo_export(load_prices("sample", "NVDA", as_of=LAST_BAR), tmp_path / "n.csv")

    replay = daily_forecast(ticker="NVDA", source=source, as_of=LAST_BAR)
    assert not [line for line in replay.alerts if "stale" in line.message]
    assert stale_alerts(flow_settings) == []

    daily_forecast(ticker="NVDA", source=source)
    (alert,) = stale_alerts(flow_settings)
    assert alert.severity == "critical" and alert.value > 1000  # sessions since 2005
    assert "(2005-01-14)" in alert.message and "refresh the source" in alert.message
