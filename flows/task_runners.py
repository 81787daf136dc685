"""Where a many-ticker run's tasks go: ``--task-runner local`` or ``dask`` (flows/fleet.py).

``local`` runs the tickers one at a time in this process (TensorFlow already uses every core);
``dask`` sends each ticker's task to a Dask worker process, on this machine (a LocalCluster
started with the flow run) or a cluster (``NVDA_FORECAST_DASK_ADDRESS``). Either way the tasks
report to the Prefect API of the run that submitted them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.api import api_url
from flows.settings import Settings, get_settings
from forecasting.errors import ConfigurationError

TASK_RUNNERS = ("local", "dask")


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

    environment = tensorflow_threads(n_workers) | {"PREFECT_API_URL": api_url()}
    return LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env=environment,
        **options,
    )


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

    with temporary_settings(updates={PREFECT_API_URL: api_url()}):
        yield


def runner_for(settings: Settings, kind: str | None = None) -> TaskRunner:
    """`build_task_runner` from the settings, ``kind`` (the command line) first."""
    return build_task_runner(
        kind or settings.task_runner, address=settings.dask_address, workers=settings.dask_workers
    )


def default_task_runner() -> TaskRunner:
    """The runner a deployment's run uses: the settings' (`run_fleet` callers choose theirs)."""
    try:
        return runner_for(get_settings())
    except ConfigurationError:  # the dask extra missing: the run says so when it starts
        return build_task_runner("local")


def runner_name() -> str:
    """``local`` or ``dask``: the task runner of the flow run in progress."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    runner = context.task_runner if context else None
    return {"ThreadPoolTaskRunner": "local", "DaskTaskRunner": "dask"}.get(
        type(runner).__name__, type(runner).__name__
    )
