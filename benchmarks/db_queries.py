"""How fast the store answers: every query of docs/sql.md, and a bulk upsert of ten years.

Fills a database with synthetic history (default 50 tickers x 10 years of daily bars, one model
version, evaluation, forecast and four drift metrics per ticker and day, the last 20 runs' test
windows), then prints the median time of each documented query and of ``upsert_prices`` for
ten years of one ticker. Targets: every query under 50 ms, the upsert under 1 s.

    python benchmarks/db_queries.py                       # SQLite file and local PostgreSQL
    python benchmarks/db_queries.py --url sqlite:///x.db  # one database (it is filled first)

Prints numbers; not a test.
"""

from __future__ import annotations

import argparse
import itertools
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from sqlalchemy import Engine, insert, text

from db.engine import dispose_engines, get_engine, unit_of_work
from db.migrate import upgrade
from db.models import Alert, DriftReport, Evaluation, Ingestion, ModelVersion, Prediction, Price
from db.repository import read_forecast_accuracy, read_prices, upsert_prices

DOC = Path(__file__).resolve().parents[1] / "docs" / "sql.md"
POSTGRES_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
QUERY_TARGET_MS, UPSERT_TARGET_MS = 50.0, 1000.0
DRIFT_METRICS = (
    ("volatility_ratio", "data_drift"),
    ("return_distance", "data_drift"),
    ("rmse_ratio", "performance_drift"),
    ("stale_sessions", "data_quality"),
)
TEST_WINDOW, TEST_RUNS = 500, 20


def documented_queries() -> dict[str, str]:
    """``{"N. title": sql}`` of docs/sql.md's "Queries" section."""
    section = DOC.read_text().split("\n## Queries\n", 1)[1].split("\n## ", 1)[0]
    pattern = re.compile(r"^### (\d+\. .+?)\n.*?```sql\n(.*?)```", re.MULTILINE | re.DOTALL)
    return {title: sql.strip() for title, sql in pattern.findall(section)}


def synthetic_prices(days: int, seed: int) -> pd.DataFrame:
    """A random-walk price frame of ``days`` business days ending 2025-12-31."""
    generator = np.random.default_rng(seed)
    index = pd.DatetimeIndex(pd.bdate_range(end="2025-12-31", periods=days).to_numpy(), name="date")
    close = 50 * np.exp(np.cumsum(generator.normal(0.0005, 0.02, days)))
    return pd.DataFrame(
        {
            "open": close * 0.99,
            "high": close * 1.02,
            "low": close * 0.97,
            "close": close,
            "adj_close": close,
            "volume": generator.integers(10**6, 10**8, days).astype(float),
        },
        index=index.as_unit("ns"),
    )


def fill(engine: Engine, tickers: int, days: int) -> int:
    """Write the synthetic history, one transaction per ticker; returns rows written."""
    total = 0
    for number in range(tickers):
        ticker = "NVDA" if number == 0 else f"T{number:03d}"
        with unit_of_work(engine) as session:
            for model, rows in _ticker_rows(number, ticker, synthetic_prices(days, number)):
                session.execute(insert(model), rows)
                total += len(rows)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            # Ids were given explicitly; move the sequence past them.
            connection.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('model_versions', 'id'), "
                    "(SELECT MAX(id) FROM model_versions))"
                )
            )
            # What autovacuum does soon after a bulk load. SQLite gets no ANALYZE: nothing
            # runs it for a user either, so its numbers are without planner statistics.
            connection.execute(text("ANALYZE"))
    return total


def _ticker_rows(number: int, ticker: str, prices: pd.DataFrame) -> Iterator[tuple[type, list]]:
    """``(model, rows)`` of every table for one ticker's whole history."""
    dates = list(prices.index.date)
    now = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
    yield Price, _price_rows(ticker, prices, now)
    versions, champion_of_day = _versions(number, ticker, dates, now)
    yield ModelVersion, versions
    yield Evaluation, [_evaluation(version, now) for version in versions]
    yield Prediction, _prediction_rows(ticker, prices, champion_of_day, now)
    yield DriftReport, _drift_rows(ticker, dates, now)
    yield Ingestion, _ingestion_rows(ticker, dates, now)
    yield Alert, _alerts(ticker, dates, now)


def _price_rows(ticker: str, prices: pd.DataFrame, now) -> list[dict]:
    values = prices.to_dict("records")
    return [
        {"ticker": ticker, "date": day, **bar, "source": "yahoo", "ingested_at": now}
        for day, bar in zip(prices.index.date, values, strict=True)
    ]


def _evaluation(version: dict, now) -> dict:
    metrics = {"test_loss": 0.001, "rmse": 2.0, "mae": 1.5, "naive_rmse": 2.1, "skill": 0.95}
    identity = {"ticker": version["ticker"], "as_of_date": version["as_of_date"]}
    return {"model_version_id": version["id"], **identity, **metrics, "created_at": now}


def _prediction_rows(ticker: str, prices: pd.DataFrame, champions: list, now) -> list[dict]:
    """A forecast every day, and the test window of the last TEST_RUNS runs."""
    dates, close = list(prices.index.date), prices["close"].to_numpy()
    rows = [
        _prediction(ticker, champions[i], dates[i], i, close, now, "forecast")
        for i in range(len(dates))
    ]
    for i in range(len(dates) - TEST_RUNS, len(dates)):
        rows += [
            _prediction(ticker, champions[i], dates[i], j, close, now, "test", dates[j + 1])
            for j in range(max(0, i - TEST_WINDOW), i)
        ]
    return rows


def _drift_rows(ticker: str, dates: list, now) -> list[dict]:
    return [
        {
            "ticker": ticker,
            "as_of_date": day,
            "kind": kind,
            "metric": metric,
            "value": 1.0 + (i % 7) / 10,
            "threshold": 1.5,
            "breached": i % 7 == 6,
            "created_at": now,
        }
        for i, day in enumerate(dates)
        for metric, kind in DRIFT_METRICS
    ]


def _ingestion_rows(ticker: str, dates: list, now) -> list[dict]:
    return [
        {
            "ticker": ticker,
            "source": "yahoo",
            "rows_received": 5,
            "rows_upserted": 1,
            "first_date": day,
            "last_date": day,
            "restated": i % 500 == 0,
            "status": "succeeded",
            "started_at": now - pd.Timedelta(days=len(dates) - i),
            "finished_at": now,
        }
        for i, day in enumerate(dates)
    ]


def _versions(number: int, ticker: str, dates: list, now) -> tuple[list[dict], list[int]]:
    """One candidate a day (retrain every 20th); every 5th is promoted."""
    versions, champion_of_day, champion = [], [], None
    for i, day in enumerate(dates):
        version_id = number * 100_000 + i + 1
        promoted = i % 5 == 0
        versions.append(
            {
                "id": version_id,
                "ticker": ticker,
                "created_at": now,
                "kind": "retrain" if i % 20 == 0 else "finetune",
                "parent_id": None if i % 20 == 0 else champion,
                "as_of_date": day,
                "hyperparameters": {"units": 50},
                "feature_config": {"sequence_length": 10},
                "config_hash": "c0ffee",
                "train_start": dates[0],
                "train_end": day,
                "artifact_uri": f"/models/{ticker}/{day}.keras",
                "sha256": "0" * 64,
                "status": "retired" if promoted else "rejected",
                "promoted_at": now if promoted else None,
                "retired_at": now if promoted else None,
            }
        )
        champion = version_id if promoted else champion
        champion_of_day.append(champion)
    last = next(v for v in reversed(versions) if v["id"] == champion)
    last["status"], last["retired_at"] = "champion", None
    return versions, champion_of_day


def _prediction(ticker, version_id, as_of, i, close, now, kind, target=None) -> dict:
    base = float(close[i])
    predicted = base * (1 + 0.01 * np.sin(i))
    return {
        "ticker": ticker,
        "model_version_id": version_id,
        "as_of_date": as_of,
        "target_date": target or (pd.Timestamp(as_of) + pd.offsets.BDay(1)).date(),
        "horizon": 1,
        "kind": kind,
        "base_close": base,
        "predicted_close": predicted,
        "lower_80": predicted * 0.97,
        "upper_80": predicted * 1.03,
        "lower_95": predicted * 0.95,
        "upper_95": predicted * 1.05,
        "created_at": now,
    }


def _alerts(ticker: str, dates: list, now) -> list[dict]:
    rows, step = [], max(1, (len(dates) - 4) // 42)
    for i in range(42):
        open_ = i >= 40
        rows.append(
            {
                "ticker": ticker,
                "kind": "data_drift",
                "severity": "warning",
                "metric": f"metric_{i % 4}" if not open_ else f"open_{i}",
                "value": 2.0,
                "threshold": 1.5,
                "status": "open" if open_ else "resolved",
                "message": "synthetic",
                "as_of_date": dates[i * step],
                "last_seen_as_of": dates[i * step + 3],
                "opened_at": now,
                "last_seen_at": now,
                "resolved_at": None if open_ else now,
            }
        )
    return rows


def median_ms(action: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``action`` in milliseconds, after one warm-up call."""
    action()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(engine: Engine, repeat: int) -> dict[str, float]:
    """Median milliseconds of every documented query and of the bulk upserts."""
    results = {}
    for title, sql in documented_queries().items():

        def run(sql: str = sql) -> None:
            with engine.connect() as connection:
                connection.exec_driver_sql(sql).all()

        results[title] = median_ms(run, repeat)
    ten_years = synthetic_prices(2520, seed=999)
    changed = ten_years.assign(close=ten_years["close"] * 1.01)

    def upsert(frame: pd.DataFrame, tickers: Iterator[str]) -> Callable[[], None]:
        def action() -> None:
            with unit_of_work(engine) as session:
                upsert_prices(frame, session=session, ticker=next(tickers), source="bench")

        return action

    fresh = (f"NEW{n}" for n in range(repeat + 1))
    results["upsert_prices: 10 years of one ticker, all new (2520 rows)"] = median_ms(
        upsert(ten_years, fresh), repeat
    )
    results["upsert_prices: the same 10 years again (no change)"] = median_ms(
        upsert(ten_years, itertools.repeat("NEW0")), repeat
    )
    frames = itertools.cycle([changed, ten_years])
    results["upsert_prices: 10 years, every bar changed"] = median_ms(
        lambda: upsert(next(frames), itertools.repeat("NEW0"))(), repeat
    )

    def read(function: Callable, **kwargs) -> Callable[[], None]:
        def action() -> None:
            with unit_of_work(engine) as session:
                function(session=session, **kwargs)

        return action

    results["read_prices: 10 years of NVDA"] = median_ms(read(read_prices, ticker="NVDA"), repeat)
    results["read_forecast_accuracy: NVDA, newest 250"] = median_ms(
        read(read_forecast_accuracy, ticker="NVDA", limit=250), repeat
    )
    return results


@contextmanager
def local_postgres() -> Iterator[str]:
    """A fresh database on the local PostgreSQL server, dropped afterwards."""
    name = f"nvf_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        dispose_engines()
        with psycopg.connect(POSTGRES_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(url: str, arguments: argparse.Namespace) -> dict[str, float]:
    """Migrate and fill the database at ``url``, then measure it."""
    upgrade(url)
    engine = get_engine(url)
    started = time.perf_counter()
    rows = fill(engine, arguments.tickers, arguments.years * 252)
    print(
        f"{engine.dialect.name}: filled {rows:,} rows in {time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )
    return measure(engine, arguments.repeat)


def report(results: dict[str, dict[str, float]]) -> str:
    """A markdown table: one row per measurement, one column per database."""
    dialects = list(results)
    lines = [
        f"| Measurement | {' | '.join(dialects)} | Target |",
        f"|---|{'---:|' * len(dialects)}---:|",
    ]
    for title in next(iter(results.values())):
        target = UPSERT_TARGET_MS if title.startswith("upsert") else QUERY_TARGET_MS
        if title.startswith("read_"):
            target = float("nan")
        cells = []
        for dialect in dialects:
            value = results[dialect][title]
            cells.append(f"{value:.1f} ms" + (" ❌" if value > target else ""))
        shown = "-" if np.isnan(target) else f"< {target:.0f} ms"
        lines.append(f"| {title} | {' | '.join(cells)} | {shown} |")
    return "\n".join(lines)


def main() -> None:
    """Parse the options, run every database, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--url",
        action="append",
        help="database URL (repeatable); "
        "default: a temporary SQLite file and a database on the local PostgreSQL",
    )
    parser.add_argument("--tickers", type=int, default=50)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per measurement")
    arguments = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        if arguments.url:
            for url in arguments.url:
                results[url.split(":", 1)[0]] = run(url, arguments)
        else:
            results["SQLite"] = run(f"sqlite:///{folder}/bench.db", arguments)
            with local_postgres() as url:
                results["PostgreSQL"] = run(url, arguments)
        dispose_engines()
    print(report(results))


if __name__ == "__main__":
    main()
