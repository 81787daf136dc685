"""A run killed while it holds its ticker's slot (the OOM killer, `kill -9`) does not block the
ticker: the next run frees the dead holder's slot and goes on at once (flows/concurrency.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.concurrency import ticker_guard, ticker_limit_name

ROOT = Path(__file__).resolve().parents[2]

HOLD = textwrap.dedent(
    """
    import sys, time
    from flows.concurrency import ticker_guard

    with ticker_guard(sys.argv[1], timeout_seconds=120):
        print("held", flush=True)
        time.sleep(600)
    """
)


def _environment(**extra: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    return environment | {"PYTHONPATH": str(ROOT)} | extra


def _active_slots(ticker: str) -> int:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(ticker_limit_name(ticker)).active_slots


@contextlib.contextmanager
def _holder(ticker: str) -> Iterator[subprocess.Popen]:
    """A process of its own on the session's Prefect API holding ``ticker``'s slot (``HOLD``),
    killed on the way out if it still lives."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    environment = _environment(
        PREFECT_API_URL=str(settings.api.url), PREFECT_HOME=str(settings.home)
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, ticker],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(timeout=30)


def test_a_holder_killed_with_sigkill_leaves_no_slot_taken(prefect_server):
    """The holder, a process of its own on the same Prefect API, takes the slot through the
    code every run uses and is killed with SIGKILL; the next run gets the slot in seconds (it
    used to wait its whole wait and fail: Prefect's lease is never revoked on a temporary API)."""
    with _holder("KILLED") as holder:
        assert _active_slots("KILLED") == 1
        holder.send_signal(signal.SIGKILL)
        assert holder.wait(timeout=30) == -signal.SIGKILL

    started = time.monotonic()
    with ticker_guard("KILLED", timeout_seconds=30):
        waited = time.monotonic() - started
        assert _active_slots("KILLED") == 1  # ours, not the dead run's and ours
    assert waited < 15
    assert _active_slots("KILLED") == 0


def test_a_live_holder_in_another_process_still_makes_the_next_run_wait(prefect_server):
    """The check frees only a dead holder's slot: while the holder lives, the next run waits."""
    with _holder("ALIVE"):
        busy = pytest.raises(TimeoutError, match=r"ALIVE is still taken .* \(pid \d+ on ")
        with busy, ticker_guard("ALIVE", timeout_seconds=2):
            pass
        assert _active_slots("ALIVE") == 1


def _server_processes(pid: int, psutil) -> list:
    found = []
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return found
    for child in children:
        try:
            if "uvicorn" in child.cmdline():
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.mark.slow
def test_a_run_killed_with_its_temporary_api_does_not_block_the_next_run(
    tmp_path, price_files_for_kill, tiny_training
):
    """What the red team did: `nvda-forecast run` on its temporary Prefect API, killed with
    SIGKILL while it holds the ticker's slot; the next `run` (a temporary API of its own, the
    same PREFECT_HOME) must not wait for a slot nobody holds."""
    psutil = pytest.importorskip("psutil")
    prefect_home = tmp_path / "prefect"
    environment = _environment(
        PREFECT_HOME=str(prefect_home),
        DATABASE_URL=f"sqlite:///{tmp_path / 'f.db'}",
        NVDA_FORECAST_ARTIFACT_ROOT=str(tmp_path / "artifacts"),
        NVDA_FORECAST_TICKER_WAIT_SECONDS="90",
        **tiny_training,
    )
    command = [sys.executable, "-m", "flows.presentation.cli", "run", "--ticker", "KILL"]
    command += ["--source", price_files_for_kill]
    first = subprocess.Popen(
        command, cwd=tmp_path, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    orphans: list = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and first.poll() is None:
            if _slot_taken(prefect_home / "prefect.db", "KILL"):
                break
            time.sleep(0.2)
        assert first.poll() is None, first.stderr.read().decode()
        orphans = _server_processes(first.pid, psutil)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        assert _slot_taken(prefect_home / "prefect.db", "KILL")

        started = time.monotonic()
        second = subprocess.run(
            command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=400
        )
        assert second.returncode == 0, second.stderr
        assert "still taken" not in second.stderr
        # Not the 90 s wait: the run itself, most of it the tiny model's training.
        assert time.monotonic() - started < 240
    finally:
        if first.poll() is None:
            first.kill()
        for orphan in orphans:  # the killed command's temporary API, if it outlived it
            with contextlib.suppress(psutil.NoSuchProcess):
                orphan.kill()


def _slot_taken(database: Path, ticker: str) -> bool:
    if not database.exists():
        return False
    try:
        with sqlite3.connect(database, timeout=1) as connection:
            row = connection.execute(
                "SELECT active_slots FROM concurrency_limit_v2 WHERE name = ?",
                (ticker_limit_name(ticker),),
            ).fetchone()
    except sqlite3.Error:
        return False
    return bool(row and row[0] >= 1)


@pytest.fixture
def price_files_for_kill(tmp_path, write_yahoo_export) -> str:
    """``csv:`` of the sample's NVDA bars under the ticker KILL."""
    import datetime as dt

    from forecasting.prices.sources import load_prices

    path = tmp_path / "KILL.csv"
    write_yahoo_export(load_prices("sample", as_of=dt.date(2005, 6, 30)), path)
    return f"csv:{path}"


START_API = textwrap.dedent(
    """
    import time
    from flows.api import configure_temporary_api, ensure_api

    configure_temporary_api()
    ensure_api()
    print("up", flush=True)
    time.sleep(600)
    """
)


@pytest.mark.slow
def test_a_command_killed_with_sigkill_leaves_no_temporary_api_behind(tmp_path):
    """Prefect stops the temporary API at exit and on SIGTERM; a SIGKILL (the OOM killer) left
    it running for good, an orphan holding the dead run's leases. It stops within seconds."""
    psutil = pytest.importorskip("psutil")
    environment = _environment(PREFECT_HOME=str(tmp_path / "prefect"))
    command = subprocess.Popen(
        [sys.executable, "-c", START_API],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    servers: list = []
    try:
        assert command.stdout.readline().strip() == "up"
        servers = _server_processes(command.pid, psutil)
        assert len(servers) == 1
        command.send_signal(signal.SIGKILL)
        command.wait(timeout=30)
        _, alive = psutil.wait_procs(servers, timeout=20)
        assert alive == [], "the temporary API outlived its command"
    finally:
        if command.poll() is None:
            command.kill()
        for server in servers:
            with contextlib.suppress(psutil.NoSuchProcess):
                server.kill()
