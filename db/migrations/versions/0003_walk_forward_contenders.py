"""Walk-forward contenders: every forecaster's forecast is stored, one served forecast a day.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

- ``predictions.method`` names the forecaster (``lstm``, ``naive``); ``kind = 'contender'``
  rows hold each forecaster's own forecast, ``kind = 'forecast'`` the one served.
- ``predictions.scale`` keeps the LSTM's forecast scale of the log return, so its interval
  calibration can be replayed from the stored record.
- ``predictions.model_version_id`` is NULL for a baseline's rows.
- One served forecast per ticker, as-of and target date, whichever model made it: a rerun
  replaces it. Duplicates an earlier release left (a rerun with another model) are removed,
  keeping the newest.
- ``evaluations`` gains the 95% interval (Winkler) score of the model and of the naive +
  volatility baseline, and how many realized forecasts the walk-forward metrics rest on.
- The ``forecast_accuracy`` view shows ``method``.
- An index on ``predictions (ticker, kind, method, target_date)`` serves the walk-forward reads.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# 0001 is frozen: its view text is the one to restore on downgrade, and the new one adds a column.
_INITIAL = importlib.import_module("db.migrations.versions.0001_initial_schema")
_OLD_VIEW = _INITIAL.FORECAST_ACCURACY_VIEW
_NEW_VIEW = _OLD_VIEW.replace("p.model_version_id,", "p.model_version_id,\n    p.method,")
_OLD_KEY = ("ticker", "as_of_date", "model_version_id", "kind", "target_date")
_NEW_KEY = ("ticker", "as_of_date", "kind", "method", "target_date")
_ONE_FORECAST = sa.text("kind = 'forecast'")
_NEW_METRICS = ("winkler_95", "naive_winkler_95", "n_realized")


def upgrade() -> None:
    op.execute("DROP VIEW forecast_accuracy")
    # Keep the newest of the forecasts (and test rows) that reruns left for the same day.
    op.execute(
        """
        DELETE FROM predictions WHERE EXISTS (
            SELECT 1 FROM predictions AS newer
            WHERE newer.ticker = predictions.ticker
              AND newer.as_of_date = predictions.as_of_date
              AND newer.kind = predictions.kind
              AND newer.target_date = predictions.target_date
              AND newer.id > predictions.id
        )
        """
    )
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("method", sa.String(16), nullable=False, server_default="lstm"))
        batch.add_column(sa.Column("scale", sa.Float(), nullable=True))
        batch.alter_column("model_version_id", existing_type=sa.Integer(), nullable=True)
        batch.drop_constraint("uq_predictions_ticker_as_of_model_kind_target", type_="unique")
        batch.create_unique_constraint("uq_predictions_ticker_as_of_kind_method_target", _NEW_KEY)
        batch.drop_constraint("kind", type_="check")
        batch.create_check_constraint("kind", "kind IN ('forecast', 'contender', 'test')")
    # A run reads each forecaster's realized record by target date: without this index SQLite
    # drives the join from `prices` and scans the ticker's predictions for every bar.
    op.create_index(
        "ix_predictions_ticker_kind_method_target_date",
        "predictions",
        ["ticker", "kind", "method", "target_date"],
    )
    op.create_index(
        "ux_predictions_one_forecast",
        "predictions",
        ["ticker", "as_of_date", "target_date"],
        unique=True,
        postgresql_where=_ONE_FORECAST,
        sqlite_where=_ONE_FORECAST,
    )
    with op.batch_alter_table("evaluations") as batch:
        batch.add_column(sa.Column("winkler_95", sa.Float(), nullable=True))
        batch.add_column(sa.Column("naive_winkler_95", sa.Float(), nullable=True))
        batch.add_column(sa.Column("n_realized", sa.Integer(), nullable=True))
    op.execute(_NEW_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW forecast_accuracy")
    with op.batch_alter_table("evaluations") as batch:
        for name in _NEW_METRICS:
            batch.drop_column(name)
    op.drop_index("ux_predictions_one_forecast", table_name="predictions")
    op.drop_index("ix_predictions_ticker_kind_method_target_date", table_name="predictions")
    # Rows 0001 cannot hold: the baselines' and contenders'.
    op.execute("DELETE FROM predictions WHERE kind = 'contender' OR model_version_id IS NULL")
    with op.batch_alter_table("predictions") as batch:
        batch.drop_constraint("kind", type_="check")
        batch.create_check_constraint("kind", "kind IN ('forecast', 'test')")
        batch.drop_constraint("uq_predictions_ticker_as_of_kind_method_target", type_="unique")
        batch.create_unique_constraint("uq_predictions_ticker_as_of_model_kind_target", _OLD_KEY)
        batch.alter_column("model_version_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_column("scale")
        batch.drop_column("method")
    op.execute(_OLD_VIEW)
