"""Alembic environment: compares with ``Base.metadata``.

``db.migrate`` passes an open connection in ``config.attributes["connection"]``; the Alembic
command line gets one from ``sqlalchemy.url`` when set, else from ``DATABASE_URL``.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, text

from db.engine import get_engine
from db.models import Base

# Any constant works; it only has to be the same in every process migrating this database.
_MIGRATION_LOCK_KEY = 741_852_963


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two runs starting on an empty database at once: the second waits, then finds
            # the schema at head and does nothing.
            connection.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})"))
        context.run_migrations()


def _run_online() -> None:
    config = context.config
    if config.cmd_opts is not None and config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = (
        config.get_main_option("sqlalchemy.url")
        or os.environ.get("DATABASE_URL")
        or os.environ.get("NVDA_FORECAST_DATABASE_URL")
    )
    if not url:
        raise SystemExit(
            "no database to migrate: set DATABASE_URL (or sqlalchemy.url in alembic.ini), or run "
            "`nvda-forecast db upgrade`, which migrates the database of the settings"
        )
    with get_engine(url).connect() as connection:
        _run(connection)
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
_run_online()
