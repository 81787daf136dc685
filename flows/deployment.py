"""The deployment as code: one schedule, parameters, tags and a concurrency limit of one.

`nvda-forecast serve` serves it from this process (no work pool needed); `deployments/deploy.py`
and `deployments/prefect.yaml` register the same deployment with a work pool for production.
"""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.schedules import Cron, Schedule

DEPLOYMENT_NAME = "nvda-daily"
TIMEZONE = "America/New_York"
# 18:30 New York, Monday to Friday: two and a half hours after the 16:00 close, once Yahoo's
# daily bar is final. Exchange holidays are handled by the flow (it finds no new session and
# reuses the champion), so the cron needs no holiday list.
DAILY_CRON = "30 18 * * 1-5"
TAGS = ["nvda-forecast", "forecast", "daily"]
DESCRIPTION = (
    "Download fresh prices, retrain or fine-tune the LSTM, store the forecast, alert on drift."
)
# Two runs of the same job must never overlap (they would race on the champion); a late run
# waits for the earlier one instead of being dropped.
CONCURRENCY = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


def daily_schedule(cron: str | None = None) -> Schedule:
    """The weekday after-close schedule, in New York time."""
    return Cron(cron or DAILY_CRON, timezone=TIMEZONE)


def default_parameters(ticker: str = "NVDA", source: str = "yahoo") -> dict[str, Any]:
    """Parameters of the scheduled run: today's data (no as-of date), policy-driven training."""
    return {"ticker": ticker, "source": source, "as_of": None, "mode": "auto"}


def serve(*, ticker: str = "NVDA", source: str = "yahoo", cron: str | None = None) -> None:
    """Serve the deployment from this process until interrupted."""
    from flows.daily import daily_forecast

    daily_forecast.serve(
        name=DEPLOYMENT_NAME,
        schedules=[daily_schedule(cron)],
        parameters=default_parameters(ticker, source),
        tags=TAGS,
        description=DESCRIPTION,
        global_limit=CONCURRENCY,
    )
