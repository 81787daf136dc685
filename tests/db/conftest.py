"""Fixtures of the store's tests: a migrated database on each dialect, and small price frames."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from db.engine import dispose_engines, get_engine, unit_of_work
from db.migrate import upgrade
from db.repository import (
    add_alert,
    add_model_version,
    promote,
    record_drift_metrics,
    record_evaluation,
    record_ingestion,
    reject,
    replace_predictions,
    resolve_alert,
    upsert_prices,
)


@pytest.fixture(autouse=True)
def _forget_engines() -> Iterator[None]:
    """No engine outlives its test (each test has its own database)."""
    yield
    dispose_engines()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A database at the head revision (SQLite and PostgreSQL)."""
    upgrade(database_url)
    yield get_engine(database_url)
    dispose_engines()  # before the PostgreSQL fixture drops the database


@pytest.fixture
def bare_engine(database_url: str) -> Iterator[Engine]:
    """An empty database, never migrated."""
    yield get_engine(database_url)
    dispose_engines()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """One unit of work, committed at the end of the test."""
    with unit_of_work(engine) as session:
        yield session


def _make_prices(days: int, start: str = "2024-01-02", seed: int = 0) -> pd.DataFrame:
    generator = np.random.default_rng(seed)
    # Without a freq, as frames read from files or the database have.
    index = pd.DatetimeIndex(pd.bdate_range(start, periods=days).to_numpy(), name="date").as_unit(
        "ns"
    )
    close = 100 * np.exp(np.cumsum(generator.normal(0, 0.02, days)))
    frame = pd.DataFrame(
        {
            "open": close * 0.99,
            "high": close * 1.02,
            "low": close * 0.97,
            "close": close,
            "adj_close": close * 0.98,
            "volume": generator.integers(1_000_000, 9_000_000, days).astype("float64"),
        },
        index=index,
    )
    return frame


def _count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _day(offset: int) -> dt.date:
    return pd.bdate_range("2024-01-02", periods=offset + 1)[-1].date()


@pytest.fixture
def make_prices() -> Callable[..., pd.DataFrame]:
    """``make_prices(days, start="2024-01-02", seed=0)``: a valid price frame (random walk)."""
    return _make_prices


@pytest.fixture
def row_count() -> Callable[[Session, type], int]:
    """``row_count(session, Model)``: rows in that model's table."""
    return _count


@pytest.fixture
def bday() -> Callable[[int], dt.date]:
    """``bday(n)``: the n-th business day after 2024-01-02 (``bday(0)`` is that day)."""
    return _day


# The known history behind the docs/sql.md test: NVDA bars on business days 0..69, forecasts as
# of days 10..69 (the last one's target not arrived), four NVDA models, monitoring rows.
DAYS = 70
T0 = dt.datetime(2024, 7, 1, 21, 0, tzinfo=dt.UTC)


def _close(i: int) -> float:
    return round(100 + 10 * math.sin(i / 5) + 0.3 * i, 4)


@dataclass
class History:
    """What was stored, to compute expected answers from."""

    days: ClassVar[int] = DAYS
    t0: ClassVar[dt.datetime] = T0
    garch_from: ClassVar[int] = 30
    """The first as-of day with a ``garch_avg`` contender row."""
    day = staticmethod(_day)
    close = staticmethod(_close)
    versions: dict[str, int] = field(default_factory=dict)
    forecasts: list[dict[str, Any]] = field(default_factory=list)  # NVDA, in as-of order
    evaluations: list[tuple] = field(default_factory=list)  # (as_of, version, kind, status, loss)


def _prices(ticker: str, days: int) -> pd.DataFrame:
    close = [_close(i) for i in range(days)]
    index = pd.DatetimeIndex([pd.Timestamp(_day(i)) for i in range(days)], name="date")
    frame = pd.DataFrame({"close": close}, index=index.as_unit("ns"))
    return frame.assign(
        open=frame.close,
        high=frame.close + 1,
        low=frame.close - 1,
        adj_close=frame.close,
        volume=1e6,
    )


def _version(session, ticker, as_of, kind, parent=None):
    return add_model_version(
        session=session,
        ticker=ticker,
        as_of_date=as_of,
        kind=kind,
        parent_id=parent,
        config_hash="c0ffee",
        hyperparameters={"units": 50},
        feature_config={"window": 10},
        train_start=_day(0),
        train_end=as_of,
    )


@pytest.fixture
def known_history(engine: Engine) -> History:
    """A migrated database holding the known history (see docs/sql.md's test)."""
    return _populate(engine)


def _populate(engine: Engine) -> History:
    """Prices, four NVDA models (v1 -> v3 -> v4 champions, v2 rejected), forecasts, alerts."""
    history = History()
    with unit_of_work(engine) as session:
        upsert_prices(_prices("NVDA", DAYS), session=session, ticker="NVDA", source="sample")
        upsert_prices(_prices("AMD", 8), session=session, ticker="AMD", source="sample")
        plan = [
            ("v1", 9, "retrain", None, True),
            ("v2", 19, "finetune", "v1", False),
            ("v3", 29, "finetune", "v1", True),
            ("v4", 49, "finetune", "v3", True),
        ]
        for number, (name, day, kind, parent, promoted) in enumerate(plan):
            parent_id = history.versions.get(parent) if parent else None
            version = _version(session, "NVDA", _day(day), kind, parent_id)
            history.versions[name] = version.id
            if promoted:
                promote(session=session, version=version)
                version.promoted_at = T0 + dt.timedelta(days=number)
            else:
                reject(session=session, version=version)
            loss = 0.01 * (number + 1)
            record_evaluation(
                session=session,
                model_version_id=version.id,
                as_of_date=_day(day),
                metrics={"test_loss": loss, "skill": 0.9 + loss},
            )
            history.evaluations.append((_day(day), version.id, kind, loss))
        amd = _version(session, "AMD", _day(5), "retrain")
        promote(session=session, version=amd)
        history.versions["amd"] = amd.id
        _store_forecasts(session, history, amd.id)
        _store_monitoring(session)
    return history


def _forecaster(history: History, i: int) -> int:
    name = "v1" if i < 29 else "v3" if i < 49 else "v4"
    return history.versions[name]


def _store_forecasts(session, history: History, amd_id: int) -> None:
    for i in range(10, DAYS):
        base, predicted = _close(i), round(_close(i) + 1.5 * math.sin(1.7 * i), 4)
        row = {
            "target_date": _day(i + 1),
            "base_close": base,
            "predicted_close": predicted,
            "lower_80": predicted - 1.2,
            "upper_80": predicted + 1.2,
            "lower_95": predicted - 2.5,
            "upper_95": predicted + 2.5,
        }
        version_id = _forecaster(history, i)
        # The LSTM served every day; the naive contender's intervals are wider.
        naive = row | {
            "predicted_close": base, "lower_95": base - 4.0, "upper_95": base + 4.0, "scale": 0.03,
        }  # fmt: skip
        # The GARCH average joined later (day 30 on): narrower than naive, the last close's point.
        garch = naive | {"lower_95": base - 3.0, "upper_95": base + 3.0, "scale": 0.02}
        contenders = [("contender", "garch_avg", garch, None)] if i >= history.garch_from else []
        for kind, method, values, model_id in (
            ("forecast", "lstm", row, version_id),
            ("contender", "lstm", row | {"scale": 0.015}, version_id),
            ("contender", "naive", naive, None),
            *contenders,
        ):
            replace_predictions(
                session=session,
                ticker="NVDA",
                as_of_date=_day(i),
                model_version_id=model_id,
                kind=kind,
                method=method,
                rows=[values],
            )
        history.forecasts.append(row | {"as_of_date": _day(i), "model_version_id": version_id})
    test_rows = [
        {"target_date": _day(i), "base_close": 1.0, "predicted_close": 1.0} for i in range(40, 49)
    ]
    replace_predictions(
        session=session,
        ticker="NVDA",
        as_of_date=_day(49),
        kind="test",
        model_version_id=history.versions["v4"],
        rows=test_rows,
    )
    replace_predictions(
        session=session,
        ticker="AMD",
        as_of_date=_day(7),
        kind="forecast",
        model_version_id=amd_id,
        rows=[{"target_date": _day(8), "base_close": 1.0, "predicted_close": 1.0}],
    )


def _store_monitoring(session) -> None:
    for number, (status, restated, received, upserted) in enumerate(
        [("succeeded", False, 70, 70), ("succeeded", True, 70, 5), ("failed", False, 0, 0)]
    ):
        record_ingestion(
            session=session,
            ticker="NVDA",
            source="yahoo",
            status=status,
            started_at=T0 + dt.timedelta(days=number),
            restated=restated,
            rows_received=received,
            rows_upserted=upserted,
            error="rate limited" if status == "failed" else None,
        )
    record_ingestion(session=session, ticker="AMD", source="yahoo", status="succeeded")
    for i in (60, 61, 62):
        rows = [
            {
                "metric": "volatility_ratio",
                "kind": "data_drift",
                "value": 1.5 + (i - 60) * 0.2,
                "threshold": 1.75,
                "breached": i == 62,
            },
            {
                "metric": "stale_sessions",
                "kind": "data_quality",
                "value": 0,
                "threshold": 0,
                "breached": False,
            },
        ]
        record_drift_metrics(session=session, ticker="NVDA", as_of_date=_day(i), rows=rows)
    record_drift_metrics(
        session=session,
        ticker="AMD",
        as_of_date=_day(7),
        rows=[{"metric": "volatility_ratio", "kind": "data_drift", "value": 9.0, "breached": True}],
    )
    # Opened in this order, an hour apart: severity, not age, must lead the open-alerts query.
    specs = [
        ("AMD", "data_drift", "volatility_ratio", "info"),
        ("NVDA", "data_drift", "volatility_ratio", "warning"),
        ("NVDA", "performance_drift", "rmse_ratio", "critical"),
        ("NVDA", "data_quality", "stale_sessions", "warning"),
        ("AMD", "pipeline", "run_failed", "critical"),
    ]
    for number, (ticker, kind, metric, severity) in enumerate(specs):
        alert = add_alert(
            session=session,
            ticker=ticker,
            kind=kind,
            severity=severity,
            metric=metric,
            message=f"{metric} fired",
            as_of_date=_day(60 + number),
        )
        alert.opened_at = T0 + dt.timedelta(hours=number)
        if metric == "stale_sessions":
            resolve_alert(session=session, alert=alert)
