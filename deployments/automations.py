"""A ready Prefect Automation: notify people of every new nvda-forecast alert.

Each new alert is a Prefect event `nvda-forecast.alert.<kind>.<severity>` about the resource
`nvda-forecast.ticker.<TICKER>` (labels: severity, metric; payload: the alert's fields). This
automation reacts to each one and sends it through a notification block (Slack, Teams, e-mail,
PagerDuty, a custom webhook: create the block once in the UI or with `prefect block create`).

    export PREFECT_API_URL=http://prefect:4200/api
    python deployments/automations.py --block slack-webhook/ops --min-severity warning
    python deployments/automations.py --print      # the YAML, for review; no server needed

Rerunning it updates the automation of the same name instead of adding a second one (which would
notify twice). The printed YAML is what `prefect automation create --from-file` accepts, for
GitOps set-ups; without --block it carries a placeholder block id to replace.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from uuid import UUID

import yaml
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

from forecasting.errors import one_line

NAME = "nvda-forecast alerts"
# Printed with --print when no --block is given: replace it with your block's id.
PLACEHOLDER_BLOCK = UUID(int=0)
EVENT_PATTERN = "nvda-forecast.alert.*"
SEVERITIES = ("info", "warning", "critical")
SUBJECT = (
    "nvda-forecast {{ event.resource['nvda-forecast.severity'] }}: "
    "{{ event.resource['nvda-forecast.ticker'] }} {{ event.resource['nvda-forecast.kind'] }}"
)
BODY = (
    "{{ event.payload.message }}\n"
    "metric {{ event.payload.metric }} = {{ event.payload.value_text }} "
    "(threshold {{ event.payload.threshold_text }}), as of {{ event.payload.as_of_date }}, "
    "flow run {{ event.payload.flow_run_id }}"
)


def alert_automation(block_document_id: UUID, *, min_severity: str = "info") -> AutomationCore:
    """The automation: one notification per alert event at or above ``min_severity``."""
    if min_severity not in SEVERITIES:
        raise ValueError(f"min_severity must be one of {SEVERITIES}, not {min_severity!r}")
    severities = list(SEVERITIES[SEVERITIES.index(min_severity) :])
    return AutomationCore(
        name=NAME,
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


class SetupError(Exception):
    """Something the user must fix first; printed as one line."""


def _block_document_id(client, name: str) -> UUID:
    from prefect.exceptions import ObjectNotFound

    block_type, _, block_name = name.partition("/")
    if not block_type or not block_name:
        raise SetupError(f"--block {name!r} must be 'block-type/name', e.g. slack-webhook/ops")
    try:
        return client.read_block_document_by_name(block_name, block_type, include_secrets=False).id
    except ObjectNotFound:
        raise SetupError(
            f"notification block {name!r} does not exist on {client.api_url}; create it in the "
            f"UI (Blocks) or with `prefect block create {block_type}`"
        ) from None


def create_or_update(client, automation: AutomationCore) -> str:
    """Create the automation, or update the one of the same name; remove duplicates."""
    existing = client.read_automations_by_name(automation.name)
    if not existing:
        return f"created automation {automation.name!r} ({client.create_automation(automation)})"
    keep, *duplicates = existing
    client.update_automation(keep.id, automation)
    for duplicate in duplicates:
        client.delete_automation(duplicate.id)
    removed = f"; removed {len(duplicates)} duplicate(s)" if duplicates else ""
    return f"updated automation {automation.name!r} ({keep.id}){removed}"


def to_yaml(automation: AutomationCore) -> str:
    """The automation as `prefect automation create --from-file` reads it."""
    text = yaml.safe_dump(json.loads(automation.model_dump_json()), sort_keys=False)
    (action,) = automation.actions
    if action.block_document_id == PLACEHOLDER_BLOCK:
        text = (
            f"# block_document_id {PLACEHOLDER_BLOCK} is a placeholder: replace it with your\n"
            "# notification block's id (`prefect block ls`), or rerun with --block TYPE/NAME.\n"
        ) + text
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", help="notification block, 'block-type/name'")
    parser.add_argument("--min-severity", choices=SEVERITIES, default="warning")
    parser.add_argument("--print", action="store_true", help="print the YAML, create nothing")
    args = parser.parse_args(argv)
    if not args.print and not args.block:
        parser.error("--block is required unless --print is given")
    try:
        if args.print and not args.block:
            print(to_yaml(alert_automation(PLACEHOLDER_BLOCK, min_severity=args.min_severity)))
            return 0
        from prefect import get_client

        with get_client(sync_client=True) as client:
            block_id = _block_document_id(client, args.block)
            automation = alert_automation(block_id, min_severity=args.min_severity)
            print(to_yaml(automation) if args.print else create_or_update(client, automation))
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # the API unreachable, refused, ...: one line, not a traceback
        print(f"error: {one_line(error)}; check PREFECT_API_URL", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
