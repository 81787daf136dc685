"""A read-only, full or locked database is one line that says what to do, with no SQL in it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError, OperationalError

import db.engine
from db.engine import database_error, get_engine, mask_url, normalize_url, unit_of_work
from db.errors import (
    DatabaseBusyError,
    DatabaseFullError,
    DatabaseReadOnlyError,
    DatabaseUnavailableError,
    SchemaOutdatedError,
)
from db.migrate import head_revision, upgrade
from db.repository import list_alerts, read_forecast_accuracy, upsert_prices


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and "[SQL" not in text and "[parameters" not in text, text
    return text


def _read_only_url(database_url: str, tmp_path: Path) -> str:
    """The same database, opened the way a read-only volume or replica would refuse writes."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///file:{tmp_path / 'test.db'}?mode=ro&uri=true"
    return f"{database_url}?options=-c%20default_transaction_read_only%3Don"


def test_a_read_only_database_is_one_line(database_url, tmp_path, make_prices):
    upgrade(database_url)
    url = _read_only_url(database_url, tmp_path)
    engine = get_engine(url)
    with pytest.raises(DatabaseReadOnlyError) as raised, unit_of_work(engine) as session:
        upsert_prices(make_prices(3), session=session, ticker="NVDA", source="sample")
    message = _one_line(raised.value)
    assert "is read-only" in message and "point DATABASE_URL at a writable database" in message
    # The driver's error stays attached for the run's logs.
    assert isinstance(raised.value.__cause__, DBAPIError)


def test_a_full_sqlite_database_is_one_line(sqlite_url, make_prices):
    upgrade(sqlite_url)
    engine = get_engine(sqlite_url)
    engine.dispose()

    @event.listens_for(engine, "connect")
    def _tiny(dbapi_connection, _record):
        # SQLite's own "database or disk is full" (SQLITE_FULL), without filling a disk.
        dbapi_connection.execute("PRAGMA max_page_count = 1")

    with pytest.raises(DatabaseFullError) as raised, unit_of_work(engine) as session:
        upsert_prices(make_prices(500), session=session, ticker="NVDA", source="sample")
    assert _one_line(raised.value).endswith("is full (database or disk is full); "
                                            "free space on its volume, then rerun")  # fmt: skip


def test_postgres_disk_full_and_lock_timeout_are_recognised():
    url = normalize_url("postgresql://forecaster:s3cret@db:5432/prod")
    full = OperationalError("INSERT ...", {}, psycopg.errors.DiskFull("could not extend file"))
    busy = OperationalError("UPDATE ...", {}, psycopg.errors.LockNotAvailable("lock timeout"))
    other = OperationalError("SELECT 1", {}, psycopg.errors.SyntaxError("syntax error"))
    assert isinstance(database_error(full, url), DatabaseFullError)
    assert isinstance(database_error(busy, url), DatabaseBusyError)
    assert database_error(other, url) is None
    assert "s3cret" not in str(database_error(full, url))


def test_sqlite_locked_past_the_busy_timeout_is_a_retryable_one_line_error(
    sqlite_url, tmp_path, make_prices, monkeypatch
):
    monkeypatch.setattr(db.engine, "SQLITE_BUSY_TIMEOUT_MS", 200)
    upgrade(sqlite_url)
    engine = get_engine(sqlite_url)
    holder = sqlite3.connect(tmp_path / "test.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, for longer than we wait
    try:
        with pytest.raises(DatabaseBusyError) as raised, unit_of_work(engine) as session:
            upsert_prices(make_prices(3), session=session, ticker="NVDA", source="sample")
    finally:
        holder.rollback()
        holder.close()
    assert "stayed locked by another process for 0.2 s" in _one_line(raised.value)
    # Busy is "unavailable": the flow's I/O tasks retry it (tests/flows/test_errors.py).
    assert isinstance(raised.value, DatabaseUnavailableError)


@pytest.mark.parametrize(
    "read",
    [
        lambda session: read_forecast_accuracy(session=session, ticker="NVDA", limit=5),
        lambda session: list_alerts(session=session, include_resolved=True),
    ],
    ids=["history", "alerts"],
)
def test_reading_a_database_behind_the_code_says_run_db_upgrade(database_url, read):
    upgrade(database_url, "0002")
    engine = get_engine(database_url)
    with pytest.raises(SchemaOutdatedError) as raised, unit_of_work(engine) as session:
        read(session)
    message = _one_line(raised.value)
    assert message == (
        f"database at {mask_url(engine.url)} is at schema revision 0002, this version of "
        f"nvda-forecast needs {head_revision()}; run `nvda-forecast db upgrade`"
    )


def test_a_missing_table_at_the_head_revision_is_left_as_it_is(database_url):
    upgrade(database_url)
    engine = get_engine(database_url)
    with pytest.raises(DBAPIError), unit_of_work(engine) as session:
        session.execute(text("SELECT * FROM no_such_table"))
