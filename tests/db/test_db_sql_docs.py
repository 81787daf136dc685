"""Every query in docs/sql.md runs unchanged on SQLite and PostgreSQL and returns the right rows.

The database holds a small known history (the ``known_history`` fixture, written through the
repository functions); each query's expected rows are computed here in Python, independently of
the SQL.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from db.engine import unit_of_work

DOC = Path(__file__).resolve().parents[2] / "docs" / "sql.md"


def documented_queries() -> dict[int, str]:
    """``{number: sql}`` of the ``### N. title`` + sql blocks under "## Queries"."""
    section = DOC.read_text().split("\n## Queries\n", 1)[1].split("\n## ", 1)[0]
    pattern = re.compile(r"^### (\d+)\. .+?\n.*?```sql\n(.*?)```", re.MULTILINE | re.DOTALL)
    return {int(number): sql.strip() for number, sql in pattern.findall(section)}


def _plain(value: Any) -> Any:
    """One value as both dialects can be compared: dates as ISO text, numbers as float."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal | int | float):  # bool too: True -> 1.0
        return float(value)
    return value


class _AnyTimestamp:
    """Matches any stored timestamp (one the code set to "now")."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.startswith("20")

    def __repr__(self) -> str:
        return "<any timestamp>"


def _arrived(h) -> list[dict[str, Any]]:
    """The NVDA forecasts whose target day has a bar, with their realized errors."""
    rows = []
    for index, forecast in enumerate(h.forecasts, start=11):
        if index >= h.days:
            continue
        actual, base, predicted = (
            h.close(index),
            forecast["base_close"],
            forecast["predicted_close"],
        )
        same_way = (predicted - base) * (actual - base) > 0 or predicted == base == actual
        rows.append(
            forecast
            | {
                "actual": actual,
                "error": predicted - actual,
                "naive": base - actual,
                "pct": 100 * abs(predicted - actual) / actual,
                "hit": int(same_way),
                "in80": int(forecast["lower_80"] <= actual <= forecast["upper_80"]),
                "in95": int(forecast["lower_95"] <= actual <= forecast["upper_95"]),
            }
        )
    return rows


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _newest(h, count: int) -> list[dict[str, Any]]:
    return sorted(_arrived(h), key=lambda row: row["as_of_date"], reverse=True)[:count]


def _latest_forecast(h) -> list[tuple]:
    last = h.forecasts[-1]
    values = ("base_close", "predicted_close", "lower_80", "upper_80", "lower_95", "upper_95")
    row = ("NVDA", last["as_of_date"], last["target_date"], *(last[k] for k in values))
    return [(*row, h.versions["v4"])]


def _accuracy_vs_naive(h) -> list[tuple]:
    recent = _newest(h, 30)
    return [
        (
            30,
            _mean([abs(r["error"]) for r in recent]),
            _mean([abs(r["naive"]) for r in recent]),
            _mean([r["pct"] for r in recent]),
            _mean([r["hit"] for r in recent]),
            sum(abs(r["error"]) < abs(r["naive"]) for r in recent),
        )
    ]


def _test_loss_over_time(h) -> list[tuple]:
    v = h.versions
    status = {v["v1"]: "retired", v["v2"]: "rejected", v["v3"]: "retired", v["v4"]: "champion"}
    return [
        (as_of, version, kind, status[version], loss, None, None, 0.9 + loss)
        for as_of, version, kind, loss in sorted(h.evaluations)
    ]


def _open_alerts(h) -> list[tuple]:
    def alert(ticker: str, severity: str, kind: str, metric: str, day: int) -> tuple:
        opened = h.day(day)
        return (ticker, severity, kind, metric, None, None, f"{metric} fired", opened, opened)

    return [
        alert("NVDA", "critical", "performance_drift", "rmse_ratio", 62),
        alert("AMD", "critical", "pipeline", "run_failed", 64),
        alert("NVDA", "warning", "data_drift", "volatility_ratio", 61),
        alert("AMD", "info", "data_drift", "volatility_ratio", 60),
    ]


def _lineage(h) -> list[tuple]:
    v = h.versions
    return [
        (v["v4"], "finetune", h.day(49), "champion", 0),
        (v["v3"], "finetune", h.day(29), "retired", 1),
        (v["v1"], "retrain", h.day(9), "retired", 2),
    ]


def _champion_history(h) -> list[tuple]:
    def served(name: str, kind: str, day: int, order: int, loss: float) -> tuple:
        retired = _AnyTimestamp() if name != "v4" else None
        promoted = h.t0 + dt.timedelta(days=order)
        return (h.versions[name], kind, h.day(day), promoted, retired, 0.9 + loss, loss)

    return [
        served("v1", "retrain", 9, 0, 0.01),
        served("v3", "finetune", 29, 2, 0.03),
        served("v4", "finetune", 49, 3, 0.04),
    ]


def _coverage(h) -> list[tuple]:
    recent = _newest(h, 60)
    inside_80, inside_95 = ([r[key] for r in recent] for key in ("in80", "in95"))
    return [(len(recent), 100 * _mean(inside_80), 100 * _mean(inside_95))]


def _ingestions(h) -> list[tuple]:
    day = dt.timedelta(days=1)
    return [
        (h.t0 + 2 * day, "yahoo", "failed", 0, 0, None, None, 0, "rate limited"),
        (h.t0 + day, "yahoo", "succeeded", 70, 5, None, None, 1, None),
        (h.t0, "yahoo", "succeeded", 70, 70, None, None, 0, None),
    ]


def _drift_over_time(h) -> list[tuple]:
    return [(h.day(60), 1.5, 1.75, 0), (h.day(61), 1.7, 1.75, 0), (h.day(62), 1.9, 1.75, 1)]


def _accuracy_by_version(h) -> list[tuple]:
    rows = []
    for name in ("v1", "v3", "v4"):
        group = [r for r in _arrived(h) if r["model_version_id"] == h.versions[name]]
        naive_pct = [100 * abs(r["naive"]) / r["actual"] for r in group]
        first, last = group[0]["as_of_date"], group[-1]["as_of_date"]
        mape = _mean([r["pct"] for r in group])
        rows.append((h.versions[name], len(group), first, last, mape, _mean(naive_pct)))
    return rows


def _worst_misses(h) -> list[tuple]:
    ranked = sorted(_arrived(h), key=lambda r: (r["pct"], r["target_date"]), reverse=True)
    keys = ("as_of_date", "target_date", "base_close", "predicted_close", "actual", "pct", "in95")
    return [tuple(r[key] for key in keys) for r in ranked[:10]]


def _freshness(h) -> list[tuple]:
    amd, nvda = h.versions["amd"], h.versions["v4"]
    return [("AMD", amd, h.day(7), h.day(7)), ("NVDA", nvda, h.day(69), h.day(69))]


def _contenders(h) -> list[tuple]:
    arrived = _arrived(h)

    def summary(method: str, point: str, lower: Callable, upper: Callable) -> tuple:
        errors = [abs(r[point] - r["actual"]) for r in arrived]
        inside = [int(lower(r) <= r["actual"] <= upper(r)) for r in arrived]
        return (method, len(arrived), _mean(errors), _mean(inside))

    garch = [r for r in arrived if r["as_of_date"] >= h.day(h.garch_from)]
    return [
        (
            "garch_avg",
            len(garch),
            _mean([abs(r["base_close"] - r["actual"]) for r in garch]),
            _mean([int(abs(r["actual"] - r["base_close"]) <= 3) for r in garch]),
        ),
        summary("lstm", "predicted_close", lambda r: r["lower_95"], lambda r: r["upper_95"]),
        summary(
            "naive", "base_close", lambda r: r["base_close"] - 4, lambda r: r["base_close"] + 4
        ),
    ]


def _interval_scores(h) -> list[tuple]:
    """Each contender's 95% coverage and Winkler score (dollars) on the days all three forecast."""
    shared = [r for r in _arrived(h) if r["as_of_date"] >= h.day(h.garch_from)]
    bounds = {
        "lstm": lambda r: (r["lower_95"], r["upper_95"]),
        "naive": lambda r: (r["base_close"] - 4, r["base_close"] + 4),
        "garch_avg": lambda r: (r["base_close"] - 3, r["base_close"] + 3),
    }
    rows = []
    for method, bound in bounds.items():
        inside, scores = [], []
        for r in shared:
            low, high = bound(r)
            actual = r["actual"]
            inside.append(int(low <= actual <= high))
            miss = low - actual if actual < low else actual - high if actual > high else 0.0
            scores.append(high - low + 40 * miss)
        rows.append((method, len(shared), _mean(inside), _mean(scores)))
    return sorted(rows, key=lambda row: row[3])


def _qlike(h) -> list[tuple]:
    """QLIKE of each contender's variance against the target day's Garman-Klass + overnight
    proxy, on the days all three forecast (the fixture's bars: open = close, high/low = close
    +/- 1)."""
    shared = [r for r in _arrived(h) if r["as_of_date"] >= h.day(h.garch_from)]
    variances = {"garch_avg": 0.02**2, "lstm": 0.015**2 * 5 / 3, "naive": 0.03**2}
    rows = []
    for method, variance in variances.items():
        losses = []
        for r in shared:
            close = r["actual"]
            garman_klass = 0.5 * math.log((close + 1) / (close - 1)) ** 2  # log(C/O) = 0
            proxy = garman_klass + math.log(close / r["base_close"]) ** 2
            losses.append(proxy / variance - math.log(proxy / variance) - 1)
        rows.append((method, len(shared), _mean(losses)))
    return sorted(rows, key=lambda row: row[2])


EXPECTED: dict[int, Callable[[Any], list[tuple]]] = {
    1: _latest_forecast,
    2: _accuracy_vs_naive,
    3: _test_loss_over_time,
    4: _open_alerts,
    5: _lineage,
    6: _champion_history,
    7: _coverage,
    8: _ingestions,
    9: _drift_over_time,
    10: _accuracy_by_version,
    11: _worst_misses,
    12: _freshness,
    13: _contenders,
    14: _interval_scores,
    15: _qlike,
}


def test_every_documented_query_is_checked() -> None:
    queries = documented_queries()
    assert len(queries) >= 10
    assert sorted(queries) == sorted(EXPECTED)
    assert all(sql.endswith(";") for sql in queries.values())


def test_documented_queries_return_the_expected_rows(engine, known_history) -> None:
    # One database for all queries (filling it is the slow part); every mismatch is reported.
    mismatches = {}
    with unit_of_work(engine) as session:
        for number, sql in documented_queries().items():
            # Driver-level execution: the text reaches the database exactly as a user pastes it.
            rows = session.connection().exec_driver_sql(sql).all()
            got = [tuple(_plain(value) for value in row) for row in rows]
            want = [
                tuple(_plain(value) for value in row) for row in EXPECTED[number](known_history)
            ]
            approx = [
                tuple(pytest.approx(value) if isinstance(value, float) else value for value in row)
                for row in want
            ]
            if got != approx:
                mismatches[number] = {"got": got, "want": want}
    assert mismatches == {}
