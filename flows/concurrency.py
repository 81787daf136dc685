"""One run per ticker at a time, whatever started it: any deployment, `serve`, or the CLI.

A deployment's own concurrency limit only covers that deployment's runs; two deployments of
the same job (or a scheduled run and a manual `nvda-forecast run`) would still race on the
ticker's champion model. A Prefect global concurrency limit per ticker, held for the whole
run, covers them all: a second run waits for the first to finish. The limit lives on the
Prefect server (or on the temporary API's database, which concurrent CLI runs share).

A many-ticker run takes all its tickers' slots in one request before it fans out
(:func:`tickers_held`) and its tickers' tasks then run unguarded: one acquisition instead of one
per ticker. Taken one by one on a busy temporary API, the acquisitions stalled the workers: its
SQLite database refused the write (HTTP 503) and the client backed off 2, 4, then 8 s, about
27 s of a 16-ticker next day on two Dask workers. If another run holds any of the tickers, the
run falls back to each ticker waiting for its own slot, so a busy ticker delays only itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from prefect import get_client
from prefect.concurrency.sync import concurrency

from forecasting.errors import NvdaForecastError

# Long enough for a full retrain; the lease is renewed while the run holds it.
LEASE_SECONDS = 600
# The API's largest page of concurrency limits.
PAGE = 200

logger = logging.getLogger(__name__)


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


def ensure_ticker_limits(tickers: Sequence[str]) -> list[str]:
    """`ensure_ticker_limit` for many tickers: one read of the limits, a write per missing one."""
    names = [ticker_limit_name(ticker) for ticker in tickers]
    with get_client(sync_client=True) as client:
        usable, offset = set(), 0
        while page := client.read_global_concurrency_limits(limit=PAGE, offset=offset):
            usable |= {limit.name for limit in page if limit.limit == 1}
            offset += len(page)
        for name in names:
            if name not in usable:
                client.upsert_global_concurrency_limit_by_name(name, limit=1)
    return names


@contextmanager
def tickers_held(tickers: Sequence[str]) -> Iterator[bool]:
    """Hold every ticker's slot while the block runs, taken in one request; yield whether held.

    Does not wait: if another run holds any of the tickers, nothing is taken, and the block is
    told so (False) and guards each ticker with :func:`ticker_guard` instead.
    """
    from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError

    names = ensure_ticker_limits(tickers)
    held = ExitStack()
    try:
        held.enter_context(
            concurrency(names, occupy=1, max_retries=0, lease_duration=LEASE_SECONDS, strict=True)
        )
    except (ConcurrencySlotAcquisitionError, TimeoutError) as error:
        logger.info("the tickers' slots are taken one by one: %s", error)
        taken = False
    else:
        taken = True
    with held:
        yield taken


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
