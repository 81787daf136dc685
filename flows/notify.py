"""Telling people about new alerts, once the run's transaction has committed.

A Prefect event per new alert (which Automations route anywhere), plus an optional webhook or
notification block. A channel that fails is a warning, never a failed run: the alerts are
stored with the forecast by then. Whatever is logged shows a webhook URL masked
(`flows.webhook_url`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event
from prefect.exceptions import MissingContextError

from flows.alerts import StoredAlert
from flows.webhook_url import mask_url, mask_urls
from forecasting.errors import one_line

EVENT_PREFIX = "nvda-forecast.alert"
WEBHOOK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Delivery:
    """What telling people about a run's alerts came to."""

    new: int
    """Alerts this run opened (each one told through every configured channel)."""
    failures: int
    """Channel deliveries that failed (an event, a webhook POST, a block): logged as warnings."""


@task(cache_policy=NO_CACHE)
def deliver_alerts(
    alerts: list[StoredAlert], *, webhook_url: str, notification_block: str
) -> Delivery:
    """Emit a Prefect event per new alert, and send it to the configured webhook or block.

    Never raises: the alerts are stored with the run's forecast when this runs, and a channel
    that fails (a malformed URL, a refused POST, a broken block) must not fail that run.
    """
    new = [alert for alert in alerts if alert.is_new]
    failures = sum(
        deliver(alert, webhook_url=webhook_url, notification_block=notification_block)
        for alert in new
    )
    if failures:
        _logger().warning(
            "%d new alert%s, %d deliver%s failed (the alerts are stored)",
            len(new),
            "" if len(new) == 1 else "s",
            failures,
            "y" if failures == 1 else "ies",
        )
    return Delivery(len(new), failures)


def deliver(alert: StoredAlert, *, webhook_url: str, notification_block: str) -> int:
    """Tell people about one new alert: the event always, the webhook and block if set.

    Returns how many of those channels failed; each failure is a warning, never an exception.
    """
    failures = 0
    if not _guarded(alert, "emitted as a Prefect event", lambda: emit_event(**alert_event(alert))):
        failures += 1
    if webhook_url and not _guarded(
        alert,
        f"delivered to the webhook {mask_url(webhook_url)}",
        lambda: post_webhook(webhook_url, alert),
    ):
        failures += 1
    if notification_block and not _guarded(
        alert,
        f"sent through block {notification_block}",
        lambda: notify_block(notification_block, alert),
    ):
        failures += 1
    return failures


def _guarded(alert: StoredAlert, what: str, send: Callable[[], bool | None]) -> bool:
    """Run one channel's ``send``; False (after a warning) if it failed in any way."""
    try:
        return send() is not False
    except Exception as error:  # any failure: the alert is stored, the run must not fail
        _logger().warning("alert %d not %s: %s", alert.id, what, mask_urls(one_line(error)))
        return False


RESOURCE_NAME_LIMIT = 200
"""The event's resource name (what the UI's event feed shows) is cut to this many characters."""


def alert_event(alert: StoredAlert) -> dict:
    """`nvda-forecast.alert.<kind>.<severity>` about the ticker, for Prefect Automations to route.

    The Prefect UI's event feed lists an event by its name (as the title: ``Nvda Forecast Alert
    Data Drift Warning``) and its resource's ``prefect.resource.name``; the payload is only in
    the raw JSON. So the name carries the kind and the severity, and the resource's name says
    which ticker and what happened: ``NVDA data drift warning: returns are 2.40x as volatile``.
    """
    title = f"{alert.ticker} {alert.kind.replace('_', ' ')} {alert.severity}: {alert.message}"
    if len(title) > RESOURCE_NAME_LIMIT:
        title = title[: RESOURCE_NAME_LIMIT - 3] + "..."
    event = {
        "event": f"{EVENT_PREFIX}.{alert.kind}.{alert.severity}",
        "resource": {
            "prefect.resource.id": f"nvda-forecast.ticker.{alert.ticker}",
            "prefect.resource.name": title,
            "nvda-forecast.ticker": alert.ticker,
            "nvda-forecast.kind": alert.kind,
            "nvda-forecast.severity": alert.severity,
            "nvda-forecast.metric": alert.metric,
        },
        "payload": alert.payload(),
    }
    if alert.flow_run_id:
        # Inside a run Prefect adds the run's resources itself; the on-failure hook runs
        # outside it, so name the flow run explicitly (the UI links the event to the run).
        event["related"] = [
            {
                "prefect.resource.id": f"prefect.flow-run.{alert.flow_run_id}",
                "prefect.resource.role": "flow-run",
            }
        ]
    return event


def _logger():
    # The on-failure hook delivers too, outside any task: fall back to the module's logger.
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def post_webhook(url: str, alert: StoredAlert) -> bool:
    """POST the alert as JSON; a failure of any kind is logged, not raised: the alert is already
    stored. True if the webhook took it."""
    body = {"text": f"[{alert.severity}] {alert.ticker} {alert.kind}: {alert.message}"}
    body.update(alert.payload())
    try:
        response = httpx.post(url, json=body, timeout=WEBHOOK_TIMEOUT_S)
    except Exception as error:
        # httpx's messages can quote the URL, whose path carries the token: never log them raw.
        if isinstance(error, httpx.HTTPError):
            reason = mask_urls(str(error).replace(url, mask_url(url))) or type(error).__name__
        else:  # InvalidURL, a ValueError from deeper down: say what it was
            reason = mask_urls(one_line(error).replace(url, mask_url(url)))
        _logger().warning(
            "alert %d not delivered to the webhook %s: %s", alert.id, mask_url(url), reason
        )
        return False
    if response.is_error:
        _logger().warning(
            "alert %d not delivered to the webhook %s: HTTP %d %s",
            alert.id,
            mask_url(url),
            response.status_code,
            response.reason_phrase,
        )
        return False
    return True


def notify_block(name: str, alert: StoredAlert) -> bool:
    """Send the alert through a Prefect notification block (Slack, e-mail, ...); True if sent."""
    from prefect.blocks.core import Block

    try:
        block = Block.load(name)
        block.notify(
            body=alert.message,
            subject=f"nvda-forecast {alert.severity}: {alert.ticker} {alert.kind}",
        )
    except Exception as error:  # a broken channel must not fail the forecast
        reason = mask_urls(str(error)) or type(error).__name__
        _logger().warning("alert %d not sent through block %s: %s", alert.id, name, reason)
        return False
    return True
