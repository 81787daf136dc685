"""Alembic is the only way the schema is made: upgrade, downgrade, agreement with the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

import db.migrate
from db.engine import get_engine
from db.errors import SchemaMismatchError, SchemaOutdatedError
from db.migrate import current_revision, downgrade, ensure_schema, head_revision, upgrade
from db.models import Base

TABLES = {
    "prices",
    "ingestions",
    "model_versions",
    "evaluations",
    "predictions",
    "drift_reports",
    "alerts",
}


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _views(engine: Engine) -> set[str]:
    return set(inspect(engine).get_view_names())


def test_upgrade_from_empty_creates_every_table_and_the_view(
    database_url: str, bare_engine: Engine
) -> None:
    upgrade(database_url)
    assert current_revision(bare_engine) == head_revision()
    assert _tables(bare_engine) == TABLES
    assert _views(bare_engine) == {"forecast_accuracy"}


def test_downgrade_removes_everything_and_upgrade_restores_it(database_url: str) -> None:
    upgrade(database_url)
    engine = get_engine(database_url)
    downgrade(database_url, "base")
    assert current_revision(engine) is None
    assert _tables(engine) == set()
    assert _views(engine) == set()
    upgrade(database_url)
    assert _tables(engine) == TABLES
    assert current_revision(engine) == head_revision()


def test_upgrade_without_url_uses_settings(sqlite_url: str, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    upgrade()
    assert _tables(get_engine(sqlite_url)) == TABLES


def test_models_and_migrated_schema_agree(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_comparison_would_notice_a_missing_index(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_evaluations_ticker_as_of_date"))
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert [difference[0] for difference in differences] == ["add_index"]


def test_ensure_schema_upgrades_an_empty_database(bare_engine: Engine) -> None:
    assert ensure_schema(bare_engine) == head_revision()
    assert _tables(bare_engine) == TABLES


def test_ensure_schema_leaves_a_current_database_alone(engine: Engine) -> None:
    assert ensure_schema(engine) == head_revision()
    assert ensure_schema(engine) == head_revision()


def test_ensure_schema_refuses_a_database_that_is_behind(engine: Engine, monkeypatch) -> None:
    # Pretend the code has moved on to a revision 9999 the database has not seen yet.
    stored = head_revision()
    monkeypatch.setattr(db.migrate, "head_revision", lambda: "9999")
    with pytest.raises(SchemaOutdatedError) as raised:
        ensure_schema(engine)
    message = str(raised.value)
    assert f"is at revision {stored}, the code needs 9999" in message
    assert "nvda-forecast db upgrade" in message


def test_ensure_schema_refuses_a_database_from_a_newer_release(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'fffffff'"))
    with pytest.raises(SchemaMismatchError, match="does not know"):
        ensure_schema(engine)


def test_ensure_schema_refuses_tables_without_history(bare_engine: Engine) -> None:
    with bare_engine.begin() as connection:
        connection.execute(text("CREATE TABLE somebody_elses (id INTEGER)"))
    with pytest.raises(SchemaMismatchError, match="no migration history"):
        ensure_schema(bare_engine)
