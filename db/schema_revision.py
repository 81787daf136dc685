"""The schema revision a database is at and the one this code needs, and the one-line errors
for a database behind or ahead of it. No engines here: ``db.engine`` (reads that fail on a
missing table or column) and ``db.migrate`` (the check before a run) both use it."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from db.errors import SchemaMismatchError, SchemaOutdatedError

_PACKAGE = Path(__file__).resolve().parent


def alembic_config() -> Config:
    """The Alembic configuration shipped inside the package (works from a wheel too)."""
    config = Config(str(_PACKAGE / "alembic.ini"))
    config.set_main_option("script_location", str(_PACKAGE / "migrations"))
    return config


def head_revision() -> str:
    """The revision the code expects."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found in db/migrations/versions")
    return head


def is_known(revision: str) -> bool:
    """Whether ``revision`` is one of this version's migrations."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return any(script.revision == revision for script in scripts.walk_revisions())


def revision_of(connection: Connection) -> str | None:
    """The revision the database is at; None when it was never migrated."""
    return MigrationContext.configure(connection).get_current_revision()


def outdated(where: str, current: str | None, head: str) -> SchemaOutdatedError:
    """The error for a database behind the code (``current`` None: never migrated)."""
    if current is None:
        return SchemaOutdatedError(
            f"database at {where} has no nvda-forecast schema yet; "
            "run `nvda-forecast db upgrade` (or `nvda-forecast run`, which creates it)"
        )
    return SchemaOutdatedError(
        f"database at {where} is at schema revision {current}, this version of nvda-forecast "
        f"needs {head}; run `nvda-forecast db upgrade`"
    )


def from_newer_release(where: str, current: str, head: str) -> SchemaMismatchError:
    """The error for a database a newer release migrated past anything this code knows."""
    return SchemaMismatchError(
        f"database at {where} is at schema revision {current}, which this version of "
        f"nvda-forecast does not know (it needs {head}); a newer release migrated it: "
        "upgrade nvda-forecast"
    )
