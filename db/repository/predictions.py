"""Predictions of a run, and how past forecasts fared once their target day arrived."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session

from db.models import (
    PREDICTION_KINDS,
    PREDICTION_METHODS,
    ModelVersion,
    Prediction,
    Price,
)
from db.repository.bulk import clean_number, insert_rows
from db.repository.runs import run_for
from db.types import utcnow
from db.views import FORECAST_ACCURACY_FLAGS, forecast_accuracy

PREDICTION_VALUES = (
    "base_close",
    "predicted_close",
    "lower_80",
    "upper_80",
    "lower_95",
    "upper_95",
)
_REQUIRED = ("target_date", "base_close", "predicted_close")
_DATE_COLUMNS = ("as_of_date", "target_date")
_FLOAT_COLUMNS = (
    *PREDICTION_VALUES,
    "scale",
    "actual_close",
    "error",
    "abs_pct_error",
    "naive_error",
)


def replace_predictions(
    *,
    session: Session,
    ticker: str,
    as_of_date: dt.date,
    model_version_id: int | None,
    kind: str,
    rows: pd.DataFrame | Sequence[Mapping[str, Any]],
    method: str = "lstm",
    flow_run_id: str | None = None,
    run_id: int | None = None,
) -> int:
    """Store a run's predictions, replacing those stored before for the same day and kind.

    A ``forecast`` (the one served) or a ``test`` window replaces whatever any earlier run of
    the same ticker and as-of date stored, whichever model or method made it: there is one of
    each per day. A ``contender`` replaces only the same method's.

    ``rows`` has ``target_date``, ``base_close``, ``predicted_close`` and optionally
    ``lower_80, upper_80, lower_95, upper_95``, ``scale`` and ``horizon`` (default 1); a
    DataFrame may carry ``target_date`` as its index. Returns the number of rows stored.
    """
    if kind not in PREDICTION_KINDS:
        raise ValueError(f"prediction kind must be one of {PREDICTION_KINDS}, not {kind!r}")
    if method not in PREDICTION_METHODS:
        raise ValueError(f"prediction method must be one of {PREDICTION_METHODS}, not {method!r}")
    records = _records(rows)
    targets = [record["target_date"] for record in records]
    if len(set(targets)) != len(targets):
        raise ValueError(f"{kind} predictions of {ticker} on {as_of_date} repeat a target date")
    session.flush()
    same_day = [
        Prediction.ticker == ticker,
        Prediction.as_of_date == as_of_date,
        Prediction.kind == kind,
    ]
    if kind == "contender":
        same_day.append(Prediction.method == method)
    session.execute(delete(Prediction).where(*same_day))
    if run_id is None:
        run_id = run_for(session=session, ticker=ticker, as_of_date=as_of_date)
    now = utcnow()
    common = {
        "run_id": run_id,
        "ticker": ticker,
        "as_of_date": as_of_date,
        "model_version_id": model_version_id,
        "kind": kind,
        "method": method,
        "created_at": now,
        "flow_run_id": flow_run_id,
    }
    return insert_rows(session, Prediction.__table__, [common | record for record in records])


def read_predictions(
    *,
    session: Session,
    ticker: str,
    as_of_date: dt.date | None = None,
    kind: str = "forecast",
    model_version_id: int | None = None,
) -> pd.DataFrame:
    """Stored predictions of one kind, by target date; all as-of dates when None."""
    statement = select(Prediction.__table__).where(
        Prediction.ticker == ticker, Prediction.kind == kind
    )
    if as_of_date is not None:
        statement = statement.where(Prediction.as_of_date == as_of_date)
    if model_version_id is not None:
        statement = statement.where(Prediction.model_version_id == model_version_id)
    statement = statement.order_by(Prediction.as_of_date, Prediction.target_date, Prediction.id)
    return _frame(session, statement)


def latest_forecast(*, session: Session, ticker: str) -> Prediction | None:
    """The newest next-day forecast of ``ticker``."""
    statement = (
        select(Prediction)
        .where(Prediction.ticker == ticker, Prediction.kind == "forecast")
        .order_by(Prediction.as_of_date.desc(), Prediction.created_at.desc(), Prediction.id.desc())
        .limit(1)
    )
    return session.scalars(statement).first()


def read_forecast_accuracy(
    *,
    session: Session,
    ticker: str,
    since: dt.date | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Forecasts joined with the closes that arrived, oldest first; ``limit`` keeps the newest.

    Rows whose target day has not arrived have NULL (NaN/NA) actuals; the flags
    ``direction_hit, inside_80, inside_95`` come back as pandas nullable booleans.
    """
    view = forecast_accuracy
    statement = select(view).where(view.c.ticker == ticker)
    if since is not None:
        statement = statement.where(view.c.as_of_date >= since)
    statement = statement.order_by(view.c.as_of_date.desc(), view.c.created_at.desc())
    if limit is not None:
        statement = statement.limit(limit)
    return _frame(session, statement).iloc[::-1].reset_index(drop=True)


def read_realized_errors(
    *,
    session: Session,
    ticker: str,
    since: dt.date | None = None,
    through: dt.date | None = None,
    model_version_id: int | None = None,
    live_only: bool = False,
) -> pd.DataFrame:
    """Only the served forecasts whose target day has arrived by ``through``, oldest first.

    ``through`` is the as-of date of the run that reads them: a replay or backfill must not see
    the closes of days after it, even when the database already holds them. ``live_only``
    keeps the days whose LSTM was of the live lineage (see :func:`read_walk_forward`), whoever
    served them.
    """
    view = forecast_accuracy
    statement = select(view).where(view.c.ticker == ticker, view.c.actual_close.is_not(None))
    if since is not None:
        statement = statement.where(view.c.target_date >= since)
    if through is not None:
        statement = statement.where(view.c.target_date <= through)
    if model_version_id is not None:
        statement = statement.where(view.c.model_version_id == model_version_id)
    if live_only:
        live_days = select(Prediction.as_of_date).where(
            Prediction.ticker == ticker,
            Prediction.kind == "contender",
            Prediction.method == "lstm",
            Prediction.model_version_id.in_(_promoted(ticker)),
        )
        statement = statement.where(view.c.as_of_date.in_(live_days))
    return _frame(session, statement.order_by(view.c.target_date, view.c.created_at))


def read_walk_forward(
    *,
    session: Session,
    ticker: str,
    method: str,
    through: dt.date,
    limit: int | None = None,
    live_only: bool = False,
) -> pd.DataFrame:
    """One forecaster's realized walk-forward record: its forecasts whose target day arrived
    by ``through``, each with the close that arrived, oldest first.

    Parameters
    ----------
    method
        ``lstm`` or ``naive`` (the ``contender`` rows of that method).
    through
        The reading run's as-of date: later closes stay invisible.
    limit
        Keep only the newest ``limit`` forecasts.
    live_only
        Only the forecasts of models that were promoted (champions, and retired ones): the
        live lineage's record, without the forecasts a replay's own model made of old days.

    Returns
    -------
    pandas.DataFrame
        ``as_of_date, target_date, base_close, actual_close, predicted_close, scale,
        lower_80, upper_80, lower_95, upper_95, model_version_id``.
    """
    where = [Prediction.kind == "contender", Prediction.method == method]
    if live_only:
        where.append(Prediction.model_version_id.in_(_promoted(ticker)))
    return _with_actuals(session, ticker=ticker, through=through, limit=limit, where=where)


def _promoted(ticker: str) -> Select[Any]:
    """The ids of the ticker's models that were ever promoted: its live lineage."""
    return select(ModelVersion.id).where(
        ModelVersion.ticker == ticker, ModelVersion.promoted_at.is_not(None)
    )


def read_held_out(
    *, session: Session, ticker: str, through: dt.date, model_version_id: int | None = None
) -> pd.DataFrame:
    """A retrain's test window (its held-out forecasts), with the closes that arrived by
    ``through``; columns as :func:`read_walk_forward`.

    The retrain is ``model_version_id``'s when given, else the newest stored as of
    ``through``. Each row's ``as_of_date`` is its forecast's origin, the session before its
    target (the rows themselves are stored under the retrain's own day).
    """
    if model_version_id is not None:
        where = [Prediction.kind == "test", Prediction.model_version_id == model_version_id]
    else:
        newest = (
            select(func.max(Prediction.as_of_date))
            .where(
                Prediction.ticker == ticker,
                Prediction.kind == "test",
                Prediction.as_of_date <= through,
            )
            .scalar_subquery()
        )
        where = [Prediction.kind == "test", Prediction.as_of_date == newest]
    frame = _with_actuals(session, ticker=ticker, through=through, limit=None, where=where)
    if frame.empty:
        return frame
    before_first = session.scalar(
        select(func.max(Price.date)).where(
            Price.ticker == ticker, Price.date < frame["target_date"].iloc[0].date()
        )
    )
    origins = frame["target_date"].shift(1)
    origins.iloc[0] = pd.Timestamp(before_first) if before_first else pd.NaT
    frame["as_of_date"] = origins.astype("datetime64[ns]")
    return frame


def _with_actuals(
    session: Session, *, ticker: str, through: dt.date, limit: int | None, where: list
) -> pd.DataFrame:
    statement = (
        select(
            Prediction.as_of_date,
            Prediction.target_date,
            Prediction.base_close,
            Price.close.label("actual_close"),
            Prediction.predicted_close,
            Prediction.scale,
            *(Prediction.__table__.c[name] for name in PREDICTION_VALUES[2:]),
            Prediction.model_version_id,
        )
        .join(Price, (Price.ticker == Prediction.ticker) & (Price.date == Prediction.target_date))
        .where(Prediction.ticker == ticker, Prediction.target_date <= through, *where)
        .order_by(Prediction.target_date.desc())
    )
    if limit is not None:
        statement = statement.limit(limit)
    return _frame(session, statement).iloc[::-1].reset_index(drop=True)


def _records(rows: pd.DataFrame | Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(rows, pd.DataFrame):
        if "target_date" not in rows.columns:
            rows = rows.rename_axis("target_date").reset_index()
        rows = rows.to_dict("records")
    records = []
    for row in rows:
        missing = [name for name in _REQUIRED if row.get(name) is None]
        if missing:
            raise ValueError(f"prediction row lacks {missing}: {dict(row)}")
        record: dict[str, Any] = {
            name: clean_number(row.get(name)) for name in (*PREDICTION_VALUES, "scale")
        }
        if record["predicted_close"] is None or record["base_close"] is None:
            raise ValueError(f"prediction row has NaN base_close or predicted_close: {dict(row)}")
        record["target_date"] = pd.Timestamp(row["target_date"]).date()
        record["horizon"] = int(row.get("horizon", 1))
        records.append(record)
    return records


def _frame(session: Session, statement: Select[Any]) -> pd.DataFrame:
    result = session.execute(statement)
    frame = pd.DataFrame.from_records(result.all(), columns=list(result.keys()))
    for name in _DATE_COLUMNS:
        if name in frame.columns:
            frame[name] = pd.to_datetime(frame[name]).dt.as_unit("ns")
    if "created_at" in frame.columns:
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True).dt.as_unit("ns")
    for name in FORECAST_ACCURACY_FLAGS:
        if name in frame.columns:
            frame[name] = frame[name].astype("Int64").astype("boolean")
    floats = [name for name in _FLOAT_COLUMNS if name in frame.columns]
    frame[floats] = frame[floats].astype("float64")
    return frame
