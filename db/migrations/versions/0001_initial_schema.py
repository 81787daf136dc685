"""Initial schema: prices, ingestions, model versions, evaluations, predictions, drift, alerts.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Hand-written from an autogenerate draft. Frozen: later changes go in new revisions. The view
uses only SQL that SQLite and PostgreSQL both accept.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FORECAST_ACCURACY_VIEW = """
CREATE VIEW forecast_accuracy AS
SELECT
    p.ticker,
    p.model_version_id,
    p.as_of_date,
    p.target_date,
    p.horizon,
    p.base_close,
    p.predicted_close,
    p.lower_80,
    p.upper_80,
    p.lower_95,
    p.upper_95,
    a.close AS actual_close,
    p.predicted_close - a.close AS error,
    100.0 * ABS(p.predicted_close - a.close) / a.close AS abs_pct_error,
    p.base_close - a.close AS naive_error,
    CASE
        WHEN a.close IS NULL THEN NULL
        WHEN (p.predicted_close - p.base_close) * (a.close - p.base_close) > 0 THEN 1
        WHEN p.predicted_close = p.base_close AND a.close = p.base_close THEN 1
        ELSE 0
    END AS direction_hit,
    CASE
        WHEN a.close IS NULL OR p.lower_80 IS NULL OR p.upper_80 IS NULL THEN NULL
        WHEN a.close >= p.lower_80 AND a.close <= p.upper_80 THEN 1
        ELSE 0
    END AS inside_80,
    CASE
        WHEN a.close IS NULL OR p.lower_95 IS NULL OR p.upper_95 IS NULL THEN NULL
        WHEN a.close >= p.lower_95 AND a.close <= p.upper_95 THEN 1
        ELSE 0
    END AS inside_95,
    p.flow_run_id,
    p.created_at
FROM predictions AS p
LEFT JOIN prices AS a ON a.ticker = p.ticker AND a.date = p.target_date
WHERE p.kind = 'forecast'
"""


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _price(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.Float(), nullable=nullable)


def _model_version_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["model_version_id"],
        ["model_versions.id"],
        name=op.f(f"fk_{table}_model_version_id_model_versions"),
    )


def upgrade() -> None:
    """Create the seven tables, their indexes and the forecast_accuracy view."""
    op.create_table(
        "prices",
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        *(_price(name, nullable=False) for name in ("open", "high", "low", "close")),
        _price("adj_close", nullable=False),
        _price("volume", nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        _timestamp("ingested_at"),
        sa.CheckConstraint(
            "open > 0 AND high > 0 AND low > 0 AND close > 0 AND adj_close > 0 AND volume >= 0",
            name=op.f("ck_prices_positive"),
        ),
        sa.PrimaryKeyConstraint("ticker", "date", name=op.f("pk_prices")),
    )

    op.create_table(
        "ingestions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("requested_start", sa.Date(), nullable=True),
        sa.Column("requested_end", sa.Date(), nullable=True),
        sa.Column("rows_received", sa.Integer(), nullable=False),
        sa.Column("rows_upserted", sa.Integer(), nullable=False),
        sa.Column("first_date", sa.Date(), nullable=True),
        sa.Column("last_date", sa.Date(), nullable=True),
        sa.Column("restated", sa.Boolean(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        _timestamp("started_at"),
        _timestamp("finished_at", nullable=True),
        sa.CheckConstraint("status IN ('succeeded', 'failed')", name=op.f("ck_ingestions_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingestions")),
    )
    op.create_index(op.f("ix_ingestions_ticker_started_at"), "ingestions", ["ticker", "started_at"])

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticker", sa.String(32), nullable=False),
        _timestamp("created_at"),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("hyperparameters", sa.JSON(), nullable=False),
        sa.Column("feature_config", sa.JSON(), nullable=False),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("train_start", sa.Date(), nullable=False),
        sa.Column("train_end", sa.Date(), nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("code_version", sa.String(64), nullable=True),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        _timestamp("promoted_at", nullable=True),
        _timestamp("retired_at", nullable=True),
        sa.CheckConstraint("kind IN ('retrain', 'finetune')", name=op.f("ck_model_versions_kind")),
        sa.CheckConstraint(
            "status IN ('candidate', 'champion', 'rejected', 'retired')",
            name=op.f("ck_model_versions_status"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["model_versions.id"],
            name=op.f("fk_model_versions_parent_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint(
            "ticker", "as_of_date", "kind", name=op.f("uq_model_versions_ticker_as_of_date_kind")
        ),
    )
    champion_only = sa.text("status = 'champion'")
    op.create_index(
        "ux_model_versions_champion",
        "model_versions",
        ["ticker"],
        unique=True,
        postgresql_where=champion_only,
        sqlite_where=champion_only,
    )

    op.create_table(
        "evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("as_of_date", sa.Date(), nullable=False),
        *(
            sa.Column(name, sa.Float(), nullable=True)
            for name in (
                "test_loss",
                "rmse",
                "mae",
                "mape",
                "naive_rmse",
                "naive_mae",
                "skill",
                "directional_accuracy",
                "coverage_80",
                "coverage_95",
            )
        ),
        *(
            sa.Column(name, sa.Integer(), nullable=True)
            for name in ("n_train", "n_val", "n_test", "epochs")
        ),
        sa.Column("train_seconds", sa.Float(), nullable=True),
        _timestamp("created_at"),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        _model_version_fk("evaluations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
        sa.UniqueConstraint(
            "model_version_id",
            "as_of_date",
            name=op.f("uq_evaluations_model_version_id_as_of_date"),
        ),
    )
    op.create_index(
        op.f("ix_evaluations_ticker_as_of_date"), "evaluations", ["ticker", "as_of_date"]
    )

    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("target_date", sa.Date(), nullable=False),
        sa.Column("horizon", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        _price("base_close", nullable=False),
        _price("predicted_close", nullable=False),
        *(_price(name) for name in ("lower_80", "upper_80", "lower_95", "upper_95")),
        _timestamp("created_at"),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.CheckConstraint("kind IN ('forecast', 'test')", name=op.f("ck_predictions_kind")),
        _model_version_fk("predictions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_predictions")),
        sa.UniqueConstraint(
            "ticker",
            "as_of_date",
            "model_version_id",
            "kind",
            "target_date",
            name=op.f("uq_predictions_ticker_as_of_model_kind_target"),
        ),
    )
    op.create_index(
        op.f("ix_predictions_ticker_kind_as_of_date"),
        "predictions",
        ["ticker", "kind", "as_of_date"],
    )

    op.create_table(
        "drift_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("breached", sa.Boolean(), nullable=False),
        _timestamp("created_at"),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.CheckConstraint(
            "kind IN ('data_drift', 'performance_drift', 'data_quality', 'pipeline')",
            name=op.f("ck_drift_reports_kind"),
        ),
        _model_version_fk("drift_reports"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_reports")),
        sa.UniqueConstraint(
            "ticker", "as_of_date", "metric", name=op.f("uq_drift_reports_ticker_as_of_date_metric")
        ),
    )
    op.create_index(
        op.f("ix_drift_reports_ticker_metric_as_of_date"),
        "drift_reports",
        ["ticker", "metric", "as_of_date"],
    )

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticker", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("last_seen_as_of", sa.Date(), nullable=False),
        _timestamp("opened_at"),
        _timestamp("last_seen_at"),
        _timestamp("resolved_at", nullable=True),
        sa.Column("flow_run_id", sa.String(64), nullable=True),
        sa.CheckConstraint(
            "kind IN ('data_drift', 'performance_drift', 'data_quality', 'pipeline')",
            name=op.f("ck_alerts_kind"),
        ),
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'critical')", name=op.f("ck_alerts_severity")
        ),
        sa.CheckConstraint("status IN ('open', 'resolved')", name=op.f("ck_alerts_status")),
        sa.CheckConstraint(
            "(status = 'open' AND resolved_at IS NULL)"
            " OR (status = 'resolved' AND resolved_at IS NOT NULL)",
            name=op.f("ck_alerts_resolved_at"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    open_only = sa.text("status = 'open'")
    op.create_index(
        "ux_alerts_open",
        "alerts",
        ["ticker", "kind", "metric"],
        unique=True,
        postgresql_where=open_only,
        sqlite_where=open_only,
    )
    op.create_index(op.f("ix_alerts_ticker_opened_at"), "alerts", ["ticker", "opened_at"])

    op.execute(FORECAST_ACCURACY_VIEW)


def downgrade() -> None:
    """Drop the view and the tables, dependents first."""
    op.execute("DROP VIEW forecast_accuracy")
    for table in (
        "alerts",
        "drift_reports",
        "predictions",
        "evaluations",
        "model_versions",
        "ingestions",
        "prices",
    ):
        # Dropping a table drops its indexes on both dialects.
        op.drop_table(table)
