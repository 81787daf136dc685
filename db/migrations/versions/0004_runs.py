"""The run as a unit: a ``runs`` table that every row a run writes points to.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

- ``runs``: one row per ticker and as-of date (flow-run id, code version, status, started and
  finished, the content hash of the bars the run used). A rerun reuses the day's run and
  replaces its rows in one transaction.
- ``run_id`` on ``model_versions``, ``evaluations``, ``predictions`` and ``drift_reports`` (not
  null) and on ``alerts`` (the run that opened it; NULL where no run's rows exist for the day
  it was opened, e.g. an old failed run's alert).
- ``model_versions`` loses its (ticker, as-of date, kind) key: a rerun adds its own version
  instead of overwriting the day's, so a rejected rerun is stored, and never over the champion.

Existing rows get the run of their (ticker, as-of date): started and finished are the oldest
and newest ``created_at`` among them, the flow-run id the served forecast's (else the newest
row's), the code version the day's newest model version's; the data hash is unknown (NULL).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite rebuilds `predictions` to add its column: the view on it goes and comes back unchanged.
_VIEW = importlib.import_module("db.migrations.versions.0003_walk_forward_contenders")._NEW_VIEW
_RUN_ROWS = ("model_versions", "evaluations", "predictions", "drift_reports")
_OLD_KEY = ("ticker", "as_of_date", "kind")
# Every (ticker, as-of date) a run of the first schema wrote rows for.
_DAYS = " UNION ALL ".join(
    f"SELECT ticker, as_of_date, created_at, flow_run_id FROM {table}" for table in _RUN_ROWS
)


def upgrade() -> None:
    op.execute("DROP VIEW forecast_accuracy")
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.Column("code_version", sa.String(64), nullable=True),
        sa.Column("data_hash", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('succeeded', 'failed')", name=op.f("ck_runs_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("ticker", "as_of_date", name=op.f("uq_runs_ticker_as_of_date")),
    )
    op.execute(
        f"""
        INSERT INTO runs (ticker, as_of_date, status, started_at, finished_at)
        SELECT ticker, as_of_date, 'succeeded', MIN(created_at), MAX(created_at)
        FROM ({_DAYS}) AS written
        GROUP BY ticker, as_of_date
        """
    )
    op.execute(
        """
        UPDATE runs SET
            flow_run_id = COALESCE(
                (SELECT MAX(p.flow_run_id) FROM predictions AS p
                 WHERE p.ticker = runs.ticker AND p.as_of_date = runs.as_of_date
                   AND p.kind = 'forecast'),
                (SELECT MAX(m.flow_run_id) FROM model_versions AS m
                 WHERE m.ticker = runs.ticker AND m.as_of_date = runs.as_of_date)
            ),
            code_version = (
                SELECT m.code_version FROM model_versions AS m
                WHERE m.ticker = runs.ticker AND m.as_of_date = runs.as_of_date
                ORDER BY m.id DESC LIMIT 1
            )
        """
    )
    for table in (*_RUN_ROWS, "alerts"):
        nullable = table == "alerts"
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("run_id", sa.Integer(), nullable=True))
        op.execute(
            f"""
            UPDATE {table} SET run_id = (
                SELECT runs.id FROM runs
                WHERE runs.ticker = {table}.ticker AND runs.as_of_date = {table}.as_of_date
            )
            """
        )
        with op.batch_alter_table(table) as batch:
            if not nullable:
                batch.alter_column("run_id", existing_type=sa.Integer(), nullable=False)
            batch.create_foreign_key(op.f(f"fk_{table}_run_id_runs"), "runs", ["run_id"], ["id"])
            batch.create_index(op.f(f"ix_{table}_run_id"), ["run_id"])
            if table == "model_versions":
                batch.drop_constraint("uq_model_versions_ticker_as_of_date_kind", type_="unique")
    op.execute(_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW forecast_accuracy")
    # The old key allows one version per (ticker, as-of date, kind): of a day's versions of one
    # kind, keep the champion, else the newest; drop the others that nothing refers to.
    op.execute(
        """
        DELETE FROM model_versions WHERE status <> 'champion'
        AND EXISTS (
            SELECT 1 FROM model_versions AS other
            WHERE other.ticker = model_versions.ticker
              AND other.as_of_date = model_versions.as_of_date
              AND other.kind = model_versions.kind
              AND (other.status = 'champion' OR other.id > model_versions.id)
        )
        AND NOT EXISTS (SELECT 1 FROM predictions AS p WHERE p.model_version_id = model_versions.id)
        AND NOT EXISTS (SELECT 1 FROM evaluations AS e WHERE e.model_version_id = model_versions.id)
        AND NOT EXISTS (
            SELECT 1 FROM drift_reports AS d WHERE d.model_version_id = model_versions.id
        )
        AND NOT EXISTS (SELECT 1 FROM model_versions AS c WHERE c.parent_id = model_versions.id)
        """
    )
    for table in ("alerts", *reversed(_RUN_ROWS)):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(op.f(f"ix_{table}_run_id"))
            batch.drop_constraint(op.f(f"fk_{table}_run_id_runs"), type_="foreignkey")
            batch.drop_column("run_id")
            if table == "model_versions":
                # Fails, naming the key, where a day still has two versions of one kind that
                # other rows refer to: the data does not fit the old schema.
                batch.create_unique_constraint(
                    op.f("uq_model_versions_ticker_as_of_date_kind"), list(_OLD_KEY)
                )
    op.drop_table("runs")
    op.execute(_VIEW)
