"""Register the daily deployment with a work pool on a Prefect server, from Python.

    export PREFECT_API_URL=http://prefect:4200/api
    python deployments/deploy.py --work-pool nvda-forecast-process
    python deployments/deploy.py --work-pool nvda-forecast-docker --image nvda-forecast:0.1.0

The deployment is `daily-forecast/nvda-daily`, as with `prefect deploy` (flows/deployment.py):
registering it again, from either, updates it and resumes it if it was paused. `nvda-forecast
serve` registers `daily-forecast/nvda-daily-served` instead and never touches this one. Without
--image the deployment targets a process work pool whose worker has the package installed.
"""

from __future__ import annotations

import argparse
import sys

# Before flows.daily loads TensorFlow: no CUDA or absl start-up lines in the output.
from flows.quiet import import_tensorflow

import_tensorflow()

import prefect  # noqa: E402
from prefect.deployments.runner import EntrypointType  # noqa: E402

from flows.concurrency import ensure_ticker_limit  # noqa: E402
from flows.daily import daily_forecast  # noqa: E402
from flows.deployment import CONCURRENCY, deployment_options  # noqa: E402
from forecasting.errors import one_line  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-pool", required=True, help="name of an existing work pool")
    parser.add_argument("--image", help="Docker image with the package installed (docker pools)")
    parser.add_argument("--ticker", default="NVDA")
    parser.add_argument("--source", default="yahoo")
    parser.add_argument("--cron", help="override the schedule (America/New_York)")
    args = parser.parse_args(argv)

    deployment = daily_forecast.to_deployment(
        **deployment_options(args.ticker, args.source, args.cron),
        concurrency_limit=CONCURRENCY,
        work_pool_name=args.work_pool,
        # The production schedule: registering it (again) switches it on, even if something
        # paused it (a `serve` of the same name did, before they had names of their own).
        paused=False,
        # Import by module path: the code lives in site-packages, not in a checked-out folder,
        # and no deploy-time folder (such as the deployer's $HOME) is recorded.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    try:
        ensure_ticker_limit(args.ticker)
        prefect.deploy(
            deployment, work_pool_name=args.work_pool, image=args.image, build=False, push=False
        )
    except Exception as error:  # API unreachable, unknown work pool: one line, not a traceback
        print(f"error: {one_line(error)}; check PREFECT_API_URL", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
