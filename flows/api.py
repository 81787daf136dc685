"""The Prefect API a command talks to: the configured server, or a temporary one started here.

With no ``PREFECT_API_URL``, Prefect starts a temporary API server in a subprocess and waits
``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` for it (Prefect's default, 20 s, is too short
on a busy two-core machine: about one start in ten failed there). The CLI raises that wait to
:data:`STARTUP_TIMEOUT_S`, starts the server before the flow does, and tries once more before
giving up with one line.
"""

from __future__ import annotations

import logging
import os

from forecasting.errors import NvdaForecastError

STARTUP_TIMEOUT_S = 90
STARTUP_TIMEOUT_SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
ATTEMPTS = 2

logger = logging.getLogger(__name__)


class PrefectApiError(NvdaForecastError):
    """No Prefect API to run the flow against."""


def configure_startup_timeout() -> None:
    """Give the temporary API a sane start-up wait, unless the user chose one (before import)."""
    os.environ.setdefault(STARTUP_TIMEOUT_SETTING, str(STARTUP_TIMEOUT_S))


def _temporary_server():
    from prefect.server.api.server import SubprocessASGIServer

    # One instance per process: the flow's client finds this one already running.
    return SubprocessASGIServer()


def ensure_api() -> None:
    """Start Prefect's temporary API now when no server is configured; retry once, then fail."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    if PREFECT_API_URL.value():
        return
    timeout = PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
    server = _temporary_server()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            server.start()
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
