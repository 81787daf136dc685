"""The Prefect API a command talks to: the configured server, or a temporary one started here.

With no ``PREFECT_API_URL``, Prefect starts a temporary API server in a subprocess and waits
``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` for it (Prefect's default, 20 s, is too short
on a busy two-core machine: about one start in ten failed there). The CLI raises that wait to
:data:`STARTUP_TIMEOUT_S`, starts the server before the flow does, and tries once more before
giving up with one line.

The temporary server also records task runs in batches (:data:`TEMPORARY_API_DEFAULTS`): Prefect's
task-run recorder writes each state event in its own INSERT by default, and on a two-core machine
that was the server's largest cost in a 50-ticker run (about 20 s of CPU, 1,050 task runs).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from forecasting.errors import NvdaForecastError

STARTUP_TIMEOUT_S = 90
STARTUP_TIMEOUT_SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
TEMPORARY_API_DEFAULTS = {
    STARTUP_TIMEOUT_SETTING: str(STARTUP_TIMEOUT_S),
    # Up to 100 task-run events an INSERT (Prefect's default: 1), flushed at least every 5 s
    # (its default flush interval) and when the server stops: the same rows, far fewer
    # statements. A server of your own takes the same setting (docs/fleet.md, "Speed").
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100",
}
ATTEMPTS = 2

logger = logging.getLogger(__name__)


class PrefectApiError(NvdaForecastError):
    """No Prefect API to run the flow against."""


def configure_temporary_api() -> None:
    """Give the temporary API a sane start-up wait and batched task-run writes, unless the user
    chose otherwise (before Prefect is imported; a configured server ignores them)."""
    for name, value in TEMPORARY_API_DEFAULTS.items():
        os.environ.setdefault(name, value)


# Run beside the temporary API by a command: stop the server (SIGTERM: it shuts down cleanly)
# once the command is gone, however it went. Only os and time: it starts in milliseconds.
WATCH = """
import os, signal, sys, time
command, server = int(sys.argv[1]), int(sys.argv[2])
while os.getppid() == command:
    time.sleep(1)
    try:
        os.kill(server, 0)
    except OSError:
        sys.exit(0)
try:
    os.kill(server, signal.SIGTERM)
except OSError:
    pass
"""


def _temporary_server():
    from prefect.server.api.server import SubprocessASGIServer

    class TemporaryServer(SubprocessASGIServer):
        """Prefect's temporary API server, which never outlives this command.

        Prefect stops it at exit and on SIGTERM, but a command killed with SIGKILL (the OOM
        killer) left it running for good, an orphan holding the run's leases in its memory. A
        watcher process (:data:`WATCH`) stops it when this process is gone.
        """

        def _run_uvicorn_command(self):
            server = super()._run_uvicorn_command()
            watcher = subprocess.Popen(
                [sys.executable, "-c", WATCH, str(os.getpid()), str(server.pid)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.__dict__.setdefault("watchers", []).append(watcher)
            return server

        def stop(self):
            super().stop()
            for watcher in self.__dict__.pop("watchers", []):
                watcher.kill()
                watcher.wait()

    # One instance per process (Prefect keys them by port, in a registry its subclasses share):
    # the flow's client finds this one already running.
    return TemporaryServer()


def ensure_api(meanwhile: Callable[[], None] | None = None) -> None:
    """Start Prefect's temporary API now when no server is configured; retry once, then fail.

    ``meanwhile`` (the CLI's TensorFlow import) runs here while the server boots in its own
    process: on two cores the two overlap, about 3 s of a command's start. It runs once the
    server's process exists, so that the server keeps this process's standard error (the
    TensorFlow import points it at /dev/null for a moment).
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    if PREFECT_API_URL.value():
        if meanwhile:
            meanwhile()
        return
    timeout = PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
    server = _temporary_server()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _start_while(server, meanwhile if attempt == 1 else None)
            return
        except RuntimeError as error:
            # The whole message (with the server's own output) for -v and the logs.
            logger.info("temporary Prefect API, attempt %d of %d: %s", attempt, ATTEMPTS, error)
            server.stop()
    raise PrefectApiError(
        f"Prefect's temporary API did not start within {timeout} s ({ATTEMPTS} attempts); the "
        f"machine is busy: rerun, raise {STARTUP_TIMEOUT_SETTING}, or run `prefect server start` "
        "and set PREFECT_API_URL"
    )


def _start_while(server, meanwhile: Callable[[], None] | None) -> None:
    """``server.start()`` (which waits for the server's health check) on a helper thread,
    ``meanwhile`` on this one as soon as the server's process is launched."""
    if meanwhile is None:
        server.start()
        return
    with ThreadPoolExecutor(1, thread_name_prefix="prefect-api-start") as pool:
        started = pool.submit(server.start)
        while getattr(server, "server_process", None) is None and not started.done():
            time.sleep(0.01)
        meanwhile()
        started.result()


def api_url() -> str:
    """The Prefect API this process reports to: the configured server, or the temporary one."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return str(client.api_url).rstrip("/")
