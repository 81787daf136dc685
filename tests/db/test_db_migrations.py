"""Alembic is the only way the schema is made: upgrade, downgrade, agreement with the models."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, inspect, select, text

import db.migrate
from db.engine import get_engine, unit_of_work
from db.errors import MigrationTargetError, SchemaMismatchError, SchemaOutdatedError
from db.migrate import current_revision, downgrade, ensure_schema, head_revision, upgrade
from db.models import Base, ModelVersion, Run
from db.repository import add_model_version, clear_run, reject

TABLES = {
    "prices",
    "ingestions",
    "model_versions",
    "evaluations",
    "predictions",
    "drift_reports",
    "alerts",
    "runs",
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
    assert f"is at schema revision {stored}, this version of nvda-forecast needs 9999" in message
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

    upgrade(database_url, "0003")

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


# A database the previous release (revision 0003) wrote: see tests/db/data/README.md.
FIRST_WAVE = Path(__file__).parent / "data" / "first_wave_0003.json.gz"
_DATES = {"date", "as_of_date", "target_date", "train_start", "train_end", "last_seen_as_of"}
_DATES |= {"requested_start", "requested_end", "first_date", "last_date"}
_TIMES = {"ingested_at", "started_at", "finished_at", "created_at", "promoted_at", "retired_at"}
_TIMES |= {"opened_at", "last_seen_at", "resolved_at"}
_RUN_ROWS = ("model_versions", "evaluations", "predictions", "drift_reports")


def _load_first_wave(engine: Engine) -> dict[str, list[dict]]:
    """Insert the first-wave rows as they were; return them, by table."""
    dump = json.loads(gzip.decompress(FIRST_WAVE.read_bytes()))
    tables = MetaData()
    tables.reflect(bind=engine)
    aware = engine.dialect.name == "postgresql"
    loaded = {}
    with engine.begin() as connection:
        for name, content in dump.items():  # in dependency order
            rows = [dict(zip(content["columns"], row, strict=True)) for row in content["rows"]]
            for row in rows:
                for column, value in row.items():
                    if value is None:
                        continue
                    if column in _DATES:
                        row[column] = dt.date.fromisoformat(value)
                    elif column in _TIMES:
                        when = dt.datetime.fromisoformat(value)
                        row[column] = when.replace(tzinfo=dt.UTC) if aware else when
                    elif column in ("restated", "breached"):
                        row[column] = bool(value)
                    elif column in ("hyperparameters", "feature_config"):
                        row[column] = json.loads(value)
            connection.execute(tables.tables[name].insert(), rows)
            if aware and "id" in content["columns"]:
                sequence = f"pg_get_serial_sequence('{name}', 'id')"
                connection.execute(text(f"SELECT setval({sequence}, MAX(id)) FROM {name}"))
            loaded[name] = rows
    return loaded


def test_0004_gives_every_first_wave_row_its_run(database_url: str, bare_engine: Engine) -> None:
    upgrade(database_url, "0003")
    before = _load_first_wave(bare_engine)
    with bare_engine.connect() as connection:
        viewed = connection.execute(text("SELECT count(*) FROM forecast_accuracy")).scalar()

    upgrade(database_url)

    days = {(row["ticker"], row["as_of_date"]) for t in _RUN_ROWS for row in before[t]}
    with unit_of_work(bare_engine) as session:
        runs = {(run.ticker, run.as_of_date): run for run in session.scalars(select(Run))}
        assert set(runs) == days
        for table in _RUN_ROWS:
            # Every row points at the run of its own ticker and day, and none lost one.
            rows = session.execute(text(f"SELECT id, ticker, as_of_date, run_id FROM {table}"))
            rows = rows.all()
            assert len(rows) == len(before[table])
            for row in rows:
                as_of = row.as_of_date
                as_of = dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
                assert row.run_id == runs[(row.ticker, as_of)].id, (table, row)
        served = {
            (row["ticker"], row["as_of_date"]): row["flow_run_id"]
            for row in before["predictions"]
            if row["kind"] == "forecast"
        }
        for day, run in runs.items():
            assert run.status == "succeeded" and run.data_hash is None
            assert run.started_at <= run.finished_at
            if day in served:
                assert run.flow_run_id == served[day]
            versions = [
                v for v in before["model_versions"] if (v["ticker"], v["as_of_date"]) == day
            ]
            if versions:
                assert run.code_version == max(versions, key=lambda v: v["id"])["code_version"]
        alerts = session.execute(text("SELECT ticker, as_of_date, run_id FROM alerts")).all()
        assert len(alerts) == len(before["alerts"])
        for alert in alerts:
            as_of = alert.as_of_date
            as_of = dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
            run = runs.get((alert.ticker, as_of))
            assert alert.run_id == (run.id if run else None)
        assert session.execute(text("SELECT count(*) FROM forecast_accuracy")).scalar() == viewed

        # The old (ticker, as-of, kind) key is gone: a rerun of a day stores its own rejected
        # candidate beside the champion of that day instead of overwriting it.
        champion = session.scalars(select(ModelVersion).where(ModelVersion.status == "champion"))
        champion = champion.first()
        run = runs[(champion.ticker, champion.as_of_date)]
        clear_run(session=session, run_id=run.id)
        rerun = add_model_version(
            session=session,
            ticker=champion.ticker,
            as_of_date=champion.as_of_date,
            kind=champion.kind,
            config_hash=champion.config_hash,
            hyperparameters=champion.hyperparameters,
            feature_config=champion.feature_config,
            train_start=champion.train_start,
            train_end=champion.train_end,
            run_id=run.id,
        )
        reject(session=session, version=rerun)
        assert session.get(ModelVersion, champion.id).status == "champion"
        counts = {t: session.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in _RUN_ROWS}

    # Back to 0003: the rerun's extra version goes (nothing refers to it), the key returns, and
    # every other row stays.
    downgrade(database_url, "0003")
    with bare_engine.connect() as connection:
        for table in _RUN_ROWS:
            count = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            assert count == counts[table] - (table == "model_versions"), table
    assert "runs" not in _tables(bare_engine)


def test_upgrade_to_an_older_revision_says_the_database_is_past_it(engine: Engine) -> None:
    head = head_revision()
    with pytest.raises(MigrationTargetError) as raised:
        upgrade(str(engine.url.render_as_string(hide_password=False)), "0002")
    message = str(raised.value)
    assert f"is already at revision {head}, past 0002; nothing was changed" in message
    assert "\n" not in message
    assert current_revision(engine) == head


def test_upgrade_to_the_revision_it_is_at_does_nothing(engine: Engine) -> None:
    upgrade(engine.url.render_as_string(hide_password=False), head_revision())
    assert current_revision(engine) == head_revision()


def test_upgrade_to_an_unknown_revision_is_one_line(engine: Engine) -> None:
    with pytest.raises(MigrationTargetError) as raised:
        upgrade(engine.url.render_as_string(hide_password=False), "0009")
    message = str(raised.value)
    assert message.startswith("no migration 0009 in this version of nvda-forecast (it knows ")
    assert f"{head_revision()})" in message and "\n" not in message


def test_upgrade_of_a_database_from_a_newer_release_is_one_line(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'fffffff'"))
    with pytest.raises(SchemaMismatchError, match="at schema revision fffffff, which this version"):
        upgrade(engine.url.render_as_string(hide_password=False))
