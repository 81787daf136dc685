"""Register the daily deployment with a work pool on a Prefect server, from Python.

    export PREFECT_API_URL=http://prefect:4200/api
    python deployments/deploy.py --work-pool nvda-forecast-docker --image nvda-forecast:0.1.0

Same schedule, parameters, tags and concurrency as `nvda-forecast serve` (flows/deployment.py).
Without --image the deployment targets a process work pool whose worker has the package installed.
"""

from __future__ import annotations

import argparse

import prefect
from prefect.deployments.runner import EntrypointType

from flows.daily import daily_forecast
from flows.deployment import (
    CONCURRENCY,
    DEPLOYMENT_NAME,
    DESCRIPTION,
    TAGS,
    daily_schedule,
    default_parameters,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-pool", required=True, help="name of an existing work pool")
    parser.add_argument("--image", help="Docker image with the package installed (docker pools)")
    parser.add_argument("--ticker", default="NVDA")
    parser.add_argument("--source", default="yahoo")
    parser.add_argument("--cron", help="override the schedule (America/New_York)")
    args = parser.parse_args()

    deployment = daily_forecast.to_deployment(
        name=DEPLOYMENT_NAME,
        schedules=[daily_schedule(args.cron)],
        parameters=default_parameters(args.ticker, args.source),
        tags=TAGS,
        description=DESCRIPTION,
        concurrency_limit=CONCURRENCY,
        work_pool_name=args.work_pool,
        # Import by module path: the code lives in site-packages, not in a checked-out folder.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    prefect.deploy(
        deployment, work_pool_name=args.work_pool, image=args.image, build=False, push=False
    )


if __name__ == "__main__":
    main()
