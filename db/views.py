"""Views, described for queries only; migration 0001 creates them with portable SQL.

They are lightweight ``table()`` constructs outside ``Base.metadata``, so Alembic's comparison of
models and schema (which ignores views) does not see them as missing tables.
"""

from __future__ import annotations

from sqlalchemy import Date, Float, Integer, String, column, table

from db.types import UTCDateTime

FORECAST_ACCURACY_FLAGS = ("direction_hit", "inside_80", "inside_95")

forecast_accuracy = table(
    "forecast_accuracy",
    column("ticker", String),
    column("model_version_id", Integer),
    column("method", String),
    column("as_of_date", Date),
    column("target_date", Date),
    column("horizon", Integer),
    column("base_close", Float),
    column("predicted_close", Float),
    column("lower_80", Float),
    column("upper_80", Float),
    column("lower_95", Float),
    column("upper_95", Float),
    column("actual_close", Float),
    column("error", Float),
    column("abs_pct_error", Float),
    column("naive_error", Float),
    # 1 = yes, 0 = no, NULL = target day not arrived (or no interval stored).
    column("direction_hit", Integer),
    column("inside_80", Integer),
    column("inside_95", Integer),
    column("flow_run_id", String),
    column("created_at", UTCDateTime()),
)
