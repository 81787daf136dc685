"""Order independence: what a day stores depends on the data up to it and on the model lineage
that serves it, never on which other days ran before (docs/model.md, "The walk-forward record").

A property, not a case: seeded random sequences of the documented commands (a run, a rerun, a
replay of an older day, a backfill of a range, ``--mode retrain|finetune``) on the tiny model.
After every command, each day it did not run still holds exactly what it held; a day it reran
with the policy's choice (``--mode auto``) too. At the end every stored day is rerun, in a random
order: each rerun stores again exactly what is stored, and its summary says what the day's own
run said.
"""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest
from sqlalchemy import select

from db.engine import get_engine, unit_of_work
from db.migrate import upgrade
from db.models import Alert, DriftReport, Evaluation, Prediction
from flows.backfill import backfill
from flows.daily import daily_forecast
from forecasting.errors import ConfigurationError

pytestmark = pytest.mark.slow

# Ten NYSE sessions and an older day, on the bundled sample (short histories: fast runs).
SESSIONS = [dt.date(2005, 1, 3) + dt.timedelta(days=d) for d in (0, 1, 2, 3, 4, 7, 8, 9, 10, 11)]
OLD_DAY = dt.date(2004, 6, 30)
DAYS = [OLD_DAY, *SESSIONS]
PREDICTION_VALUES = (
    "target_date",
    "base_close",
    "predicted_close",
    "lower_80",
    "upper_80",
    "lower_95",
    "upper_95",
    "scale",
)
METRICS = (
    "test_loss",
    "rmse",
    "mae",
    "mape",
    "naive_rmse",
    "skill",
    "directional_accuracy",
    "coverage_80",
    "coverage_95",
    "winkler_95",
    "naive_winkler_95",
    "n_realized",
)
SUMMARY_FIELDS = (
    "as_of",
    "target_date",
    "served_by",
    "predicted_close",
    "lower_80",
    "upper_80",
    "lower_95",
    "upper_95",
    "lstm_close",
    "lstm_lower_95",
    "lstm_upper_95",
    "basis",
    "n_realized",
    "skill",
    "rmse",
    "naive_rmse",
    "coverage_80",
    "coverage_95",
    "winkler_95",
    "naive_winkler_95",
    "test_loss",
    "train_end",
)


def snapshot(url: str) -> dict[dt.date, dict]:
    """Every stored day: its served and contender forecasts (with the model that made the
    LSTM's), the forecasting model's metrics on the day, and the day's drift metrics."""
    days: dict[dt.date, dict] = {}
    with unit_of_work(get_engine(url)) as session:
        for row in session.scalars(select(Prediction).where(Prediction.kind != "test")):
            values = tuple(getattr(row, name) for name in PREDICTION_VALUES)
            day = days.setdefault(row.as_of_date, {"metrics": None, "drift": {}})
            day[(row.kind, row.method)] = (row.model_version_id, *values)
        for day, entry in days.items():
            forecaster = entry[("contender", "lstm")][0]
            evaluation = session.scalars(
                select(Evaluation).where(
                    Evaluation.model_version_id == forecaster, Evaluation.as_of_date == day
                )
            ).one()
            entry["metrics"] = tuple(getattr(evaluation, name) for name in METRICS)
        for row in session.scalars(select(DriftReport).where(DriftReport.kind != "pipeline")):
            days[row.as_of_date]["drift"][row.metric] = row.value
    return days


def alert_states(url: str) -> list[tuple]:
    with unit_of_work(get_engine(url)) as session:
        return [
            (alert.id, alert.metric, alert.status, alert.as_of_date, alert.value)
            for alert in session.scalars(select(Alert).order_by(Alert.id))
        ]


def assert_same(before: dict, after: dict, what: str) -> None:
    assert before.keys() == after.keys(), what
    for key in before:
        a, b = before[key], after[key]
        if isinstance(a, dict):
            assert_same(a, b, f"{what} / {key}")
        elif isinstance(a, tuple):
            assert_same(dict(enumerate(a)), dict(enumerate(b)), f"{what} / {key}")
        elif isinstance(a, float) and math.isnan(a):
            assert b is None or math.isnan(b), f"{what} / {key}"
        else:
            # Bit-identical: the same inputs give the same floats.
            assert a == b, f"{what} / {key}: {a!r} then {b!r}"


def random_commands(rng: random.Random, extra: int) -> list[tuple]:
    """A shuffled sequence of documented commands over the sample's days: a run, a replay of the
    older day, a backfill and a forced mode at least once each, ``extra`` random ones, and a
    plain rerun of one of them right after it."""

    def backfill_range() -> tuple:
        first = rng.randrange(len(SESSIONS) - 2)
        return ("backfill", SESSIONS[first], SESSIONS[first + rng.randint(1, 2)])

    def any_command() -> tuple:
        pick = rng.random()
        if pick < 0.5:
            return ("run", rng.choice(DAYS), "auto")
        if pick < 0.75:
            return backfill_range()
        return ("run", rng.choice(DAYS), rng.choice(["retrain", "finetune"]))

    commands = [
        ("run", rng.choice(SESSIONS), "auto"),
        ("run", OLD_DAY, "auto"),
        backfill_range(),
        ("run", rng.choice(DAYS), rng.choice(["retrain", "finetune"])),
        *(any_command() for _ in range(extra)),
    ]
    rng.shuffle(commands)
    repeated = rng.randrange(len(commands))
    commands.insert(repeated + 1, commands[repeated])
    return commands


def execute(command: tuple):
    """Run one command; None when the policy refused it (with its one-line reason)."""
    if command[0] == "backfill":
        backfill(ticker="NVDA", source="sample", start=command[1], end=command[2])
        return None
    _, day, mode = command
    try:
        return daily_forecast(ticker="NVDA", source="sample", as_of=day, mode=mode)
    except ConfigurationError as refused:
        assert "\n" not in str(refused)
        return None


def days_of(command: tuple) -> set[dt.date]:
    if command[0] == "backfill":
        return {day for day in SESSIONS if command[1] <= day <= command[2]}
    return {command[1]}


@pytest.mark.parametrize("seed", [3, 11])
def test_no_sequence_of_commands_changes_another_day(flow_settings, seed):
    upgrade(flow_settings)  # an empty store to compare the first command with
    rng = random.Random(seed)
    summaries: dict[dt.date, object] = {}
    for command in random_commands(rng, 1):
        before = snapshot(flow_settings)
        summary = execute(command)
        after = snapshot(flow_settings)
        forced = command[0] == "run" and command[2] != "auto"
        for day in before:
            if day in days_of(command) and forced:
                continue  # a new model for the day, asked for: a new lineage state
            assert_same(before[day], after[day], f"{command}: day {day}")
        if summary is not None:
            summaries[summary.as_of] = summary
        elif forced or command[0] == "backfill":
            for day in days_of(command):
                summaries.pop(day, None)

    stored = snapshot(flow_settings)
    assert stored, "the sequence stored no day"
    for day in rng.sample(sorted(stored), len(stored)):
        rerun = daily_forecast(ticker="NVDA", source="sample", as_of=day)
        assert rerun.action == "reuse", (day, rerun.reason)
        assert_same(stored, snapshot(flow_settings), f"rerun of {day}")
        if day in summaries:
            first = {name: getattr(summaries[day], name) for name in SUMMARY_FIELDS}
            again = {name: getattr(rerun, name) for name in SUMMARY_FIELDS}
            assert_same(first, again, f"summary of the rerun of {day}")


def test_a_replay_of_an_old_day_leaves_today_as_it_was(flow_settings):
    # The issue's own sequence: today, a rerun, a replay of an old day, today again.
    today, old = SESSIONS[-1], OLD_DAY
    first = daily_forecast(ticker="NVDA", source="sample", as_of=today)
    stored = snapshot(flow_settings)
    rerun = daily_forecast(ticker="NVDA", source="sample", as_of=today)
    alerts = alert_states(flow_settings)
    replay = daily_forecast(ticker="NVDA", source="sample", as_of=old)
    # The alerts describe the ticker's present: a replay stores its metrics, moves no alert.
    assert alert_states(flow_settings) == alerts
    assert snapshot(flow_settings)[old]["drift"]
    again = daily_forecast(ticker="NVDA", source="sample", as_of=today)

    assert replay.action == "retrain" and replay.as_of == old
    for summary in (rerun, again):
        assert_same(
            {name: getattr(first, name) for name in SUMMARY_FIELDS},
            {name: getattr(summary, name) for name in SUMMARY_FIELDS},
            "today's summary",
        )
    after = snapshot(flow_settings)
    assert_same(stored[today], after[today], "today's rows")
    # The two intervals stay two intervals.
    assert again.lower_95 < again.lower_80 < again.upper_80 < again.upper_95
