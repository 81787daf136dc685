"""Flow tests: one Prefect test server for the session, tiny training, a fresh store per test."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from db.engine import dispose_engines

# Small enough that a retrain on a few thousand windows takes about a second on one core.
TINY_TRAINING = {
    "NVDA_FORECAST_TRAINING__LAYERS": "1",
    "NVDA_FORECAST_TRAINING__UNITS": "4",
    "NVDA_FORECAST_TRAINING__MAX_EPOCHS": "2",
    "NVDA_FORECAST_TRAINING__PATIENCE": "1",
    "NVDA_FORECAST_TRAINING__FINETUNE_EPOCHS": "1",
    "NVDA_FORECAST_TRAINING__BATCH_SIZE": "256",
}


@pytest.fixture
def tiny_training() -> dict[str, str]:
    """The tiny model's settings, for a test that starts a real command in a subprocess."""
    return dict(TINY_TRAINING)


@pytest.fixture(params=["sqlite"])
def database_url(request) -> str:
    """Flow tests run on SQLite: the store's own tests (tests/db) cover both databases, and a
    flow test that must see PostgreSQL says so with
    ``@pytest.mark.parametrize("database_url", [...], indirect=True)``."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return request.getfixturevalue(fixture)


@pytest.fixture(scope="session")
def prefect_server():
    """A temporary Prefect API for the whole session (STYLE: the harness once per session)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def flow_settings(monkeypatch, database_url, tmp_path, prefect_server) -> str:
    """Point the flow at a fresh database and artifact folder; return the database URL."""
    from flows.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("NVDA_FORECAST_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    for name, value in TINY_TRAINING.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield database_url
    dispose_engines()


def yahoo_export(frame: pd.DataFrame, path: Path) -> str:
    """Write bars in the website export's layout (``Date,Open,High,Low,Close,Adj Close,Volume``)
    and return the ``csv:`` source that reads them."""
    columns = {"open": "Open", "high": "High", "low": "Low", "close": "Close"}
    columns |= {"adj_close": "Adj Close", "volume": "Volume"}
    frame.rename(columns=columns).rename_axis("Date").to_csv(path)
    return f"csv:{path}"


@pytest.fixture
def write_yahoo_export():
    """:func:`yahoo_export`, for tests that feed the flow a file."""
    return yahoo_export


@pytest.fixture
def inject_findings(monkeypatch):
    """``inject_findings(findings)``: the checks of every run in this test find exactly these
    (the run's own serving and champion findings are still added), instead of whatever drift
    the sample's prices happen to show on the test's days."""

    def inject(findings):
        monkeypatch.setattr("flows.pipeline.watch", lambda *_, **__: list(findings))

    return inject
