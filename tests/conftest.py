"""Shared fixtures: isolated settings per test, and a database on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

from forecasting.tensorflow_env import set_tensorflow_defaults

# Before anything imports TensorFlow: keep its C++ start-up chatter out of test output.
set_tensorflow_defaults()

import pytest  # noqa: E402

from flows.settings import get_settings  # noqa: E402

POSTGRES_ADMIN_DSN = os.environ.get(
    "NVDA_FORECAST_TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch) -> Iterator[None]:
    """Point every test at its own data folder so nothing touches the user's files; whatever
    the test put in the environment ends with it (the CLI, run in this process, sets defaults
    for Prefect and its temporary API there)."""
    saved = dict(os.environ)
    monkeypatch.setenv("NVDA_FORECAST_DATA_DIR", str(tmp_path / "nvda-forecast"))
    for name in ("DATABASE_URL", "NVDA_FORECAST_DATABASE_URL", "NVDA_FORECAST_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    os.environ.clear()
    os.environ.update(saved)


def _postgres_unavailable(reason: str) -> None:
    message = f"PostgreSQL at {POSTGRES_ADMIN_DSN!r} is not reachable ({reason})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}; under CI the PostgreSQL tests must run, not skip")
    pytest.skip(f"{message}; start it (see DEVELOPERS.md) to run the PostgreSQL tests")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"nvf_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        _postgres_unavailable(str(error).strip().splitlines()[0])
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    params = psycopg.conninfo.conninfo_to_dict(POSTGRES_ADMIN_DSN)
    host, port, user = params.get("host"), params.get("port", 5432), params.get("user")
    try:
        yield f"postgresql+psycopg://{user}@{host}:{port}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """A SQLite file in the test's own folder."""
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request) -> str:
    """The same test once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return request.getfixturevalue(fixture)
