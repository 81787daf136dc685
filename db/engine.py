"""Engines and units of work: one engine per process per URL, built from settings."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Engine and Session are part of this module's API: flows/ annotates with them without
# importing sqlalchemy itself (only db/ does; see ARCHITECTURE.md).
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session

from db.errors import (
    DatabaseBusyError,
    DatabaseError,
    DatabaseFullError,
    DatabaseReadOnlyError,
    DatabaseUnavailableError,
)
from db.schema_revision import from_newer_release, head_revision, is_known, outdated, revision_of

SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_CONNECT_TIMEOUT_S = 10

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def normalize_url(url: str | URL) -> URL:
    """Parse ``url``; plain ``postgresql://`` and ``postgres://`` mean psycopg 3."""
    text = str(url) if isinstance(url, URL) else url
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    try:
        parsed = make_url(text)
    except ArgumentError as error:
        raise DatabaseUnavailableError(
            f"DATABASE_URL is not a valid SQLAlchemy URL ({error}); "
            "expected e.g. sqlite:///path/to.db or postgresql://user:pass@host:5432/name"
        ) from None
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def mask_url(url: str | URL) -> str:
    """The URL as text with its password replaced by ``***``, safe to print."""
    parsed = url if isinstance(url, URL) else make_url(url)
    return parsed.render_as_string(hide_password=True)


def get_engine(url: str) -> Engine:
    """The process-wide engine for ``url``, checked to be reachable."""
    parsed = normalize_url(url)
    key = parsed.render_as_string(hide_password=False)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _create_engine(parsed)
            check_connection(engine)
            _engines[key] = engine
    return engine


def dispose_engines() -> None:
    """Close every cached engine's connections and forget them (tests, forked workers)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def check_connection(engine: Engine) -> None:
    """Open one connection, or raise a one-line `DatabaseUnavailableError`."""
    try:
        with engine.connect():
            pass
    except DBAPIError as error:
        translated = database_error(error, engine.url)
        if translated is not None:
            raise translated from None
        reason = _reason(error, engine.url)
        raise DatabaseUnavailableError(
            f"cannot connect to {mask_url(engine.url)} ({reason}); "
            "check DATABASE_URL and that the server is running"
        ) from None


@contextmanager
def unit_of_work(engine: Engine | None = None) -> Iterator[Session]:
    """One transaction: commits when the block ends, rolls everything back on an exception."""
    engine = engine or get_engine()
    # expire_on_commit=False: rows returned by repository functions stay readable afterwards.
    with (
        translated_errors(engine.url, engine=engine),
        Session(engine, expire_on_commit=False) as session,
        session.begin(),
    ):
        yield session


# SQLite's primary result codes (the low byte of ``sqlite3.Error.sqlite_errorcode``).
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_FULL = 5, 6, 8, 13
# PostgreSQL SQLSTATEs: read_only_sql_transaction; disk_full, out_of_memory; lock_not_available.
_PG_READ_ONLY = {"25006"}
_PG_FULL = {"53100", "53200"}
_PG_BUSY = {"55P03"}
# undefined_table, undefined_column: a query of a newer schema than the database's.
_PG_UNDEFINED = {"42P01", "42703"}


@contextmanager
def translated_errors(url: URL, *, engine: Engine | None = None) -> Iterator[None]:
    """Turn the driver errors a user can act on into one-line `DatabaseError`s.

    With ``engine``, a table or column the query needs but the database lacks is looked into:
    on a schema behind the code it becomes "run `nvda-forecast db upgrade`". The original error
    stays chained (``__cause__``) for the run's logs; the message has no SQL, no parameters and
    no password.
    """
    try:
        yield
    except DBAPIError as error:
        translated = database_error(error, url)
        if translated is None and engine is not None and _undefined_object(error):
            translated = schema_error(engine)
        if translated is None:
            raise
        raise translated from error


def schema_error(engine: Engine) -> DatabaseError | None:
    """Why a query can miss a table or column: the schema is behind (or ahead of) the code's.

    None when the database is at the code's revision (the table was dropped by hand, or the
    query is wrong: not something `db upgrade` mends) or its revision cannot be read.
    """
    try:
        with engine.connect() as connection:
            current = revision_of(connection)
    except DBAPIError:
        return None
    head = head_revision()
    if current == head:
        return None
    where = mask_url(engine.url)
    if current is not None and not is_known(current):
        return from_newer_release(where, current, head)
    return outdated(where, current, head)


def database_error(error: DBAPIError, url: URL) -> DatabaseError | None:
    """The one-line error for a read-only, full or locked database; None for anything else."""
    where = mask_url(url)
    reason = _reason(error, url)
    original = error.orig
    sqlite_code = getattr(original, "sqlite_errorcode", None)
    primary = sqlite_code & 0xFF if isinstance(sqlite_code, int) else None
    sqlstate = getattr(original, "sqlstate", None)
    if primary == _SQLITE_READONLY or sqlstate in _PG_READ_ONLY:
        fix = (
            "give the job write access to the file and its folder"
            if primary is not None
            else "connect to the primary server as a role that may write, not to a replica"
        )
        return DatabaseReadOnlyError(
            f"database {where} is read-only ({reason}); {fix}, or point DATABASE_URL at a "
            "writable database"
        )
    if primary == _SQLITE_FULL or sqlstate in _PG_FULL:
        return DatabaseFullError(
            f"database {where} is full ({reason}); free space on its volume, then rerun"
        )
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or sqlstate in _PG_BUSY:
        waited = f" for {SQLITE_BUSY_TIMEOUT_MS / 1000:g} s" if primary is not None else ""
        return DatabaseBusyError(
            f"database {where} stayed locked by another process{waited} ({reason}); another "
            "run or a long transaction holds it: let it finish, then rerun"
        )
    return None


def _undefined_object(error: DBAPIError) -> bool:
    """Whether the query named a table or column the database does not have."""
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate in _PG_UNDEFINED
    return str(error.orig).startswith(("no such table", "no such column"))


def _create_engine(url: URL) -> Engine:
    if url.get_backend_name() == "sqlite":
        return _create_sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
    # pre_ping: a daily job finds yesterday's pooled connections closed by the server.
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _create_sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
    if not in_memory and not database.startswith("file:"):
        try:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise DatabaseUnavailableError(
                f"cannot create the folder for {mask_url(url)} ({error.strerror}); "
                "check DATABASE_URL or NVDA_FORECAST_DATA_DIR"
            ) from None
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # sqlite3's own transaction handling skips BEGIN before DDL; we emit BEGIN ourselves
        # (below) so that migrations are atomic too.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if not in_memory:
            # WAL: readers (the CLI, a notebook) do not block the daily writer, nor it them.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: with several tickers on threads, a deferred
        # transaction that reads then writes can fail at once with "database is locked" (the
        # busy timeout does not apply to a stale read snapshot); this one waits its turn.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _reason(error: DBAPIError, url: URL) -> str:
    """The driver's message cut to its most specific clause, with no secret in it."""
    lines = [line.strip() for line in str(error.orig).splitlines() if line.strip()]
    first = lines[0] if lines else type(error.orig).__name__
    reason = first.rsplit(": ", 1)[-1].strip() or first
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return reason[:1].lower() + reason[1:]
