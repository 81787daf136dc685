"""The deployment as code: one per ticker, one schedule, parameters, tags, concurrency.

Whichever way it is registered (`nvda-forecast serve`, `deployments/deploy.py`, or `prefect
deploy` with deployments/prefect.yaml), the deployment is `daily-forecast/<ticker>-daily`:
registering it again updates it instead of adding a second schedule.
"""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.schedules import Cron, Schedule

FLOW_NAME = "daily-forecast"
TIMEZONE = "America/New_York"
# 18:30 New York, Monday to Friday: two and a half hours after the 16:00 close, once Yahoo's
# daily bar is final. Exchange holidays are handled by the flow (it finds no new session and
# reuses the champion), so the cron needs no holiday list.
DAILY_CRON = "30 18 * * 1-5"
TAGS = ["nvda-forecast", "forecast", "daily"]
DESCRIPTION = (
    "Download fresh prices, retrain or fine-tune the LSTM, store the forecast, alert on drift."
)
# Two runs of the same deployment never overlap; a late run waits instead of being dropped.
# Runs of the same ticker from different deployments are serialized by flows.concurrency.
CONCURRENCY = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE)


def deployment_name(ticker: str = "NVDA") -> str:
    """``nvda-daily`` for NVDA: the same name from serve, deploy.py and prefect.yaml."""
    return f"{ticker.lower()}-daily"


DEPLOYMENT_NAME = deployment_name()


def daily_schedule(cron: str | None = None) -> Schedule:
    """The weekday after-close schedule, in New York time."""
    return Cron(cron or DAILY_CRON, timezone=TIMEZONE)


def default_parameters(ticker: str = "NVDA", source: str = "yahoo") -> dict[str, Any]:
    """Parameters of the scheduled run: today's data (no as-of date), policy-driven training."""
    return {"ticker": ticker, "source": source, "as_of": None, "mode": "auto"}


def deployment_options(
    ticker: str = "NVDA", source: str = "yahoo", cron: str | None = None
) -> dict[str, Any]:
    """What every registration of the ticker's deployment shares."""
    return {
        "name": deployment_name(ticker),
        "schedules": [daily_schedule(cron)],
        "parameters": default_parameters(ticker, source),
        "tags": TAGS,
        "description": DESCRIPTION,
    }


def serve(*, ticker: str = "NVDA", source: str = "yahoo", cron: str | None = None) -> None:
    """Serve the ticker's deployment from this process until interrupted."""
    from flows.concurrency import ensure_ticker_limit
    from flows.daily import daily_forecast

    ensure_ticker_limit(ticker)
    daily_forecast.serve(**deployment_options(ticker, source, cron), global_limit=CONCURRENCY)


FLEET_DEPLOYMENT_NAME = "fleet-daily"


def fleet_deployment_options(
    tickers: list[str], source: str = "yahoo", cron: str | None = None
) -> dict[str, Any]:
    """The many-ticker deployment, ``fleet-forecast/fleet-daily``: same schedule and tags."""
    return {
        "name": FLEET_DEPLOYMENT_NAME,
        "schedules": [daily_schedule(cron)],
        "parameters": {"tickers": list(tickers), "source": source, "as_of": None, "mode": "auto"},
        "tags": [*TAGS, "fleet"],
        "description": DESCRIPTION.replace("the LSTM", "each ticker's LSTM"),
    }


def serve_fleet(
    *,
    tickers: list[str],
    source: str = "yahoo",
    cron: str | None = None,
    task_runner: str | None = None,
) -> None:
    """Serve the many-ticker deployment from this process until interrupted.

    Each scheduled run fans out over ``tickers`` on the task runner of the settings (or
    ``task_runner``); every ticker's own runs stay serialized by flows.concurrency.
    """
    from flows.concurrency import ensure_ticker_limit
    from flows.fleet import fleet_forecast, runner_for
    from flows.settings import get_settings

    for ticker in tickers:
        ensure_ticker_limit(ticker)
    runner = runner_for(get_settings(), task_runner)
    fleet_forecast.with_options(task_runner=runner).serve(
        **fleet_deployment_options(tickers, source, cron), global_limit=CONCURRENCY
    )
