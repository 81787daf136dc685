"""One run per ticker at a time, whatever started it: any deployment, `serve`, or the CLI.

A deployment's own concurrency limit only covers that deployment's runs; two deployments of
the same job (or a scheduled run and a manual `nvda-forecast run`) would still race on the
ticker's champion model. A Prefect global concurrency limit per ticker, held for the whole
run, covers them all: a second run waits for the first to finish. The limit lives on the
Prefect server (or on the temporary API's database, which concurrent CLI runs share).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from prefect import get_client
from prefect.concurrency.sync import concurrency

from forecasting.errors import NvdaForecastError

# Long enough for a full retrain; the lease is renewed while the run holds it.
LEASE_SECONDS = 600


class TickerBusyError(NvdaForecastError, TimeoutError):
    """The ticker's slot stayed taken for as long as the run was willing to wait."""


def ticker_limit_name(ticker: str) -> str:
    """The global concurrency limit that serializes the runs of one ticker."""
    return f"nvda-forecast-ticker-{ticker.upper()}"


def ensure_ticker_limit(ticker: str) -> str:
    """Create the ticker's limit (one slot) if it is missing; return its name."""
    name = ticker_limit_name(ticker)
    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, limit=1)
    return name


@contextmanager
def ticker_guard(ticker: str, *, timeout_seconds: float | None = None) -> Iterator[None]:
    """Hold the ticker's slot while the block runs; wait (up to the timeout) for it first.

    The wait is bounded (``NVDA_FORECAST_TICKER_WAIT_SECONDS`` unless given): Prefect keeps a
    slot's lease in the API server's memory, so a run killed while its server restarted (a
    temporary API dies with its CLI process) leaves the slot taken for good, and every later run
    of the ticker would wait until its flow timed out, saying nothing useful.
    """
    from flows.settings import get_settings

    name = ensure_ticker_limit(ticker)
    wait = get_settings().ticker_wait_seconds if timeout_seconds is None else timeout_seconds
    with ExitStack() as held:
        try:
            held.enter_context(
                concurrency(
                    name, occupy=1, timeout_seconds=wait, lease_duration=LEASE_SECONDS, strict=True
                )
            )
        except TimeoutError:
            raise TickerBusyError(
                f"{ticker} is still taken by another run after {wait:.0f} s; if no run of "
                f"{ticker} is active, one that was killed left its slot taken: free it with "
                f"`prefect gcl update {name} --active-slots 0` and rerun"
            ) from None
        yield
