"""Schema migrations: upgrade, downgrade, and the check the flow runs before touching data."""

from __future__ import annotations

import re

from alembic import command
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, inspect

from db.engine import get_engine, mask_url, translated_errors
from db.errors import MigrationTargetError, SchemaMismatchError
from db.schema_revision import (
    alembic_config,
    from_newer_release,
    head_revision,
    is_known,
    outdated,
    revision_of,
)

VERSION_TABLE = "alembic_version"
_PLAIN_REVISION = re.compile(r"[0-9A-Za-z_]+")
"""A revision id as `db upgrade` takes it (not ``+1`` or ``branch@head``)."""


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None when it was never migrated."""
    with translated_errors(engine.url), engine.connect() as connection:
        return revision_of(connection)


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision``.

    Raises
    ------
    MigrationTargetError
        ``revision`` is unknown, or the database is already past it (nothing is changed: an
        upgrade never downgrades).
    SchemaMismatchError
        The database is at a revision this version does not know (a newer release's).
    """
    engine = get_engine(url)
    _check_upgrade(engine, revision)
    _run(engine, "upgrade", revision)


def _check_upgrade(engine: Engine, revision: str) -> None:
    """Refuse, in one line, an upgrade Alembic would fail on or silently not do."""
    scripts = ScriptDirectory.from_config(alembic_config())
    where = mask_url(engine.url)
    current = current_revision(engine)
    if current is not None and not is_known(current):
        raise from_newer_release(where, current, head_revision())
    if revision in ("head", "heads") or not _PLAIN_REVISION.fullmatch(revision):
        return  # Alembic's own forms (+1, branch@head) are left to it
    try:
        target = scripts.get_revision(revision)
    except CommandError:
        target = None
    if target is None:
        known = [script.revision for script in scripts.walk_revisions()][::-1]
        raise MigrationTargetError(
            f"no migration {revision} in this version of nvda-forecast (it knows "
            f"{', '.join(known)}); run `nvda-forecast db upgrade` for the newest"
        )
    if current is None or target.revision == current:
        return
    behind = {script.revision for script in scripts.iterate_revisions(current, "base")}
    if target.revision in behind:
        raise MigrationTargetError(
            f"database at {where} is already at revision {current}, past {target.revision}; "
            "nothing was changed (an upgrade never downgrades)"
        )


def downgrade(url: str, revision: str = "-1") -> None:
    """Migrate the database at ``url`` down to ``revision``."""
    _run(get_engine(url), "downgrade", revision)


def ensure_schema(engine: Engine) -> str:
    """Upgrade an empty database; fail clearly on one that is behind, ahead or foreign.

    Returns the revision the database is at afterwards.
    """
    head = head_revision()
    current = current_revision(engine)
    if current == head:
        return head
    where = mask_url(engine.url)
    if current is None:
        tables = sorted(set(inspect(engine).get_table_names()) - {VERSION_TABLE})
        if tables:
            raise SchemaMismatchError(
                f"database at {where} has tables ({', '.join(tables[:5])}) but no migration "
                "history; point DATABASE_URL at an empty database or one nvda-forecast created"
            )
        _run(engine, "upgrade", head)
        return head
    if is_known(current):
        raise outdated(where, current, head)
    raise from_newer_release(where, current, head)


def _run(engine: Engine, direction: str, revision: str) -> None:
    config = alembic_config()
    # One transaction for the whole migration: PostgreSQL and (with our BEGIN) SQLite both
    # roll back DDL, so a failed upgrade leaves the previous schema intact.
    with translated_errors(engine.url), engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite changes a table by copy, drop and rename ("batch" mode): dropping a table
            # that others refer to fails with foreign keys on. They are off for the migration
            # (the pragma is a no-op inside a transaction) and checked before it commits.
            _sqlite_pragma(connection, "foreign_keys = OFF")
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                if direction == "upgrade":
                    command.upgrade(config, revision)
                else:
                    command.downgrade(config, revision)
                if sqlite:
                    _check_foreign_keys(connection)
        finally:
            if sqlite:
                _sqlite_pragma(connection, "foreign_keys = ON")


def _sqlite_pragma(connection: Connection, pragma: str) -> None:
    """Run a pragma on the driver's connection, outside any transaction SQLAlchemy began."""
    connection.connection.driver_connection.execute(f"PRAGMA {pragma}")


def _check_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        table, rowid, parent, _ = broken[0]
        raise SchemaMismatchError(
            f"the migration left {len(broken)} rows pointing at missing rows (first: {table} "
            f"row {rowid} -> {parent}); nothing was changed. Report this as a bug"
        )
