"""A range of one ticker's sessions, oldest first: each one `flows.pipeline.forecast_day`.

The work of `nvda-forecast backfill` (flows/backfill.py) and of each ticker of a many-ticker
backfill (flows/fleet.py). Every session commits on its own: interrupted at day k, a rerun skips
the sessions that already have a served forecast and continues; a bad day stops the range with
one line naming it, and the days before it stay stored.
"""

import datetime as dt
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE

from db.engine import get_engine, unit_of_work
from db.repository import read_forecast_accuracy, read_predictions
from flows.errors import ACTIONABLE
from flows.job import TickerJob
from flows.progress import without_training_cards
from flows.report.money import money
from flows.report.text import score_line
from flows.retry import io_task
from flows.settings import Settings
from flows.summary import RunSummary
from forecasting.errors import NvdaForecastError

RunDay = Callable[[TickerJob, Settings, str | None], tuple[RunSummary, pd.DataFrame]]
"""How a session runs: `flows.pipeline.forecast_day`."""


class BackfillError(NvdaForecastError):
    """A session of the backfill failed; the sessions before it are stored."""


@dataclass(frozen=True)
class BackfillSummary:
    """What a backfill did, session by session counted."""

    ticker: str
    source: str
    start: dt.date
    end: dt.date
    sessions: int
    """Sessions the source has in the range."""
    ran: int
    skipped: int
    """Sessions that already had a served forecast (an earlier, interrupted backfill)."""
    actions: dict[str, int] = field(default_factory=dict)
    """How many sessions retrained, fine-tuned or reused the champion."""
    served_by: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    step_seconds: dict[str, float] = field(default_factory=dict)
    """Wall time per pipeline step, summed over the sessions that ran."""
    alerts_opened: tuple[str, ...] = ()
    """The alerts the sessions that ran opened: ``2005-01-06 warning data_drift: message``."""
    realized: int = 0
    """The range's stored forecasts whose target close has arrived, and how they scored."""
    rmse: float | None = None
    naive_rmse: float | None = None
    direction: float | None = None
    inside_80: float | None = None
    inside_95: float | None = None
    price_level: float | None = None
    """A typical close of the range: how many decimals its money needs ($0.20 stocks)."""

    def to_dict(self) -> dict:
        """A JSON-friendly dict (dates as ISO strings)."""
        values = asdict(self)
        values["start"], values["end"] = self.start.isoformat(), self.end.isoformat()
        values["alerts_opened"] = list(self.alerts_opened)
        return values

    def to_text(self) -> str:
        """A few lines for the terminal."""
        per = self.seconds / self.ran if self.ran else 0.0
        steps = ", ".join(
            f"{name} {seconds:.0f} s"
            for name, seconds in sorted(self.step_seconds.items(), key=lambda item: -item[1])
        )
        lines = [
            f"{self.ticker} backfill {self.start} .. {self.end} from {self.source}: "
            f"{self.ran} sessions run, {self.skipped} already stored, of {self.sessions}",
            f"  {self.seconds:.0f} s ({per:.1f} s a session): {steps or 'nothing ran'}",
            f"  models: {_counts(self.actions)}; served by: {_counts(self.served_by)}",
            f"  forecasts: {score_line(self)}",
            f"  alerts opened during the range: {len(self.alerts_opened) or 'none'}",
        ]
        lines += [f"    {line}" for line in self.alerts_opened]
        return "\n".join(lines)


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items())) or "-"


@task(cache_policy=NO_CACHE)
def sessions_in_range(job: TickerJob) -> list[dt.date]:
    """The sessions in [start, end] that the source has bars for, oldest first."""
    start, end = job.start, job.end
    frame = job.prices.fetch(job.ticker, start=start, as_of=end, adjust_splits=job.adjust_splits)
    return [day.date() for day in frame.index if start <= day.date() <= end]


@io_task
def stored_sessions(database_url: str, ticker: str, start: dt.date, end: dt.date) -> set[dt.date]:
    """As-of dates in the range that already have a served forecast."""
    with unit_of_work(get_engine(database_url)) as session:
        forecasts = read_predictions(session=session, ticker=ticker, kind="forecast")
    days = {day.date() for day in forecasts["as_of_date"]} if not forecasts.empty else set()
    return {day for day in days if start <= day <= end}


@dataclass
class _Tally:
    """What the sessions of a backfill came to, as they run."""

    actions: Counter = field(default_factory=Counter)
    served_by: Counter = field(default_factory=Counter)
    steps: Counter = field(default_factory=Counter)
    opened: list[str] = field(default_factory=list)
    ran: int = 0

    def add(self, day: dt.date, summary) -> str:
        """Count one session's summary; return its log line."""
        self.ran += 1
        self.actions[summary.action] += 1
        self.served_by[summary.served_by] += 1
        self.steps.update(summary.step_seconds)
        self.opened += [
            f"{day} {alert.severity} {alert.kind}: {alert.message}"
            for alert in summary.alerts
            if alert.is_new
        ]
        line = f"{day}: {summary.action}, {summary.served_by} serves "
        return line + money(summary.predicted_close, like=summary.base_close)


def backfill_range(
    job: TickerJob, settings: Settings, flow_run_id: str | None, run_day: RunDay
) -> tuple[BackfillSummary, pd.DataFrame]:
    """One ticker's sessions in order, each one ``run_day`` (`flows.pipeline.forecast_day`);
    what the range came to, and its served forecasts with the closes that arrived."""
    ticker, start, end = job.ticker, job.start, job.end
    sessions = sessions_in_range(job)
    if not sessions:
        raise BackfillError(f"{job.source} has no {ticker} sessions from {start} to {end}")
    title = f"{ticker} backfill {start} .. {end}"
    progress = create_progress_artifact(
        0.0,
        key=f"{ticker.lower()}-backfill-progress",
        description=f"{title}: {len(sessions)} sessions",
    )
    started, tally = time.perf_counter(), _Tally()
    # The caller holds the ticker's slot (`flows.ticker.run_ticker`): the ticker's daily runs
    # wait meanwhile. The fits make no progress cards of their own: the backfill's one bar
    # says which session it is on.
    with without_training_cards():
        # Read in the slot: a run that held it before may have stored sessions meanwhile.
        done = set() if job.redo else stored_sessions(job.database_url, ticker, start, end)
        for index, day in _sessions_to_run(job, sessions, done, progress):
            try:
                summary, _ = run_day(job.on(day), settings, flow_run_id)
            except ACTIONABLE as error:
                raise BackfillError(
                    f"backfill of {ticker} stopped at {day}: {error} (the {index - 1} sessions "
                    "before it are stored; fix the cause and rerun the same command to continue)"
                ) from error
            get_run_logger().info("%d/%d %s", index, len(sessions), tally.add(day, summary))
    accuracy = range_accuracy(job.database_url, ticker, start, end)
    result = _summarize(job, sessions, tally, started, accuracy)
    finished = f"{title}: finished, {result.ran} sessions run, {result.skipped} already stored"
    update_progress_artifact(progress, 100.0, finished)
    return result, accuracy


def _summarize(
    job: TickerJob, sessions: list[dt.date], tally: _Tally, started: float, accuracy: pd.DataFrame
) -> BackfillSummary:
    """What the range came to: counts, time per step, alerts opened, how its forecasts scored."""
    return BackfillSummary(
        ticker=job.ticker,
        source=job.source,
        start=job.start,
        end=job.end,
        sessions=len(sessions),
        ran=tally.ran,
        skipped=len(sessions) - tally.ran,
        actions=dict(tally.actions),
        served_by=dict(tally.served_by),
        seconds=time.perf_counter() - started,
        step_seconds={name: round(value, 2) for name, value in tally.steps.items()},
        alerts_opened=tuple(tally.opened),
        **scores(accuracy),
    )


def _sessions_to_run(
    job: TickerJob, sessions: list[dt.date], done: set[dt.date], progress
) -> Iterator[tuple[int, dt.date]]:
    """The sessions not stored yet, in order, numbered; the progress bar follows them."""
    shown = -1
    for index, day in enumerate(sessions, start=1):
        if day in done:
            continue
        # At most one update a percent: each update is an event in the UI's feed.
        if (percent := 100 * (index - 1) // len(sessions)) != shown:
            shown = percent
            where = f"{job.ticker} backfill: session {index} of {len(sessions)} ({day})"
            update_progress_artifact(progress, float(percent), where)
        yield index, day


@io_task
def range_accuracy(database_url: str, ticker: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """The range's served forecasts with the closes that arrived, oldest first."""
    with unit_of_work(get_engine(database_url)) as session:
        frame = read_forecast_accuracy(session=session, ticker=ticker, since=start)
    if frame.empty:
        return frame
    as_of = pd.to_datetime(frame["as_of_date"]).dt.date
    return frame[as_of <= end].reset_index(drop=True)


def scores(accuracy: pd.DataFrame) -> dict:
    """How the range's realized forecasts scored (BackfillSummary's fields)."""
    if accuracy.empty:
        return {}
    level = float(accuracy["base_close"].astype(float).median())
    realized = accuracy.dropna(subset=["actual_close"])
    if realized.empty:
        return {"price_level": level}

    def share(column: str) -> float | None:
        values = realized[column].dropna().astype(float)
        return float(values.mean()) if len(values) else None

    return {
        "realized": len(realized),
        "rmse": math.sqrt(float((realized["error"].astype(float) ** 2).mean())),
        "naive_rmse": math.sqrt(float((realized["naive_error"].astype(float) ** 2).mean())),
        "direction": share("direction_hit"),
        "inside_80": share("inside_80"),
        "inside_95": share("inside_95"),
        "price_level": level,
    }
