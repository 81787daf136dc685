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

from flows.alerts import StoredAlert
from flows.notify import alert_event

PATH = Path(__file__).resolve().parents[2] / "deployments" / "automations.py"
BLOCK = uuid.UUID("00000000-0000-4000-8000-000000000001")


@pytest.fixture(scope="module")
def automations():
    spec = importlib.util.spec_from_file_location("automations", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def emitted(severity: str, kind: str = "data_drift") -> ReceivedEvent:
    """The event flows.notify emits for an alert, as the server receives it."""
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


def test_print_needs_no_block_and_no_server(automations, capsys, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:1/api")  # nothing listens there
    assert automations.main(["--print"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"# block_document_id {automations.PLACEHOLDER_BLOCK} is a place")
    automation = AutomationCore.model_validate(yaml.safe_load(printed))
    assert automation.actions[0].block_document_id == automations.PLACEHOLDER_BLOCK
    # People read formatted numbers (1.807, 449), not 1.8073711174054015 and 449.0.
    assert "value_text" in automation.actions[0].body
    assert "threshold_text" in automation.actions[0].body


def test_rerunning_updates_the_automation_instead_of_adding_another(
    automations, prefect_server, capsys
):
    from prefect import get_client
    from prefect.blocks.notifications import SlackWebhook

    SlackWebhook(url="https://hooks.slack.com/services/T000/B000/XXXX").save("ops", overwrite=True)
    with get_client(sync_client=True) as client:
        for old in client.read_automations_by_name(automations.NAME):
            client.delete_automation(old.id)
        # Two runs of the earlier script, which always created: every alert notified twice.
        for _ in range(2):
            client.create_automation(automations.alert_automation(BLOCK, min_severity="info"))

        assert automations.main(["--block", "slack-webhook/ops"]) == 0
        assert "removed 1 duplicate(s)" in capsys.readouterr().out
        assert automations.main(["--block", "slack-webhook/ops", "--min-severity", "critical"]) == 0
        assert capsys.readouterr().out.startswith(f"updated automation {automations.NAME!r}")
        (automation,) = client.read_automations_by_name(automations.NAME)
    assert automation.trigger.match["nvda-forecast.severity"] == ["critical"]
    assert automation.actions[0].block_document_id != BLOCK


def test_a_missing_block_is_one_line(automations, prefect_server, capsys):
    assert automations.main(["--block", "slack-webhook/nowhere"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: notification block 'slack-webhook/nowhere' does not exist")
    assert err.count("\n") == 1
    assert automations.main(["--block", "ops"]) == 1
    assert "must be 'block-type/name'" in capsys.readouterr().err


def test_the_notification_subject_names_severity_ticker_and_kind(automations):
    import asyncio

    from prefect.server.utilities.user_templates import render_user_template

    event = emitted("critical", kind="performance_drift")
    subject = asyncio.run(render_user_template(automations.SUBJECT, {"event": event}))
    assert subject == "nvda-forecast critical: NVDA performance_drift"
    body = asyncio.run(render_user_template(automations.BODY, {"event": event}))
    assert body.startswith("m\nmetric returns_psi")
