"""Many tickers in one flow run: one task per ticker, on the local or a Dask task runner.

`nvda-forecast run --tickers NVDA,AVGO,QCOM` (or `--watchlist FILE`, or the setting
``NVDA_FORECAST_TICKERS``) starts one parent flow run, ``fleet-forecast``, that maps the task
``forecast-ticker`` over the tickers; `nvda-forecast backfill` with tickers does the same with
``backfill-ticker``. Each ticker's task runs exactly the single-ticker pipeline
(`flows.ticker.run_ticker` on its :class:`flows.job.TickerJob`) and writes the same rows.

Why tasks and not subflows: a subflow runs in its parent's process, so only tasks reach the task
runner's workers. With ``--task-runner dask`` each ticker's pipeline runs on a Dask worker
process (its nested tasks with it), on this machine or a cluster; with ``local`` the tickers run
one after another in this process, which already gives TensorFlow every core.

Isolation: a ticker's task fails on its own (a bad file, a history too short, a download error);
the parent waits for all of them, opens a pipeline alert for each failed ticker, lists every
outcome in its summary, and ends Failed, naming the failed tickers, if any failed. What crosses
the task boundary is plain data (:class:`TickerJob` in, the run summary out): a Dask worker
opens its own database engine from the URL.
"""

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.states import Failed, State
from prefect.task_runners import TaskRunner

from flows.concurrency import tickers_held
from flows.errors import ACTIONABLE
from flows.failures import report_failed_run
from flows.job import TickerJob, jobs_for
from flows.report.artifacts import alerts_status, fleet_table
from flows.report.money import money
from flows.run_names import (
    backfill_task_name,
    fleet_backfill_run_name,
    fleet_day_name,
    fleet_forecast_run_name,
    rename_flow_run,
    ticker_task_name,
)
from flows.sessions import BackfillSummary
from flows.settings import get_settings
from flows.summary import RunSummary
from flows.task_runners import default_task_runner, runner_name, this_api_for_tasks
from flows.ticker import run_ticker
from forecasting.errors import one_line
from forecasting.policy import Mode


@dataclass(frozen=True)
class TickerOutcome:
    """One ticker's part of a many-ticker run: its summary, or its one-line error."""

    ticker: str
    summary: RunSummary | BackfillSummary | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        """One line for the terminal and the parent run's table."""
        if not self.ok:
            return f"{self.ticker}: FAILED {self.error}"
        summary = self.summary
        if isinstance(summary, BackfillSummary):
            return (
                f"{self.ticker}: {summary.ran} sessions run, {summary.skipped} already stored "
                f"({summary.seconds:.0f} s)"
            )
        alerts = f"; {alerts_status(summary.alerts)}" if summary.alerts else ""
        return (
            f"{self.ticker}: {summary.served_by} serves "
            f"{money(summary.predicted_close, like=summary.base_close)} for "
            f"{summary.target_date} ({summary.action}, model {summary.outcome}){alerts}"
        )


@dataclass(frozen=True)
class FleetSummary:
    """What a many-ticker run did: every ticker's outcome, in the order asked for."""

    outcomes: tuple[TickerOutcome, ...]
    task_runner: str
    seconds: float
    flow_run_id: str | None = None
    failed: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "failed", tuple(o.ticker for o in self.outcomes if not o.ok))

    def to_text(self) -> str:
        good = len(self.outcomes) - len(self.failed)
        head = (
            f"{good} of {len(self.outcomes)} tickers done in {self.seconds:.0f} s "
            f"({self.task_runner} task runner)"
        )
        return "\n".join([head, *(f"  {outcome.line()}" for outcome in self.outcomes)])

    def to_dict(self) -> dict:
        """JSON-friendly: each ticker's summary as its own ``to_dict``."""
        values = asdict(self)
        values["outcomes"] = [
            {
                "ticker": outcome.ticker,
                "ok": outcome.ok,
                "error": outcome.error,
                "summary": outcome.summary.to_dict() if outcome.summary else None,
            }
            for outcome in self.outcomes
        ]
        return values


@task(name="forecast-ticker", task_run_name=ticker_task_name, cache_policy=NO_CACHE)
def forecast_ticker(job: TickerJob, parent_run_id: str | None) -> RunSummary | BackfillSummary:
    """One ticker's part of a many-ticker run: `run_ticker` on its job, as
    `nvda-forecast run --ticker` (or `backfill --ticker`) would run it."""
    return run_ticker(job, parent_run_id)


backfill_one = forecast_ticker.with_options(
    name="backfill-ticker", task_run_name=backfill_task_name
)


def _collect(
    futures: Sequence[PrefectFuture], jobs: Sequence[TickerJob], run_id: str | None
) -> list[TickerOutcome]:
    """Wait for every ticker; a failed one becomes its error line and its pipeline alert."""
    logger = get_run_logger()
    outcomes = []
    for job, future in zip(jobs, futures, strict=True):
        future.wait()
        state = future.state
        if state.is_completed():
            outcomes.append(TickerOutcome(job.ticker, summary=future.result()))
            continue
        error = state.result(raise_on_failure=False)
        if not isinstance(error, BaseException):
            error = RuntimeError(state.message or state.name)
        logger.error("%s failed: %s", job.ticker, describe(error))
        report_failed_run(
            ticker=job.ticker,
            as_of=job.as_of or job.end,
            error=error,
            flow_run_id=run_id,
            database_url=job.database_url,
        )
        outcomes.append(TickerOutcome(job.ticker, error=describe(error)))
    return outcomes


def describe(error: BaseException) -> str:
    """A failed ticker's error in one line: ours as they are, others with their type named."""
    if isinstance(error, ACTIONABLE) and str(error).strip():
        return str(error).strip().splitlines()[0]
    return one_line(error)


def _finish(outcomes: list[TickerOutcome], started: float, what: str) -> FleetSummary | State:
    summary = FleetSummary(
        tuple(outcomes),
        task_runner=runner_name(),
        seconds=round(time.perf_counter() - started, 1),
        flow_run_id=flow_run.id,
    )
    # Each ticker's forecast, 95% interval and open alerts: "ok" only with none open.
    create_table_artifact(
        fleet_table(outcomes),
        key=f"fleet-{what}",
        description=f"{what}: {summary.to_text().splitlines()[0]}",
    )
    days = sorted({o.summary.as_of for o in outcomes if isinstance(o.summary, RunSummary)})
    if what == "forecast" and days and flow_run.parameters.get("as_of") is None:
        # A live run learns its as-of dates from the data: "NVDA, AVGO 2025-02-11" (or a span
        # when the tickers' data end on different days).
        name = fleet_day_name([o.ticker for o in outcomes], days[0])
        rename_flow_run(flow_run.id, name + (f"..{days[-1]}" if len(days) > 1 else ""))
    if summary.failed:
        # The parent run shows Failed in the UI, naming the tickers; the summary stays its data.
        return Failed(
            message=f"{len(summary.failed)} of {len(outcomes)} tickers failed: "
            + ", ".join(summary.failed),
            data=summary,
        )
    return summary


@flow(
    name="fleet-forecast",
    flow_run_name=fleet_forecast_run_name,
    timeout_seconds=6 * 3600,
    task_runner=default_task_runner(),
)
def fleet_forecast(
    tickers: list[str],
    source: str = "yahoo",
    as_of: dt.date | None = None,
    mode: Mode = "auto",
    adjust_splits: bool = False,
) -> FleetSummary:
    """The daily run for many tickers: one ``forecast-ticker`` task each."""
    options = {"as_of": as_of, "mode": mode, "adjust_splits": adjust_splits}
    return _fan_out(forecast_ticker, "forecast", tickers, source, **options)


@flow(
    name="fleet-backfill",
    flow_run_name=fleet_backfill_run_name,
    timeout_seconds=24 * 3600,
    task_runner=default_task_runner(),
)
def fleet_backfill(
    tickers: list[str],
    source: str = "yahoo",
    start: dt.date | None = None,
    end: dt.date | None = None,
    mode: Mode = "auto",
    redo: bool = False,
    adjust_splits: bool = False,
) -> FleetSummary:
    """Backfill many tickers: tickers in parallel, sessions in order within each."""
    options = {"start": start, "end": end, "mode": mode, "redo": redo}
    options |= {"adjust_splits": adjust_splits, "span": "range"}
    return _fan_out(backfill_one, "backfill", tickers, source, **options)


def _fan_out(
    per_ticker, what: str, tickers: list[str], source: str, **options
) -> FleetSummary | State:
    """Map ``per_ticker`` over one job per ticker; every ticker's outcome, summarized (a Failed
    state carrying the summary when any ticker failed)."""
    started = time.perf_counter()
    jobs = jobs_for(tickers, source, get_settings().database_url, **options)
    parent = str(flow_run.id)
    with tickers_held([job.ticker for job in jobs]) as held:
        if not held:
            get_run_logger().info("another run holds one of the tickers: each waits for its own")
        jobs = [replace(job, slot_held=held) for job in jobs]
        with this_api_for_tasks():
            futures = per_ticker.map(jobs, parent_run_id=parent)
        outcomes = _collect(futures, jobs, parent)
    return _finish(outcomes, started, what)


def run_fleet(fleet_flow, runner: TaskRunner, **parameters) -> FleetSummary:
    """Run a fleet flow on ``runner``; the summary, whether or not some tickers failed."""
    state = fleet_flow.with_options(task_runner=runner)(**parameters, return_state=True)
    summary = state.result(raise_on_failure=False)
    if isinstance(summary, BaseException):
        raise summary
    return summary
