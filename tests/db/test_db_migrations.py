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


def test_0003_keeps_the_newest_of_duplicate_forecasts_and_downgrades_cleanly(
    database_url: str, bare_engine: Engine
) -> None:
    # A database of the first release, where a retrain and a fine-tune rerun of the same day
    # each left a forecast row (the unique key included the model version).
    upgrade(database_url, "0002")
    version = (
        "INSERT INTO model_versions (id, ticker, created_at, kind, as_of_date, hyperparameters,"
        " feature_config, config_hash, train_start, train_end, status) VALUES"
        " ({id}, 'NVDA', '2025-01-02 00:00:00', '{kind}', '2025-01-02', '{{}}', '{{}}', 'h',"
        " '2020-01-02', '2024-06-03', '{status}')"
    )
    forecast = (
        "INSERT INTO predictions (id, ticker, model_version_id, as_of_date, target_date, horizon,"
        " kind, base_close, predicted_close, created_at) VALUES"
        " ({id}, 'NVDA', {model}, '2025-01-02', '2025-01-03', 1, 'forecast', 120.0, {close},"
        " '2025-01-02 00:00:00')"
    )
    with bare_engine.begin() as connection:
        connection.execute(text(version.format(id=1, kind="retrain", status="retired")))
        connection.execute(text(version.format(id=2, kind="finetune", status="champion")))
        connection.execute(text(forecast.format(id=1, model=1, close=120.13)))
        connection.execute(text(forecast.format(id=2, model=2, close=120.21)))

    upgrade(database_url)

    with bare_engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, method, predicted_close FROM predictions ORDER BY id")
        ).all()
        viewed = connection.execute(text("SELECT method FROM forecast_accuracy")).all()
    assert [tuple(row) for row in rows] == [(2, "lstm", 120.21)]
    assert [tuple(row) for row in viewed] == [("lstm",)]
    # One served forecast per day is now the schema's rule, not only the code's.
    with pytest.raises(Exception, match=r"(?i)unique"), bare_engine.begin() as connection:
        connection.execute(text(forecast.format(id=3, model=1, close=119.0)))

    downgrade(database_url, "0002")
    with bare_engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM predictions")).scalar() == 1
