"""The tables, as typed SQLAlchemy models; docs/sql.md documents every column for SQL users."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from db.types import UTCDateTime, utcnow

# Named constraints: SQLite migrations rebuild tables and need names to find them again.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

INGESTION_STATUSES = ("succeeded", "failed")
RUN_STATUSES = ("succeeded", "failed")
MODEL_KINDS = ("retrain", "finetune")
MODEL_STATUSES = ("candidate", "champion", "rejected", "retired")
PREDICTION_KINDS = ("forecast", "contender", "test")
# Who made a prediction: the LSTM; the naive close with volatility-scaled conformal intervals; the
# naive close with GARCH(1,1)-t, GJR-GARCH(1,1)-t or their averaged-variance intervals.
PREDICTION_METHODS = ("lstm", "naive", "garch", "gjr", "garch_avg")
ONE_FORECAST = text("kind = 'forecast'")
# The same names as forecasting.monitoring.alerting.KINDS (a test checks): alert kinds name
# the Prefect events too, `nvda-forecast.alert.<kind>`.
DRIFT_KINDS = ("data_drift", "performance_drift", "data_quality", "pipeline")
ALERT_KINDS = DRIFT_KINDS
ALERT_SEVERITIES = ("info", "warning", "critical")
ALERT_STATUSES = ("open", "resolved")

OPEN_ONLY = text("status = 'open'")
CHAMPION_ONLY = text("status = 'champion'")


def _one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    listed = ", ".join(f"'{value}'" for value in values)
    return CheckConstraint(f"{column} IN ({listed})", name=column)


class Base(DeclarativeBase):
    """Declarative base whose metadata Alembic compares with the migrations."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Price(Base):
    """One daily bar of one ticker, as last written by an ingestion."""

    __tablename__ = "prices"
    __table_args__ = (
        CheckConstraint(
            "open > 0 AND high > 0 AND low > 0 AND close > 0 AND adj_close > 0 AND volume >= 0",
            name="positive",
        ),
    )

    ticker: Mapped[str] = mapped_column(String(32), primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    adj_close: Mapped[float] = mapped_column(Float)
    volume: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(Text)
    ingested_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Ingestion(Base):
    """One attempt to fetch and store bars, successful or not."""

    __tablename__ = "ingestions"
    __table_args__ = (
        _one_of("status", INGESTION_STATUSES),
        Index(None, "ticker", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticker: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(Text)
    requested_start: Mapped[dt.date | None] = mapped_column(Date)
    requested_end: Mapped[dt.date | None] = mapped_column(Date)
    rows_received: Mapped[int] = mapped_column(Integer, default=0)
    rows_upserted: Mapped[int] = mapped_column(Integer, default=0)
    first_date: Mapped[dt.date | None] = mapped_column(Date)
    last_date: Mapped[dt.date | None] = mapped_column(Date)
    restated: Mapped[bool] = mapped_column(Boolean, default=False)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    adjustment: Mapped[str | None] = mapped_column(Text)
    """How the ingest changed the source's numbers: split ratios applied, a restatement factor."""
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]


class Run(Base):
    """One run of the pipeline for one ticker and as-of date: every row it writes points here.

    A rerun of the same day reuses the row (the key is ticker and as-of date) and replaces the
    run's rows in one transaction.
    """

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("ticker", "as_of_date"),
        _one_of("status", RUN_STATUSES),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticker: Mapped[str] = mapped_column(String(32))
    as_of_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    code_version: Mapped[str | None] = mapped_column(String(64))
    data_hash: Mapped[str | None] = mapped_column(String(64))
    """sha256 of the price bars the run used (the ticker's history through the as-of date)."""
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]


def _run_id(nullable: bool = False) -> Mapped[Any]:
    return mapped_column(ForeignKey("runs.id"), nullable=nullable, index=True)


class ModelVersion(Base):
    """A trained model: its data window, configuration, weights file and standing."""

    __tablename__ = "model_versions"
    __table_args__ = (
        _one_of("kind", MODEL_KINDS),
        _one_of("status", MODEL_STATUSES),
        # At most one champion per ticker, whatever the code does.
        Index(
            "ux_model_versions_champion",
            "ticker",
            unique=True,
            postgresql_where=CHAMPION_ONLY,
            sqlite_where=CHAMPION_ONLY,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = _run_id()
    ticker: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    as_of_date: Mapped[dt.date] = mapped_column(Date)
    hyperparameters: Mapped[dict[str, Any]]
    feature_config: Mapped[dict[str, Any]]
    config_hash: Mapped[str] = mapped_column(String(64))
    train_start: Mapped[dt.date] = mapped_column(Date)
    train_end: Mapped[dt.date] = mapped_column(Date)
    artifact_uri: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="candidate")
    code_version: Mapped[str | None] = mapped_column(String(64))
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    promoted_at: Mapped[dt.datetime | None]
    retired_at: Mapped[dt.datetime | None]


class Evaluation(Base):
    """One model version's quality as of one date: its test loss, and its walk-forward record's
    metrics against naive on the same realized days (docs/model.md)."""

    __tablename__ = "evaluations"
    __table_args__ = (
        UniqueConstraint("model_version_id", "as_of_date"),
        Index(None, "ticker", "as_of_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = _run_id()
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    ticker: Mapped[str] = mapped_column(String(32))
    as_of_date: Mapped[dt.date] = mapped_column(Date)
    test_loss: Mapped[float | None] = mapped_column(Float)
    rmse: Mapped[float | None] = mapped_column(Float)
    mae: Mapped[float | None] = mapped_column(Float)
    mape: Mapped[float | None] = mapped_column(Float)
    naive_rmse: Mapped[float | None] = mapped_column(Float)
    naive_mae: Mapped[float | None] = mapped_column(Float)
    skill: Mapped[float | None] = mapped_column(Float)
    directional_accuracy: Mapped[float | None] = mapped_column(Float)
    coverage_80: Mapped[float | None] = mapped_column(Float)
    coverage_95: Mapped[float | None] = mapped_column(Float)
    n_train: Mapped[int | None] = mapped_column(Integer)
    n_val: Mapped[int | None] = mapped_column(Integer)
    n_test: Mapped[int | None] = mapped_column(Integer)
    epochs: Mapped[int | None] = mapped_column(Integer)
    train_seconds: Mapped[float | None] = mapped_column(Float)
    winkler_95: Mapped[float | None] = mapped_column(Float)
    naive_winkler_95: Mapped[float | None] = mapped_column(Float)
    n_realized: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))


_EVALUATION_KEYS = {
    "id",
    "run_id",
    "model_version_id",
    "ticker",
    "as_of_date",
    "created_at",
    "flow_run_id",
}
EVALUATION_METRICS = tuple(
    column.name for column in Evaluation.__table__.columns if column.name not in _EVALUATION_KEYS
)


class Prediction(Base):
    """One predicted close: the served forecast, a contender's forecast, or a held-out test day."""

    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint(
            "ticker",
            "as_of_date",
            "kind",
            "method",
            "target_date",
            name="uq_predictions_ticker_as_of_kind_method_target",  # the default is too long
        ),
        # One served forecast per ticker and day, whichever model made it.
        Index(
            "ux_predictions_one_forecast",
            "ticker",
            "as_of_date",
            "target_date",
            unique=True,
            postgresql_where=ONE_FORECAST,
            sqlite_where=ONE_FORECAST,
        ),
        _one_of("kind", PREDICTION_KINDS),
        # Latest forecast and forecast history of a ticker, without wading through test rows;
        # with target_date, the held-out read seeks its rows (migration 0005).
        Index(None, "ticker", "kind", "as_of_date", "target_date"),
        # A forecaster's realized record, read by target date every run.
        Index(None, "ticker", "kind", "method", "target_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = _run_id()
    ticker: Mapped[str] = mapped_column(String(32))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    """The LSTM version that made it; NULL for a baseline's."""
    as_of_date: Mapped[dt.date] = mapped_column(Date)
    target_date: Mapped[dt.date] = mapped_column(Date)
    horizon: Mapped[int] = mapped_column(Integer, default=1)
    kind: Mapped[str] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(16), server_default="lstm")
    base_close: Mapped[float] = mapped_column(Float)
    predicted_close: Mapped[float] = mapped_column(Float)
    scale: Mapped[float | None] = mapped_column(Float)
    """The LSTM's forecast scale (sigma) of the log return, for replaying its calibration."""
    lower_80: Mapped[float | None] = mapped_column(Float)
    upper_80: Mapped[float | None] = mapped_column(Float)
    lower_95: Mapped[float | None] = mapped_column(Float)
    upper_95: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))


class DriftReport(Base):
    """One drift metric of one run: value, threshold and whether it was breached."""

    __tablename__ = "drift_reports"
    __table_args__ = (
        UniqueConstraint("ticker", "as_of_date", "metric"),
        _one_of("kind", DRIFT_KINDS),
        Index(None, "ticker", "metric", "as_of_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = _run_id()
    ticker: Mapped[str] = mapped_column(String(32))
    as_of_date: Mapped[dt.date] = mapped_column(Date)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    kind: Mapped[str] = mapped_column(String(24))
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    breached: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))


class Alert(Base):
    """A condition someone should look at; open until a later run finds it gone."""

    __tablename__ = "alerts"
    __table_args__ = (
        _one_of("kind", ALERT_KINDS),
        _one_of("severity", ALERT_SEVERITIES),
        _one_of("status", ALERT_STATUSES),
        CheckConstraint(
            "(status = 'open' AND resolved_at IS NULL)"
            " OR (status = 'resolved' AND resolved_at IS NOT NULL)",
            name="resolved_at",
        ),
        # One open alert per condition: a rerun touches it instead of opening another.
        Index(
            "ux_alerts_open",
            "ticker",
            "kind",
            "metric",
            unique=True,
            postgresql_where=OPEN_ONLY,
            sqlite_where=OPEN_ONLY,
        ),
        Index(None, "ticker", "opened_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int | None] = _run_id(nullable=True)
    """The run that opened it (NULL for an alert older than the runs table with no run's rows)."""
    ticker: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(24))
    severity: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="open")
    message: Mapped[str] = mapped_column(Text)
    as_of_date: Mapped[dt.date] = mapped_column(Date)
    last_seen_as_of: Mapped[dt.date] = mapped_column(Date)
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[dt.datetime | None]
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
