"""The held-out read seeks its rows: ``predictions`` index gains ``target_date``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

``ix_predictions_ticker_kind_as_of_date`` (ticker, kind, as_of_date) becomes
``ix_predictions_ticker_kind_as_of_date_target_date``. Every run reads the newest retrain's
held-out forecasts with the closes of their target days (``read_held_out``). With the old
index, SQLite's planner, which has no statistics unless someone runs ``ANALYZE``, walked the
ticker's whole price history and scanned the retrain's test rows for each day: 0.32 s a run on
a year of backfilled NVDA (6,534 prices, 250 test rows), growing with both. With the target
date in the index it seeks the 250 rows and joins each close by key: 0.4 ms. The new index
serves every query the old one did (the same leading columns).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = ("ticker", "kind", "as_of_date")
_NEW = (*_OLD, "target_date")


def _name(columns: tuple[str, ...]) -> str:
    return op.f(f"ix_predictions_{'_'.join(columns)}")


def upgrade() -> None:
    op.create_index(_name(_NEW), "predictions", list(_NEW))
    op.drop_index(_name(_OLD), table_name="predictions")


def downgrade() -> None:
    op.create_index(_name(_OLD), "predictions", list(_OLD))
    op.drop_index(_name(_NEW), table_name="predictions")
