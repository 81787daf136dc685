"""The image's HEALTHCHECK: a served deployment's runner still polls the Prefect API.

``nvda-forecast serve`` (the image's default command) starts the runner's web server
(``PREFECT_RUNNER_SERVER_ENABLE=true`` in the image), whose ``/health`` answers 503 once the
runner has missed its polls. A container a worker starts runs ``prefect flow-run execute`` for
one flow run and exits; Prefect tracks that run's state, so there is nothing to probe.

    python -m flows.health     # exit 0 healthy, 1 not
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

MAIN_PROCESS = Path("/proc/1/cmdline")
TIMEOUT_S = 5.0


def is_serving(cmdline: Path = MAIN_PROCESS) -> bool:
    """Whether the container's main process is ``nvda-forecast serve``."""
    try:
        arguments = cmdline.read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serve" in arguments and any(arg.endswith(b"nvda-forecast") for arg in arguments)


def runner_url() -> str:
    host = os.environ.get("PREFECT_RUNNER_SERVER_HOST", "localhost")
    port = os.environ.get("PREFECT_RUNNER_SERVER_PORT", "8080")
    return f"http://{host}:{port}/health"


def check(cmdline: Path = MAIN_PROCESS) -> str | None:
    """None when healthy, else one line saying why not."""
    if not is_serving(cmdline):
        return None
    url = runner_url()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S):
            return None
    except urllib.error.HTTPError as error:
        return f"runner at {url} answered {error.code}: it has stopped polling the Prefect API"
    except (urllib.error.URLError, OSError) as error:
        return f"runner at {url} does not answer ({getattr(error, 'reason', error)})"


def main() -> int:
    problem = check()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
