"""The ready-made automation in deployments/ reacts to exactly the events the flow emits."""

from __future__ import annotations

import datetime as dt
import importlib.util
import uuid
from pathlib import Path

import pytest
import yaml
from prefect.events.schemas.automations import AutomationCore
from prefect.server.events.schemas.automations import EventTrigger as ServerTrigger
from prefect.server.events.schemas.events import ReceivedEvent

from flows.watch import StoredAlert, alert_event

PATH = Path(__file__).resolve().parents[2] / "deployments" / "automations.py"
BLOCK = uuid.UUID("00000000-0000-4000-8000-000000000001")


@pytest.fixture(scope="module")
def automations():
    spec = importlib.util.spec_from_file_location("automations", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def emitted(severity: str, kind: str = "data_drift") -> ReceivedEvent:
    """The event flows.watch emits for an alert, as the server receives it."""
    alert = StoredAlert(
        1, "NVDA", kind, severity, "returns_psi", 0.6, 0.4, "m", dt.date(2024, 1, 2), "r", True
    )
    return ReceivedEvent(occurred=dt.datetime.now(dt.UTC), id=uuid.uuid4(), **alert_event(alert))


def server_trigger(automation: AutomationCore) -> ServerTrigger:
    return ServerTrigger.model_validate(automation.trigger.model_dump())


def test_trigger_covers_alert_events_at_or_above_the_minimum_severity(automations):
    trigger = server_trigger(automations.alert_automation(BLOCK, min_severity="warning"))
    assert trigger.covers(emitted("warning"))
    assert trigger.covers(emitted("critical", kind="pipeline"))
    assert not trigger.covers(emitted("info"))
    other = emitted("critical").model_copy(update={"event": "prefect.flow-run.Failed"})
    assert not trigger.covers(other)
    assert trigger.immediate  # one notification per event, no batching window


def test_the_action_notifies_through_the_block_and_the_yaml_round_trips(automations):
    automation = automations.alert_automation(BLOCK)
    (action,) = automation.actions
    assert action.type == "send-notification" and action.block_document_id == BLOCK
    assert "event.payload.message" in action.body
    printed = yaml.safe_load(yaml.safe_dump(automation.model_dump(mode="json")))
    assert AutomationCore.model_validate(printed) == automation
    with pytest.raises(ValueError, match="min_severity"):
        automations.alert_automation(BLOCK, min_severity="loud")
