"""A ready Prefect Automation: notify people of every new nvda-forecast alert.

Each new alert is a Prefect event `nvda-forecast.alert.<kind>` about the resource
`nvda-forecast.ticker.<TICKER>` (labels: severity, metric; payload: the alert's fields). This
automation reacts to each one and sends it through a notification block (Slack, Teams, e-mail,
PagerDuty, a custom webhook: create the block once in the UI or with `prefect block create`).

    export PREFECT_API_URL=http://prefect:4200/api
    python deployments/automations.py --block slack-webhook/ops --min-severity warning
    python deployments/automations.py --block slack-webhook/ops --print   # the YAML, for review

The printed YAML is what `prefect automation create --from-file` accepts, for GitOps set-ups.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from uuid import UUID

import yaml
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

EVENT_PATTERN = "nvda-forecast.alert.*"
SEVERITIES = ("info", "warning", "critical")
SUBJECT = (
    "nvda-forecast {{ event.resource['nvda-forecast.severity'] }}: "
    "{{ event.resource.name }} {{ event.event.split('.')[-1] }}"
)
BODY = (
    "{{ event.payload.message }}\n"
    "metric {{ event.payload.metric }} = {{ event.payload.value }} "
    "(threshold {{ event.payload.threshold }}), as of {{ event.payload.as_of_date }}, "
    "flow run {{ event.payload.flow_run_id }}"
)


def alert_automation(block_document_id: UUID, *, min_severity: str = "info") -> AutomationCore:
    """The automation: one notification per alert event at or above ``min_severity``."""
    if min_severity not in SEVERITIES:
        raise ValueError(f"min_severity must be one of {SEVERITIES}, not {min_severity!r}")
    severities = list(SEVERITIES[SEVERITIES.index(min_severity) :])
    return AutomationCore(
        name="nvda-forecast alerts",
        description=f"Notify on every new nvda-forecast alert of severity {min_severity} or worse.",
        trigger=EventTrigger(
            expect={EVENT_PATTERN},
            match={
                "prefect.resource.id": "nvda-forecast.ticker.*",
                "nvda-forecast.severity": severities,
            },
            posture=Posture.Reactive,
            threshold=1,
            within=dt.timedelta(0),
        ),
        actions=[SendNotification(block_document_id=block_document_id, subject=SUBJECT, body=BODY)],
    )


def _block_document_id(name: str) -> UUID:
    from prefect.blocks.core import Block

    return Block.load(name)._block_document_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", required=True, help="notification block, 'block-type/name'")
    parser.add_argument("--min-severity", choices=SEVERITIES, default="warning")
    parser.add_argument("--print", action="store_true", help="print the YAML, create nothing")
    args = parser.parse_args()

    automation = alert_automation(_block_document_id(args.block), min_severity=args.min_severity)
    if args.print:
        print(yaml.safe_dump(json.loads(automation.model_dump_json()), sort_keys=False))
        return
    from prefect import get_client

    with get_client(sync_client=True) as client:
        print(f"created automation {client.create_automation(automation)}")


if __name__ == "__main__":
    main()
