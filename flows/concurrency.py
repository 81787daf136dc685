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

A killed holder (the OOM killer, ``kill -9``) never gives its slot back, and Prefect's own
remedy, a lease that expires, does not reach the temporary API: Prefect keeps leases in the
API server's memory (the default lease storage), and only a full server runs the service that
revokes expired ones (the "repossessor"; a temporary API, started as an ephemeral server, runs
no such service, and the killed command's server took the lease with it anyway). So each slot
also has a host-side half (:class:`_HostHold`): a file lock the holding process keeps for as
long as it holds the slot, which the kernel lets go of when that process dies however it dies,
beside a record of the lease (the holder's pid, host and API). A run that wants the ticker takes
the file lock first; any record it then finds is a dead holder's, and it frees that holder's
slot before it waits: through the lease when the API still knows it, otherwise (the lease died
with its temporary API) by giving the slot back by name. Holders on another host are left to
the lease, which a full Prefect server does expire (after :data:`LEASE_SECONDS`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext, suppress
from pathlib import Path

from prefect import get_client
from prefect.concurrency.sync import concurrency

from flows.api import api_url
from forecasting.errors import NvdaForecastError

try:
    import fcntl
except ImportError:  # not on POSIX: no host-side check, the lease alone
    fcntl = None

# Long enough for a full retrain; the lease is renewed while the run holds it.
LEASE_SECONDS = 600
# The API's largest page of concurrency limits.
PAGE = 200
# How often a run waiting behind a holder on this host looks whether the holder is still alive.
POLL_SECONDS = 0.25

logger = logging.getLogger(__name__)


class TickerBusyError(NvdaForecastError, TimeoutError):
    """The ticker's slot stayed taken for as long as the run was willing to wait."""


class _HandledAcquisitionNoise(logging.Filter):
    """Drop Prefect's ERROR line for a slot that could not be had (a wait that timed out, or a
    one-try acquisition refused with 423): this module handles both and says so in one line."""

    SERVICES = ("ConcurrencySlotAcquisitionWithLeaseService", "ConcurrencySlotAcquisitionService")

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) != 2 or args[0] not in self.SERVICES:
            return True
        future = args[1][-1] if isinstance(args[1], tuple) and args[1] else None
        try:
            error = future.exception(timeout=0) if future is not None else None
        except Exception:
            return True
        locked = getattr(getattr(error, "response", None), "status_code", None) == 423
        return not (isinstance(error, TimeoutError) or locked)


logging.getLogger("prefect._internal.concurrency").addFilter(_HandledAcquisitionNoise())


def ticker_limit_name(ticker: str) -> str:
    """The global concurrency limit that serializes the runs of one ticker."""
    return f"nvda-forecast-ticker-{ticker.upper()}"


def ensure_ticker_limit(ticker: str) -> str:
    """Create the ticker's limit (one slot) if it is missing; return its name."""
    return ensure_ticker_limits([ticker])[0]


def ensure_ticker_limits(tickers: Sequence[str]) -> list[str]:
    """Create each ticker's limit (one slot) if missing: one read of the limits, a write per
    missing one; return their names."""
    return list(_limit_ids(tickers))


def _limit_ids(tickers: Sequence[str]) -> dict[str, str]:
    """`ensure_ticker_limits`, each name with its limit's id (which names the host-side lock:
    the same limit, the same database, whichever temporary API serves it)."""
    from prefect.exceptions import ObjectNotFound

    names = [ticker_limit_name(ticker) for ticker in tickers]
    with get_client(sync_client=True) as client:
        found = {}
        if len(names) == 1:  # a single-ticker run: one read, not every limit's
            with suppress(ObjectNotFound):
                found[names[0]] = client.read_global_concurrency_limit_by_name(names[0])
        else:
            offset = 0
            while page := client.read_global_concurrency_limits(limit=PAGE, offset=offset):
                found |= {limit.name: limit for limit in page}
                offset += len(page)
        ids = {}
        for name in names:
            limit = found.get(name)
            if limit is None or limit.limit != 1:
                client.upsert_global_concurrency_limit_by_name(name, limit=1)
                limit = client.read_global_concurrency_limit_by_name(name)
            ids[name] = str(limit.id)
    return ids


class _HostHold:
    """The host-side half of one ticker's slot: a file lock and a record of the lease.

    A holder keeps the lock from before it takes the slot until after it gave it back, and its
    record exists only meanwhile: whoever gets the lock and finds a record found a dead holder's
    (the kernel drops a process's file locks when it dies, ``kill -9`` included).
    """

    def __init__(self, name: str, limit_id: str, folder: Path | None):
        self.name = name
        self.folder = folder
        self.lock_path = folder / f"{limit_id}.lock" if folder else None
        self.record_path = folder / f"{limit_id}.json" if folder else None
        self._file = None

    def try_lock(self) -> bool:
        """Take the file lock if free (True: nobody on this host holds the slot)."""
        if self.lock_path is None:
            return True
        handle = open(self.lock_path, "a")  # noqa: SIM115 - kept open while held
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._file = handle
        return True

    def unlock(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock
            self._file = None

    def holder(self) -> dict | None:
        """The record of whoever holds (or, found under our lock, held) the slot."""
        if self.record_path is None:
            return None
        try:
            return json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            return None

    def record(self, lease_id, api_url: str) -> None:
        if self.record_path is None:
            return
        record = {
            "limit": self.name,
            "lease_id": str(lease_id) if lease_id else None,
            "api_url": api_url,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        temporary = self.record_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(record))
        temporary.replace(self.record_path)

    def forget(self) -> None:
        if self.record_path is not None:
            self.record_path.unlink(missing_ok=True)

    def free_dead_holder(self, api_url: str) -> None:
        """Under the lock: give back the slot of the dead holder whose record is left, if any."""
        dead = self.holder()
        if dead is None:
            return
        freed = _free_slot(self.name, dead.get("lease_id"), same_api=dead.get("api_url") == api_url)
        logger.warning(
            "%s: the run that held it (pid %s on %s since %s) is gone; %s",
            self.name,
            dead.get("pid"),
            dead.get("host"),
            dead.get("since"),
            freed,
        )
        self.forget()


def _free_slot(name: str, lease_id: str | None, *, same_api: bool) -> str:
    """Give back a dead holder's slot; say how."""
    import httpx

    with get_client(sync_client=True) as client:
        if lease_id:
            try:  # does the API still know the lease? (renewing a dead lease costs nothing)
                client.renew_concurrency_lease(lease_id, lease_duration=60)
            except httpx.HTTPStatusError as error:
                if error.response.status_code not in (404, 410):
                    raise
            else:
                client.release_concurrency_slots_with_lease(lease_id)
                return "its lease is released"
        if same_api:
            # This API knew the lease and no longer does: Prefect revoked it, slot and all.
            return "Prefect had already revoked its lease"
        # The lease lived on the holder's temporary API, which nothing will revoke it on.
        client.release_concurrency_slots([name], slots=1, occupancy_seconds=1.0)
        return "its slot is given back"


def _slot_folder() -> Path | None:
    """Where the host-side halves live: beside the Prefect API's own files (PREFECT_HOME)."""
    if fcntl is None:
        return None
    from prefect.settings import get_current_settings

    folder = Path(get_current_settings().home).expanduser() / "nvda-forecast-slots"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        logger.info("no host-side slot check (%s): a killed run's slot waits for its lease", error)
        return None
    return folder


def _holds(tickers: Sequence[str]) -> list[_HostHold]:
    folder = _slot_folder()
    return [_HostHold(name, limit_id, folder) for name, limit_id in _limit_ids(tickers).items()]


@contextmanager
def _lease(names: list[str], **options) -> Iterator[str | None]:
    """Prefect's `concurrency` for ``names``; yield the lease's id (None if not learned)."""
    from prefect.concurrency.context import ConcurrencyContext

    slots = concurrency(names, occupy=1, lease_duration=LEASE_SECONDS, strict=True, **options)
    with ConcurrencyContext() as context, slots:
        leases = getattr(context, "cleanup_lease_ids", None)
        yield str(leases[-1]) if leases else None


@contextmanager
def tickers_held(tickers: Sequence[str]) -> Iterator[bool]:
    """Hold every ticker's slot while the block runs, taken in one request; yield whether held.

    Does not wait: if another run holds any of the tickers, nothing is taken, and the block is
    told so (False) and guards each ticker with :func:`ticker_guard` instead.
    """
    from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError

    holds = _holds(tickers)
    here = api_url()
    with ExitStack() as held:
        taken = True
        for hold in holds:
            if not hold.try_lock():
                taken = False
                break
            held.callback(hold.unlock)
        if taken:
            for hold in holds:
                hold.free_dead_holder(here)
                held.callback(hold.forget)  # after the slot is given back, before the unlock
            try:
                lease_id = held.enter_context(_lease([hold.name for hold in holds], max_retries=0))
            except (ConcurrencySlotAcquisitionError, TimeoutError) as error:
                logger.info("the tickers' slots are taken one by one: %s", error)
                taken = False
            else:
                for hold in holds:
                    hold.record(lease_id, here)
        if not taken:
            held.close()  # nothing of them held: each ticker's task takes its own
        yield taken


@contextmanager
def ticker_guard(ticker: str, *, timeout_seconds: float | None = None) -> Iterator[None]:
    """Hold the ticker's slot while the block runs; wait (up to the timeout) for it first.

    The wait is bounded (``NVDA_FORECAST_TICKER_WAIT_SECONDS`` unless given). A holder that
    died on this host is noticed as soon as it is gone, and its slot freed (see the module's
    documentation); one on another host holds the slot until its lease expires.
    """
    from flows.settings import get_settings

    (hold,) = _holds([ticker])
    wait = get_settings().ticker_wait_seconds if timeout_seconds is None else timeout_seconds
    deadline = time.monotonic() + wait
    with ExitStack() as held:
        while not hold.try_lock():
            if time.monotonic() >= deadline:
                raise _busy(ticker, hold, wait)
            time.sleep(POLL_SECONDS)
        held.callback(hold.unlock)
        here = api_url()
        hold.free_dead_holder(here)
        held.callback(hold.forget)  # after the slot is given back, before the unlock
        try:
            lease_id = held.enter_context(
                _lease([hold.name], timeout_seconds=max(1.0, deadline - time.monotonic()))
            )
        except TimeoutError:
            raise _busy(ticker, hold, wait) from None
        hold.record(lease_id, here)
        yield


def _busy(ticker: str, hold: _HostHold, wait: float) -> TickerBusyError:
    holder = hold.holder()
    by = (
        f" (pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')})"
        if holder
        else ""
    )
    return TickerBusyError(
        f"{ticker} is still taken by another run after {wait:.0f} s{by}; if no run of "
        f"{ticker} is active, free its slot with "
        f"`prefect gcl update {hold.name} --active-slots 0` and rerun"
    )


def ticker_slot(ticker: str, *, held: bool) -> AbstractContextManager[None]:
    """`ticker_guard`, unless the caller holds the ticker's slot already (a many-ticker run)."""
    return nullcontext() if held else ticker_guard(ticker)
