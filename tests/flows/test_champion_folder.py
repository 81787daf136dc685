"""A folder at the champion's path is a broken champion: retired and retrained at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

import flows.tasks
from db.engine import get_engine, unit_of_work
from db.models import Alert, ModelVersion
from flows.daily import daily_forecast

pytestmark = pytest.mark.slow

FIRST_AS_OF = dt.date(2004, 12, 31)
LATER_AS_OF = dt.date(2005, 1, 7)


def test_a_folder_at_the_champion_s_path_does_not_block_a_retrain(
    flow_settings, inject_findings, monkeypatch
):
    inject_findings([])
    reads = []
    read = flows.tasks.read_stored_model

    def counted(uri, **kwargs):
        reads.append(uri)
        return read(uri, **kwargs)

    monkeypatch.setattr(flows.tasks, "read_stored_model", counted)
    daily_forecast(ticker="NVDA", source="sample", as_of=FIRST_AS_OF)
    with unit_of_work(get_engine(flow_settings)) as session:
        (champion,) = session.scalars(select(ModelVersion)).all()
        path = Path(champion.artifact_uri)
    path.unlink()
    path.mkdir()

    recovered = daily_forecast(ticker="NVDA", source="sample", as_of=LATER_AS_OF, mode="retrain")

    assert recovered.action == "retrain" and recovered.promoted is True
    assert reads == [str(path)]  # read once: a folder is not worth a retry (flows.retry)
    with unit_of_work(get_engine(flow_settings)) as session:
        statuses = [v.status for v in session.scalars(select(ModelVersion).order_by("id"))]
        assert statuses == ["retired", "champion"]
        alert = session.scalars(
            select(Alert).where(Alert.metric == "champion_unusable", Alert.status == "open")
        ).one()
    assert "is a folder, not a file" in alert.message and "\n" not in alert.message
