"""No secret reaches anything a user can see: terminal, -v output, Prefect logs, artifacts, events.

Two secrets are set for real runs of the command line against the test Prefect API: a database
password (PostgreSQL trusts local connections, so any password works) and a webhook URL whose path
and query carry a token (the receiver answers 404, so the failure is logged). Then everything a
user can read is searched for them.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("S3CRETPW", "SECRETTOKEN", "SECRETSIG")


class _NotFound(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/services/T000/SECRETTOKEN?sig=SECRETSIG"
    server.shutdown()
    server.server_close()


def _run(*arguments: str, environment: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows.presentation.cli", *arguments],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _prefect_records(since: dt.datetime) -> list[str]:
    """Logs, artifacts, events and flow runs, as the UI would show them."""
    from prefect import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterTimestamp
    from prefect.events.filters import EventFilter, EventOccurredFilter

    records: list[str] = []
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            page = client.read_logs(
                log_filter=LogFilter(timestamp=LogFilterTimestamp(after_=since)),
                limit=200,
                offset=offset,
            )
            records += [log.message for log in page]
            if len(page) < 200:
                break
            offset += 200
        artifacts = client.read_artifacts()
        records += [artifact.model_dump_json() for artifact in artifacts]
        page = client.read_events(
            filter=EventFilter(occurred=EventOccurredFilter(since=since)), limit=50
        )
        while True:
            records += [event.model_dump_json() for event in page.events]
            if not page.next_page:
                break
            page = client.read_events_page(page.next_page)
        records += [run.model_dump_json() for run in client.read_flow_runs()]
    return records


def _prefect_database_bytes() -> bytes:
    """The test server's SQLite files, byte for byte (what a backup or a query would see)."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    url = PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
    assert url.startswith("sqlite+aiosqlite:///"), url
    database = Path(url.removeprefix("sqlite+aiosqlite:///"))
    files = [database, database.with_name(database.name + "-wal")]
    return b"".join(path.read_bytes() for path in files if path.exists())


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_secrets_never_reach_the_terminal_the_logs_artifacts_or_events(
    flow_settings, webhook, tmp_path
):
    from prefect.settings import PREFECT_API_URL

    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    secret_url = flow_settings.replace("://postgres@", "://postgres:S3CRETPW@")
    assert "S3CRETPW" in secret_url
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TF_"))}
    environment.update(
        PREFECT_API_URL=PREFECT_API_URL.value(),
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PYTHONPATH=str(ROOT),
        DATABASE_URL=secret_url,
        NVDA_FORECAST_ALERT_WEBHOOK_URL=webhook,
    )
    # -v: every log line in the terminal; the alerts it opens are posted (and refused).
    verbose = _run("-v", "run", "--source", "sample", "--as-of", "2004-12-31",
                   environment=environment)  # fmt: skip
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert "not delivered to the webhook http://127.0.0.1:" in verbose.stderr
    assert "postgres:***@" in verbose.stdout
    # A run that fails on the database: the one error line names it, masked.
    environment["DATABASE_URL"] = secret_url.rsplit("/", 1)[0] + "/no_such_database"
    failed = _run("run", "--source", "sample", environment=environment)
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: cannot connect to postgresql+psycopg://postgres:***@")

    seen = {
        "stdout": verbose.stdout + failed.stdout,
        "stderr": verbose.stderr + failed.stderr,
        "the Prefect API": "\n".join(_prefect_records(since)),
        "the Prefect database": _prefect_database_bytes().decode("latin-1"),
    }
    for where, text in seen.items():
        leaked = [secret for secret in SECRETS if secret in text]
        assert not leaked, f"{leaked} in {where}"
    # The webhook failure did reach the run's logs, masked.
    assert "not delivered to the webhook http://127.0.0.1:" in seen["the Prefect API"]
