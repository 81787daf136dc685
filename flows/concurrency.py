"""One run per ticker at a time, whatever started it: any deployment, `serve`, or the CLI.

A deployment's own concurrency limit only covers that deployment's runs; two deployments of
the same job (or a scheduled run and a manual `nvda-forecast run`) would still race on the
ticker's champion model. A Prefect global concurrency limit per ticker, held for the whole
run, covers them all: a second run waits for the first to finish. The limit lives on the
Prefect server (or on the temporary API's database, which concurrent CLI runs share).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_client
from prefect.concurrency.sync import concurrency

# Long enough for a full retrain; the lease is renewed while the run holds it.
LEASE_SECONDS = 600


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
    """Hold the ticker's slot while the block runs; wait (up to the timeout) for it first."""
    name = ensure_ticker_limit(ticker)
    with concurrency(
        name, occupy=1, timeout_seconds=timeout_seconds, lease_duration=LEASE_SECONDS, strict=True
    ):
        yield
