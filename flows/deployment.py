"""The deployment as code: one per ticker, one schedule, parameters, tags, concurrency.

Two names, one per way of running it, so that neither takes the other over:

- the work pool's deployment, `daily-forecast/<ticker>-daily` (`nvda-daily`), which
  `deployments/deploy.py` and `prefect deploy` (deployments/prefect.yaml) register and a worker
  runs: the production schedule;
- the served one, `daily-forecast/<ticker>-daily-served`, which `nvda-forecast serve` registers
  and runs from its own process.

They once shared one name: a running `serve` moved the pool's deployment off its pool (Prefect's
runner clears the work pool of what it serves) and ran its runs, and stopping `serve` paused it
(Prefect's runner pauses what it served on shutdown), silently switching the production schedule
off. `serve` also refuses to take over any deployment that belongs to a work pool. Registering
either one again updates it instead of adding a second schedule, and resumes it if paused.
"""

from __future__ import annotations

from typing import Any

from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.schedules import Cron, Schedule

from forecasting.errors import NvdaForecastError

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


# What `serve` appends to a deployment's name: a served deployment is never the pool's.
SERVED_SUFFIX = "-served"


class ServeTakeoverError(NvdaForecastError):
    """`serve` was about to take over a deployment that a work pool's worker runs."""


def deployment_name(ticker: str = "NVDA", *, served: bool = False) -> str:
    """``nvda-daily`` for NVDA on a work pool (deploy.py, prefect.yaml); ``nvda-daily-served``
    for what ``nvda-forecast serve`` registers."""
    name = f"{ticker.lower()}-daily"
    return name + SERVED_SUFFIX if served else name


DEPLOYMENT_NAME = deployment_name()
SERVED_DEPLOYMENT_NAME = deployment_name(served=True)


def daily_schedule(cron: str | None = None) -> Schedule:
    """The weekday after-close schedule, in New York time."""
    return Cron(cron or DAILY_CRON, timezone=TIMEZONE)


def default_parameters(ticker: str = "NVDA", source: str = "yahoo") -> dict[str, Any]:
    """Parameters of the scheduled run: today's data (no as-of date), policy-driven training."""
    return {"ticker": ticker, "source": source, "as_of": None, "mode": "auto"}


def deployment_options(
    ticker: str = "NVDA", source: str = "yahoo", cron: str | None = None, *, served: bool = False
) -> dict[str, Any]:
    """What every registration of the ticker's deployment shares; ``served`` names the one
    `serve` registers instead of the work pool's."""
    return {
        "name": deployment_name(ticker, served=served),
        "schedules": [daily_schedule(cron)],
        "parameters": default_parameters(ticker, source),
        "tags": TAGS,
        "description": DESCRIPTION,
    }


def refuse_pool_deployment(flow_name: str, name: str) -> None:
    """Raise :class:`ServeTakeoverError` if ``flow_name/name`` belongs to a work pool.

    Serving it would move it off its pool, run the runs meant for the pool's worker, and pause
    it when `serve` stops: the pool's schedule silently off.
    """
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    full_name = f"{flow_name}/{name}"
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(full_name)
        except ObjectNotFound:
            return
    if deployment.work_pool_name:
        raise ServeTakeoverError(
            f"deployment {full_name!r} belongs to work pool {deployment.work_pool_name!r} and "
            "its worker runs it; serve will not take it over (serving it would pause it on "
            f"stop): delete it first (`prefect deployment delete {full_name}`) to serve it here"
        )


def serve(*, ticker: str = "NVDA", source: str = "yahoo", cron: str | None = None) -> None:
    """Serve the ticker's ``-served`` deployment from this process until interrupted; the work
    pool's deployment of the ticker is left as it is, stopping included."""
    from flows.concurrency import ensure_ticker_limit
    from flows.daily import daily_forecast

    options = deployment_options(ticker, source, cron, served=True)
    refuse_pool_deployment(daily_forecast.name, options["name"])
    ensure_ticker_limit(ticker)
    daily_forecast.serve(**options, global_limit=CONCURRENCY)


FLEET_FLOW_NAME = "fleet-forecast"
FLEET_DEPLOYMENT_NAME = "fleet-daily"
SERVED_FLEET_DEPLOYMENT_NAME = FLEET_DEPLOYMENT_NAME + SERVED_SUFFIX


def fleet_deployment_options(
    tickers: list[str], source: str = "yahoo", cron: str | None = None, *, served: bool = False
) -> dict[str, Any]:
    """The many-ticker deployment, ``fleet-forecast/fleet-daily`` on a work pool and
    ``fleet-forecast/fleet-daily-served`` served: same schedule and tags."""
    return {
        "name": SERVED_FLEET_DEPLOYMENT_NAME if served else FLEET_DEPLOYMENT_NAME,
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
    """Serve the many-ticker ``-served`` deployment from this process until interrupted.

    Each scheduled run fans out over ``tickers`` on the task runner of the settings (or
    ``task_runner``); every ticker's own runs stay serialized by flows.concurrency.
    """
    from flows.concurrency import ensure_ticker_limit
    from flows.fleet import fleet_forecast
    from flows.settings import get_settings
    from flows.task_runners import runner_for

    options = fleet_deployment_options(tickers, source, cron, served=True)
    refuse_pool_deployment(fleet_forecast.name, options["name"])
    for ticker in tickers:
        ensure_ticker_limit(ticker)
    runner = runner_for(get_settings(), task_runner)
    fleet_forecast.with_options(task_runner=runner).serve(**options, global_limit=CONCURRENCY)
