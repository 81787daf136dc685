"""Many tickers in one flow run: one task per ticker, on the local or a Dask task runner.

`nvda-forecast run --tickers NVDA,AVGO,QCOM` (or `--watchlist FILE`, or the setting
``NVDA_FORECAST_TICKERS``) starts one parent flow run, ``fleet-forecast``, that maps the task
``forecast-ticker`` over the tickers; `nvda-forecast backfill` with tickers does the same with
``backfill-ticker``. Each ticker's task runs exactly the single-ticker pipeline
(`flows.pipeline.forecast_day`, or `flows.backfill.backfill_ticker`) and writes the same rows.

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
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, replace

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from prefect.states import Failed, State
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.backfill import BackfillSummary, backfill_ticker
from flows.concurrency import ticker_guard, tickers_held
from flows.errors import ACTIONABLE
from flows.pipeline import forecast_day
from flows.presentation.report import alerts_status, fleet_table, money, publish_report
from flows.run_names import (
    backfill_task_name,
    fleet_backfill_run_name,
    fleet_day_name,
    fleet_forecast_run_name,
    rename_flow_run,
    ticker_task_name,
)
from flows.settings import Settings, get_settings
from flows.summary import RunSummary
from flows.tasks import open_store
from flows.watch import report_failed_run
from forecasting.errors import ConfigurationError, one_line
from forecasting.policy import Mode
from forecasting.prices.sources import source_for_ticker
from forecasting.tickers import resolve_tickers

TASK_RUNNERS = ("local", "dask")


@dataclass(frozen=True)
class TickerJob:
    """What one ticker's task needs: plain values, so that it pickles to a Dask worker."""

    ticker: str
    source: str
    """The ``--source`` with ``{ticker}`` filled in."""
    database_url: str
    as_of: dt.date | None = None
    mode: Mode = "auto"
    adjust_splits: bool = False
    start: dt.date | None = None
    """Backfills only: the range, and whether to recompute stored sessions."""
    end: dt.date | None = None
    redo: bool = False
    slot_held: bool = False
    """Whether the parent run holds the ticker's slot (flows/concurrency.py); if not, the
    ticker's task waits for it."""


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


def tensorflow_threads(workers: int, cores: int | None = None) -> dict[str, str]:
    """Environment that gives each of ``workers`` processes its share of the cores.

    TensorFlow sizes its thread pools to every core of the machine by default; N workers on
    one machine would then run N times that many threads. TensorFlow reads these variables
    when it starts, so they are set before a worker imports it.
    """
    share = str(max(1, (cores or os.cpu_count() or 1) // max(1, workers)))
    return {
        "TF_NUM_INTRAOP_THREADS": share,
        "TF_NUM_INTEROP_THREADS": share,
        "OMP_NUM_THREADS": share,
    }


def build_task_runner(kind: str, *, address: str = "", workers: int = 0) -> TaskRunner:
    """The task runner of ``--task-runner``: ``local``, or ``dask`` (a scheduler or a cluster).

    ``local`` runs the tickers one at a time (TensorFlow already uses every core). ``dask``
    connects to ``address`` when given (the workers there set their own threads: see
    docs/fleet.md); otherwise it starts a ``distributed.LocalCluster`` of ``workers`` processes
    (default one per core) with one task thread each.
    """
    if kind == "local":
        return ThreadPoolTaskRunner(max_workers=1)
    if kind != "dask":
        raise ConfigurationError(f"unknown task runner {kind!r}; use one of {TASK_RUNNERS}")
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise ConfigurationError(
            "--task-runner dask needs the dask extra: pip install 'nvda-forecast[dask]'"
        ) from None
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_class=local_cluster, cluster_kwargs={"n_workers": workers or os.cpu_count() or 1}
    )


def local_cluster(*, n_workers: int, **options):
    """A LocalCluster of ``n_workers`` processes, one task thread each, sharing the cores.

    Started when the flow run starts (prefect-dask calls it then), so that its workers can be
    given the Prefect API this process reports to: the configured server, or the temporary one
    a CLI run started.
    """
    from distributed import LocalCluster

    environment = tensorflow_threads(n_workers) | {"PREFECT_API_URL": _api_url()}
    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env=environment,
        **options,
    )


def _api_url() -> str:
    """The Prefect API this process reports to, for worker processes to report to as well."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return str(client.api_url).rstrip("/")


@contextmanager
def this_api_for_tasks() -> Iterator[None]:
    """Tasks submitted meanwhile report to this run's Prefect API, wherever they run.

    A task sent to a Dask worker takes the submitting run's Prefect settings with it, and its
    client reads the API from them. A CLI run on its temporary API has none configured there
    (the client finds the temporary server itself), so a worker started by hand without
    ``PREFECT_API_URL`` used to start a temporary API of its own in each worker process: the
    ticker's task runs went there, not to the run, and the server outlived a killed worker.
    Naming the run's API in the settings the tasks take closes that, whatever the worker's
    environment holds.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: _api_url()}):
        yield


def runner_for(settings: Settings, kind: str | None = None) -> TaskRunner:
    """`build_task_runner` from the settings, ``kind`` (the command line) first."""
    return build_task_runner(
        kind or settings.task_runner, address=settings.dask_address, workers=settings.dask_workers
    )


@task(name="forecast-ticker", task_run_name=ticker_task_name, cache_policy=NO_CACHE)
def forecast_ticker(job: TickerJob, parent_run_id: str | None) -> RunSummary:
    """One ticker's daily run, as `nvda-forecast run --ticker` would do it."""
    settings = replace_database(get_settings(), job.database_url)
    database_url = open_store(job.database_url)
    with nullcontext() if job.slot_held else ticker_guard(job.ticker):
        summary, record = forecast_day(
            database_url,
            settings,
            ticker=job.ticker,
            source=job.source,
            as_of=job.as_of,
            mode=job.mode,
            flow_run_id=parent_run_id,
            adjust_splits=job.adjust_splits,
        )
    publish_report(summary, record)
    return summary


@task(name="backfill-ticker", task_run_name=backfill_task_name, cache_policy=NO_CACHE)
def backfill_one(job: TickerJob, parent_run_id: str | None) -> BackfillSummary:
    """One ticker's backfill, sessions in order, as `nvda-forecast backfill --ticker` does it."""
    settings = replace_database(get_settings(), job.database_url)
    return backfill_ticker(
        open_store(job.database_url),
        settings,
        ticker=job.ticker,
        source=job.source,
        start=job.start,
        end=job.end,
        mode=job.mode,
        redo=job.redo,
        adjust_splits=job.adjust_splits,
        flow_run_id=parent_run_id,
        guard=not job.slot_held,
    )


def replace_database(settings: Settings, database_url: str) -> Settings:
    """The worker's settings, pointed at the parent's database."""
    if settings.database_url == database_url:
        return settings
    return settings.model_copy(update={"database_url": database_url})


def jobs_for(tickers: Sequence[str], source: str, database_url: str, **options) -> list[TickerJob]:
    """One job per ticker, ``{ticker}`` filled into the source."""
    return [
        TickerJob(ticker, source_for_ticker(source, ticker), database_url, **options)
        for ticker in resolve_tickers(tickers)
    ]


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
        task_runner=_runner_name(),
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


def _runner_name() -> str:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    runner = context.task_runner if context else None
    return {"ThreadPoolTaskRunner": "local", "DaskTaskRunner": "dask"}.get(
        type(runner).__name__, type(runner).__name__
    )


def default_task_runner() -> TaskRunner:
    """The runner a deployment's run uses: the settings' (`run_fleet` callers choose theirs)."""
    try:
        return runner_for(get_settings())
    except ConfigurationError:  # the dask extra missing: the run says so when it starts
        return build_task_runner("local")


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
    return _fan_out(
        backfill_one, "backfill", tickers, source, adjust_splits=adjust_splits, **options
    )


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
