"""Repository functions: each takes a keyword-only ``session`` and never commits.

The caller owns the transaction, normally ``with unit_of_work(engine) as session: ...``.
"""

from db.repository.alerts import (
    add_alert,
    get_open_alert,
    list_alerts,
    open_alerts,
    read_drift_metrics,
    record_drift_metrics,
    resolve_alert,
    touch_alert,
)
from db.repository.predictions import (
    latest_forecast,
    prune_test_predictions,
    read_forecast_accuracy,
    read_held_out,
    read_predictions,
    read_realized_errors,
    read_walk_forward,
    replace_predictions,
)
from db.repository.prices import (
    delete_prices,
    latest_ingestion,
    latest_price_date,
    read_prices,
    record_ingestion,
    upsert_prices,
)
from db.repository.registry import (
    get_champion,
    get_evaluation,
    get_model_version,
    lineage,
    lineage_retrain_date,
    list_model_versions,
    promote,
    record_evaluation,
    reject,
    retire,
    stored_artifact,
    upsert_model_version,
)

__all__ = [
    "add_alert",
    "delete_prices",
    "get_champion",
    "get_evaluation",
    "get_model_version",
    "get_open_alert",
    "latest_forecast",
    "latest_ingestion",
    "latest_price_date",
    "lineage",
    "lineage_retrain_date",
    "list_alerts",
    "list_model_versions",
    "open_alerts",
    "promote",
    "prune_test_predictions",
    "read_drift_metrics",
    "read_forecast_accuracy",
    "read_held_out",
    "read_predictions",
    "read_prices",
    "read_realized_errors",
    "read_walk_forward",
    "record_drift_metrics",
    "record_evaluation",
    "record_ingestion",
    "reject",
    "replace_predictions",
    "resolve_alert",
    "retire",
    "stored_artifact",
    "touch_alert",
    "upsert_model_version",
    "upsert_prices",
]
