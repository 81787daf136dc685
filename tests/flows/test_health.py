"""The image's HEALTHCHECK: a served runner that stops polling is unhealthy; a job is not probed."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from flows.health import check, is_serving


def _cmdline(tmp_path, *arguments: str):
    path = tmp_path / "cmdline"
    path.write_bytes(b"\0".join(argument.encode() for argument in arguments) + b"\0")
    return path


@pytest.fixture
def runner(monkeypatch):
    """A stand-in for the runner's web server; ``status`` is what /health answers."""

    class Health(BaseHTTPRequestHandler):
        status = 200

        def do_GET(self) -> None:
            self.send_response(Health.status if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PREFECT_RUNNER_SERVER_HOST", "127.0.0.1")
    monkeypatch.setenv("PREFECT_RUNNER_SERVER_PORT", str(server.server_address[1]))
    yield Health
    server.shutdown()
    server.server_close()


def test_only_the_serve_command_is_probed(tmp_path):
    assert is_serving(
        _cmdline(tmp_path, "/usr/local/bin/python", "/usr/local/bin/nvda-forecast", "serve")
    )
    assert not is_serving(_cmdline(tmp_path, "prefect", "flow-run", "execute"))
    assert not is_serving(tmp_path / "missing")
    # A worker's flow-run container: healthy without a runner to ask.
    assert check(_cmdline(tmp_path, "prefect", "flow-run", "execute")) is None


def test_a_serving_container_is_as_healthy_as_its_runner(tmp_path, runner, monkeypatch):
    serving = _cmdline(tmp_path, "/usr/local/bin/nvda-forecast", "serve")
    assert check(serving) is None
    runner.status = 503
    assert "answered 503: it has stopped polling the Prefect API" in check(serving)
    monkeypatch.setenv("PREFECT_RUNNER_SERVER_PORT", "1")
    assert "does not answer" in check(serving)
