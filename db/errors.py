"""Errors of the SQL store a user can act on (one line each, password masked)."""

from __future__ import annotations


class DatabaseError(Exception):
    """Base class: the database is unusable as configured. (Like ``forecasting.errors``'
    ``NvdaForecastError``, a problem to act on, not a bug: the flows report both in one line.)"""


class DatabaseUnavailableError(DatabaseError):
    """The database cannot be reached or opened; check DATABASE_URL and the server."""


class DatabaseBusyError(DatabaseUnavailableError):
    """Another process held a lock longer than the wait allows; retrying later helps."""


class DatabaseReadOnlyError(DatabaseError):
    """The database refuses writes (file permissions, read-only volume or replica)."""


class DatabaseFullError(DatabaseError):
    """The database's volume or quota is full; free space, then rerun."""


class SchemaOutdatedError(DatabaseError):
    """The database schema is older than the code; run ``nvda-forecast db upgrade``."""


class SchemaMismatchError(DatabaseError):
    """The database schema is newer than the code, or was not created by our migrations."""


class MigrationTargetError(DatabaseError):
    """``db upgrade`` was asked for a revision it cannot reach: unknown, or one the database
    is already past (an upgrade never downgrades)."""
