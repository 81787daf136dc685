"""Failures reach the user as one line with what to do, after a bounded wait where waiting helps."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prefect import task

import db.engine
from db.engine import get_engine, unit_of_work
from db.errors import DatabaseBusyError, DatabaseFullError
from db.migrate import upgrade
from db.repository import latest_price_date, upsert_prices
from flows import api
from flows.presentation.cli import COMMANDS, main
from flows.retry import IO_OPTIONS, is_transient
from forecasting.errors import ModelArtifactError, RateLimitedError

ROOT = Path(__file__).resolve().parents[2]


def _clean_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "TF_", "NVDA_FORECAST_", "DATABASE_URL"))
    }
    environment.update(
        NVDA_FORECAST_DATA_DIR=str(tmp_path / "data"),
        PREFECT_HOME=str(tmp_path / "prefect"),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return environment


@pytest.fixture
def tiny_volume(tmp_path):
    """A 4 KiB tmpfs: a real full disk (ENOSPC) for any model file. Needs root, as in CI."""
    mount_point = tmp_path / "tiny-volume"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); it needs root")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), False),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), False),
        (OSError(errno.EROFS, "Read-only file system"), False),
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), True),
        (TimeoutError("timed out"), True),
        (RateLimitedError("rate limited"), True),
        (DatabaseBusyError("locked"), True),
        (DatabaseFullError("full"), False),
        (ModelArtifactError("no space left"), False),
        (ValueError("a bug"), False),
    ],
)
def test_only_errors_that_waiting_can_cure_are_retried(error, transient):
    assert is_transient(error) is transient


def test_a_full_disk_is_not_retried(prefect_server):
    calls = []

    @task(**{**IO_OPTIONS, "retry_delay_seconds": 0})
    def write() -> None:
        calls.append(1)
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write()
    assert len(calls) == 1


def test_a_locked_sqlite_database_is_waited_for_then_written(
    prefect_server, sqlite_url, tmp_path, monkeypatch
):
    monkeypatch.setattr(db.engine, "SQLITE_BUSY_TIMEOUT_MS", 300)
    upgrade(sqlite_url)
    engine = get_engine(sqlite_url)
    holder = sqlite3.connect(tmp_path / "test.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock for about 1.5 s
    releaser = threading.Timer(1.5, holder.rollback)
    attempts = []

    @task(**{**IO_OPTIONS, "retry_delay_seconds": 0.5})
    def store(frame) -> None:
        attempts.append(time.monotonic())
        with unit_of_work(engine) as session:
            upsert_prices(frame, session=session, ticker="NVDA", source="sample")

    import pandas as pd

    index = pd.DatetimeIndex(["2024-01-02", "2024-01-03"], name="date").as_unit("ns")
    frame = pd.DataFrame(
        {column: [1.0, 2.0] for column in ("open", "high", "low", "close", "adj_close")}
        | {"volume": [10.0, 20.0]},
        index=index,
    )
    releaser.start()
    try:
        store(frame)
    finally:
        releaser.join()
        holder.close()
    assert len(attempts) >= 2  # the first attempt met the lock, a retry got through
    with unit_of_work(engine) as session:
        assert str(latest_price_date(session=session, ticker="NVDA")) == "2024-01-03"


class _StuckServer:
    """A temporary API server that never answers (a machine too busy to start it)."""

    def __init__(self) -> None:
        self.starts = self.stops = 0

    def start(self) -> None:
        self.starts += 1
        raise RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server.")

    def stop(self) -> None:
        self.stops += 1


def test_the_temporary_api_is_tried_twice_then_one_line(monkeypatch):
    server = _StuckServer()
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setattr(api, "_temporary_server", lambda: server)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    imports = []
    with temporary_settings({PREFECT_API_URL: None}), pytest.raises(api.PrefectApiError) as raised:
        api.ensure_api(meanwhile=lambda: imports.append("tensorflow"))
    assert (server.starts, server.stops) == (2, 2)
    assert imports == ["tensorflow"]  # once, not again for the second attempt
    assert "did not start within" in str(raised.value) and "\n" not in str(raised.value)


class _BootingServer:
    """A temporary API server whose process starts at once and answers after a while."""

    def __init__(self) -> None:
        self.server_process = None
        self.answering = threading.Event()

    def start(self) -> None:
        self.server_process = object()
        if not self.answering.wait(timeout=10):
            raise RuntimeError("never answered")


def test_tensorflow_loads_while_the_temporary_api_boots(monkeypatch):
    server = _BootingServer()
    monkeypatch.setattr(api, "_temporary_server", lambda: server)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    seen = []

    def load_tensorflow() -> None:
        # The server's process exists (it keeps our stderr), and it has not answered yet.
        seen.append((server.server_process is not None, server.answering.is_set()))
        server.answering.set()

    with temporary_settings({PREFECT_API_URL: None}):
        api.ensure_api(meanwhile=load_tensorflow)
    assert seen == [(True, False)]
    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:4200/api"}):
        api.ensure_api(meanwhile=load_tensorflow)  # a configured server: just the import
    assert len(seen) == 2


def test_the_temporary_api_settings_are_ours_unless_chosen(monkeypatch):
    batch = "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"
    for name in api.TEMPORARY_API_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    api.configure_temporary_api()
    assert os.environ[api.STARTUP_TIMEOUT_SETTING] == str(api.STARTUP_TIMEOUT_S)
    assert os.environ[batch] == "100"
    monkeypatch.setenv(api.STARTUP_TIMEOUT_SETTING, "300")
    monkeypatch.setenv(batch, "1")
    api.configure_temporary_api()
    assert os.environ[api.STARTUP_TIMEOUT_SETTING] == "300"
    assert os.environ[batch] == "1"
    # Prefect reads the name: a typo would be ignored without a word.
    from prefect.settings import Settings

    assert Settings().server.services.task_run_recorder.batch_size == 1


@pytest.mark.parametrize("content", [None, b"", b"\n\n"])
def test_a_missing_or_empty_source_file_fails_before_prefect_and_tensorflow_load(tmp_path, content):
    path = tmp_path / "prices.csv"
    if content is not None:
        path.write_bytes(content)
    probe = (
        "import sys\n"
        "from flows.presentation.cli import main\n"
        f"code = main(['run', '--source', 'csv:{path}'])\n"
        "print(code, 'tensorflow' in sys.modules, 'prefect' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=_clean_environment(tmp_path),
        timeout=120,
    )
    assert done.stdout == "1 False False\n"
    problem = "does not exist" if content is None else "the file is empty"
    assert done.stderr.count("\n") == 1 and problem in done.stderr, done.stderr


def test_an_unexpected_error_is_one_line_and_the_traceback_is_one_flag_away(monkeypatch, capsys):
    # -v sets TensorFlow's log level for the process: give it back after the test.
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")

    def broken(_args):
        raise RuntimeError("a bug\nwith a second line")

    monkeypatch.setitem(COMMANDS, "history", broken)
    assert main(["history"]) == 1
    err = capsys.readouterr().err
    assert err == "error: RuntimeError: a bug (rerun with -v for the traceback)\n"
    with pytest.raises(RuntimeError):
        main(["-v", "history"])


@pytest.mark.slow
def test_a_temporary_api_that_never_starts_is_one_line_in_a_real_process(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "flows.presentation.cli", "run", "--source", "sample"],
        capture_output=True,
        text=True,
        # 0 s: Prefect gives up at once, twice: the retry and the message, without the wait.
        env=_clean_environment(tmp_path, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="0"),
        timeout=300,
    )
    assert done.returncode == 1
    assert done.stderr == (
        "error: Prefect's temporary API did not start within 0 s (2 attempts); the machine is "
        "busy: rerun, raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or run `prefect "
        "server start` and set PREFECT_API_URL\n"
    )


@pytest.mark.slow
def test_a_read_only_database_fails_the_run_with_one_line(flow_settings, tmp_path, capsys):
    if not flow_settings.startswith("sqlite"):
        pytest.skip("the read-only PostgreSQL case is tests/db/test_db_errors.py's")
    upgrade(flow_settings)
    os.environ["DATABASE_URL"] = f"sqlite:///file:{tmp_path / 'test.db'}?mode=ro&uri=true"
    from flows.settings import get_settings

    get_settings.cache_clear()
    assert main(["run", "--source", "sample", "--as-of", "2004-12-31"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: database sqlite:///file") and "\n" not in err
    assert "is read-only (attempt to write a readonly database)" in err


@pytest.mark.slow
def test_a_full_artifact_volume_fails_the_run_with_one_line(flow_settings, tiny_volume, capsys):
    os.environ["NVDA_FORECAST_ARTIFACT_ROOT"] = str(tiny_volume)
    from flows.settings import get_settings

    get_settings.cache_clear()
    assert main(["run", "--source", "sample", "--as-of", "2004-12-31", "--mode", "retrain"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: no space left to write the model under {tiny_volume}")
    assert "\n" not in err
    assert not list(tiny_volume.rglob("*.partial")), "a partial model file was left behind"
