"""Many tickers in one run: one parent flow run, one task per ticker, local or on Dask.

The pipeline each ticker runs is the single-ticker one (tested in test_daily_flow.py); here the
fan-out is under test: the same rows as a single-ticker run, a failing ticker among good ones,
what crosses a task boundary, and a real Dask cluster of two worker processes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import cloudpickle
import pytest
from sqlalchemy import select

from db.engine import dispose_engines, get_engine, unit_of_work
from db.models import Alert, Prediction
from flows.backfill import BackfillSummary
from flows.daily import daily_forecast
from flows.fleet import FleetSummary, TickerOutcome, fleet_backfill, fleet_forecast, run_fleet
from flows.job import TickerJob
from flows.presentation.cli import main
from flows.run_names import day_name
from flows.settings import Settings
from flows.task_runners import build_task_runner, tensorflow_threads
from forecasting.errors import ConfigurationError, PriceFileError
from forecasting.prices.sources import load_prices
from forecasting.tickers import read_watchlist

# SQLite only: the per-ticker pipeline's PostgreSQL run is test_daily_flow.py's.

LAST_DAY = dt.date(2005, 6, 30)


@pytest.fixture
def price_files(tmp_path, write_yahoo_export) -> str:
    """``csv:.../{ticker}.csv`` for AAA and BBB (short NVDA histories) and CCC (malformed)."""
    bars = load_prices("sample", as_of=LAST_DAY)
    write_yahoo_export(bars, tmp_path / "AAA.csv")
    write_yahoo_export(bars.iloc[:-40], tmp_path / "BBB.csv")
    (tmp_path / "CCC.csv").write_text("this is not,a price file\n1,2\n")
    return f"csv:{tmp_path}/{{ticker}}.csv"


def served(url: str) -> dict[str, tuple[dt.date, float, str]]:
    with unit_of_work(get_engine(url)) as session:
        rows = session.scalars(select(Prediction).where(Prediction.kind == "forecast")).all()
        return {row.ticker: (row.as_of_date, row.predicted_close, row.flow_run_id) for row in rows}


def open_alerts(url: str) -> dict[str, list[str]]:
    with unit_of_work(get_engine(url)) as session:
        alerts = session.scalars(select(Alert).where(Alert.resolved_at.is_(None))).all()
        found: dict[str, list[str]] = {}
        for alert in alerts:
            found.setdefault(alert.ticker, []).append(f"{alert.kind}/{alert.metric}")
        return found


@pytest.mark.slow
def test_a_failing_ticker_does_not_stop_the_others_and_is_named(
    flow_settings, price_files, capsys, tmp_path, monkeypatch
):
    guarded = spy_on_ticker_guards(monkeypatch)
    code = main(["run", "--tickers", "aaa,BBB,ccc,aaa", "--source", price_files, "--json"])

    assert code == 1
    out, err = capsys.readouterr()
    # One line per failed ticker on stderr, naming it and what to do.
    assert err.splitlines() == [
        next(line for line in err.splitlines() if line.startswith("error: CCC: "))
    ]
    assert "CCC.csv" in err
    report = json.loads(out)
    assert [o["ticker"] for o in report["outcomes"]] == ["AAA", "BBB", "CCC"]  # duplicate dropped
    assert [o["ok"] for o in report["outcomes"]] == [True, True, False]
    assert report["failed"] == ["CCC"] and report["task_runner"] == "local"

    stored = served(flow_settings)
    assert sorted(stored) == ["AAA", "BBB"]
    assert stored["AAA"][0] == LAST_DAY and stored["BBB"][0] < LAST_DAY
    # Every ticker's rows point at the one parent flow run.
    assert stored["AAA"][2] == stored["BBB"][2] == report["flow_run_id"]
    assert open_alerts(flow_settings).get("CCC") == ["pipeline/flow_run_failed"]
    # The parent held every ticker's slot: no ticker's task took its own.
    assert guarded == []

    # The fleet's AAA is what a single-ticker run of AAA stores, to the cent.
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'single.db'}")
    from flows.settings import get_settings

    get_settings.cache_clear()
    alone = daily_forecast(ticker="AAA", source=price_files.replace("{ticker}", "AAA"))
    assert alone.predicted_close == pytest.approx(stored["AAA"][1], abs=0.005)


def spy_on_ticker_guards(monkeypatch) -> list[str]:
    """The tickers whose task took its own slot (flows/concurrency.py), in order."""
    import flows.concurrency

    guarded: list[str] = []
    real = flows.concurrency.ticker_guard

    def guard(ticker, **options):
        guarded.append(ticker)
        return real(ticker, **options)

    monkeypatch.setattr(flows.concurrency, "ticker_guard", guard)
    return guarded


@pytest.mark.slow
def test_a_ticker_another_run_holds_waits_alone_and_the_others_run(
    flow_settings, price_files, monkeypatch
):
    from flows.concurrency import ticker_guard
    from flows.settings import get_settings

    guarded = spy_on_ticker_guards(monkeypatch)
    # Long enough for AAA to outlast a back-off of Prefect's client on a busy test API (a 1 s
    # wait once failed AAA too), short enough for BBB's wait to end the test soon.
    monkeypatch.setenv("NVDA_FORECAST_TICKER_WAIT_SECONDS", "5")
    get_settings.cache_clear()
    with ticker_guard("BBB", timeout_seconds=60):  # a single-ticker run of BBB, meanwhile
        summary = run_fleet(
            fleet_forecast, build_task_runner("local"), tickers=["AAA", "BBB"], source=price_files
        )
    assert sorted(guarded) == ["AAA", "BBB"]
    assert [o.ok for o in summary.outcomes] == [True, False]
    assert summary.outcomes[1].error.startswith("BBB is still taken by another run after 5 s")
    assert sorted(served(flow_settings)) == ["AAA"]


@pytest.mark.slow
def test_everything_crossing_a_task_boundary_pickles(flow_settings, price_files):
    summary = run_fleet(
        fleet_forecast, build_task_runner("local"), tickers=["AAA", "CCC"], source=price_files
    )
    job = TickerJob("AAA", price_files.replace("{ticker}", "AAA"), flow_settings, LAST_DAY)
    backfilled = BackfillSummary("AAA", "sample", LAST_DAY, LAST_DAY, 1, 1, 0, {"retrain": 1})
    values = [job, summary, *summary.outcomes, summary.outcomes[0].summary, backfilled]
    values.append(PriceFileError("CCC.csv line 1: no Date column; export daily bars"))
    for value in values:
        copy = cloudpickle.loads(cloudpickle.dumps(value))
        assert type(copy) is type(value)
        assert copy == value if not isinstance(value, Exception) else copy.args == value.args
    assert isinstance(summary, FleetSummary) and summary.failed == ("CCC",)
    assert isinstance(summary.outcomes[1], TickerOutcome) and "CCC" in summary.outcomes[1].line()


@pytest.mark.slow
def test_a_many_ticker_backfill_runs_each_tickers_sessions_in_order(flow_settings, price_files):
    summary = run_fleet(
        fleet_backfill,
        build_task_runner("local"),
        tickers=["AAA", "BBB"],
        source=price_files,
        start=dt.date(2005, 4, 26),
        end=dt.date(2005, 4, 28),
    )
    assert summary.failed == ()
    ran = {o.ticker: (o.summary.ran, o.summary.actions) for o in summary.outcomes}
    assert ran == {"AAA": (3, {"retrain": 1, "finetune": 2}), "BBB": ran["BBB"]}
    assert ran["BBB"][0] == 3
    with unit_of_work(get_engine(flow_settings)) as session:
        days = session.execute(
            select(Prediction.ticker, Prediction.as_of_date).where(Prediction.kind == "forecast")
        ).all()
    assert sorted(days) == [
        (ticker, dt.date(2005, 4, day)) for ticker in ("AAA", "BBB") for day in (26, 27, 28)
    ]


@pytest.mark.slow
def test_a_real_dask_cluster_of_two_worker_processes(
    flow_settings, price_files, monkeypatch, tmp_path
):
    distributed = pytest.importorskip("distributed")
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        api_url = str(client.api_url).rstrip("/")
    # The workers inherit this process's environment (database, tiny training) at start.
    monkeypatch.setenv("PREFECT_API_URL", api_url)
    for name, value in tensorflow_threads(workers=2).items():
        monkeypatch.setenv(name, value)
    dispose_engines()
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        runner = build_task_runner("dask", address=cluster.scheduler_address)
        summary = run_fleet(
            fleet_forecast, runner, tickers=["AAA", "BBB", "CCC"], source=price_files
        )
        with distributed.Client(cluster) as client:
            workers = client.run(lambda: __import__("os").getpid())

    assert len(workers) == 2
    assert summary.task_runner == "dask"
    assert [o.ok for o in summary.outcomes] == [True, True, False]
    assert "CCC.csv" in summary.outcomes[2].error
    stored = served(flow_settings)
    assert sorted(stored) == ["AAA", "BBB"]
    assert stored["AAA"][2] == stored["BBB"][2] == summary.flow_run_id
    assert open_alerts(flow_settings).get("CCC") == ["pipeline/flow_run_failed"]
    # The workers reported their task runs to the parent's Prefect API.
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[summary.flow_run_id]))
        )
    names = {run.name for run in runs}
    assert {day_name(ticker, None) for ticker in ("AAA", "BBB", "CCC")} <= names

    # The workers' forecasts are this process's, bit for bit: the same days run on the local
    # runner into a fresh store give the same LSTM forecasts and intervals.
    from flows.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'local.db'}")
    monkeypatch.setenv("NVDA_FORECAST_ARTIFACT_ROOT", str(tmp_path / "local-artifacts"))
    get_settings.cache_clear()
    local = run_fleet(
        fleet_forecast, build_task_runner("local"), tickers=["AAA", "BBB"], source=price_files
    )
    for on_dask, here in zip(summary.outcomes[:2], local.outcomes, strict=True):
        fields = ("lstm_close", "lstm_lower_95", "lstm_upper_95", "predicted_close")
        mine = [getattr(here.summary, f) for f in fields]
        theirs = [getattr(on_dask.summary, f) for f in fields]
        assert mine == theirs, here.ticker


@pytest.mark.slow
def test_a_real_command_records_every_task_run_in_its_temporary_api(
    tmp_path, price_files, tiny_training
):
    """The temporary API batches its task-run writes (flows/api.py): a whole command, as cron
    starts it, still leaves every task run of the day recorded as completed when it exits."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "NVDA_FORECAST_", "DATABASE_URL"))
    }
    environment |= tiny_training | {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "NVDA_FORECAST_ARTIFACT_ROOT": str(tmp_path / "cli-artifacts"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    command = [sys.executable, "-m", "flows.presentation.cli", "run", "--tickers", "AAA,BBB"]
    done = subprocess.run(
        [*command, "--source", price_files, "--json"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    flow_run_id = json.loads(done.stdout)["flow_run_id"]

    with sqlite3.connect(tmp_path / "prefect" / "prefect.db") as prefect_db:
        runs = prefect_db.execute(
            "SELECT name, state_type FROM task_run WHERE flow_run_id = ?",
            (flow_run_id,),
        ).fetchall()
    names = [name for name, _ in runs]
    assert {day_name("AAA", None), day_name("BBB", None)} <= set(names)
    assert sum(name.startswith("serve") for name in names) == 2
    assert {state for _, state in runs} == {"COMPLETED"}, runs


@pytest.mark.slow
def test_a_worker_started_without_prefect_api_url_reports_to_the_runs_temporary_api(
    tmp_path, price_files, tiny_training, monkeypatch
):
    """A Dask worker started by hand with no PREFECT_API_URL, and a command on its temporary
    API: the worker used to start a temporary Prefect API of its own (one per worker process)
    that held the ticker's task runs and outlived a killed worker. The run hands its API to its
    tasks: the task runs are the command's, and no Prefect server runs under the worker."""
    distributed = pytest.importorskip("distributed")
    psutil = pytest.importorskip("psutil")
    # The worker's own environment: no Prefect API, a Prefect home of its own.
    for name in [name for name in os.environ if name.startswith("PREFECT_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "worker-prefect"))
    monkeypatch.setenv("NVDA_FORECAST_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    for name, value in (tiny_training | tensorflow_threads(workers=1)).items():
        monkeypatch.setenv(name, value)

    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "DATABASE_URL"))
    }
    environment |= {
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    command = [sys.executable, "-m", "flows.presentation.cli", "run", "--tickers", "AAA,BBB"]
    command += ["--source", price_files, "--task-runner", "dask", "--json"]
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        environment["NVDA_FORECAST_DASK_ADDRESS"] = cluster.scheduler_address
        done = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900)
        with distributed.Client(cluster) as client:
            servers = client.run(
                lambda: [
                    child.pid
                    for child in psutil.Process().children(recursive=True)
                    if "uvicorn" in " ".join(child.cmdline())
                ]
            )
    assert done.returncode == 0, done.stderr
    assert list(servers.values()) == [[]], "a Prefect server ran under the worker"
    flow_run_id = json.loads(done.stdout)["flow_run_id"]
    with sqlite3.connect(tmp_path / "prefect" / "prefect.db") as prefect_db:
        names = {
            name
            for (name,) in prefect_db.execute(
                "SELECT name FROM task_run WHERE flow_run_id = ?", (flow_run_id,)
            )
        }
    # Each ticker's task and its nested pipeline steps are the command's.
    assert all(any(ticker in name for name in names) for ticker in ("AAA", "BBB")), names
    assert sum(name.startswith("persist") for name in names) == 2, names
    assert not (tmp_path / "worker-prefect" / "prefect.db").exists()


def test_tickers_come_from_a_watchlist_file_or_the_setting(tmp_path, monkeypatch):
    watchlist = tmp_path / "semis.txt"
    watchlist.write_text("# semiconductors\nNVDA\n\n avgo  # Broadcom\nqcom\n")
    assert read_watchlist(watchlist) == ["NVDA", "avgo", "qcom"]
    (tmp_path / "empty.txt").write_text("# nothing yet\n")
    with pytest.raises(ConfigurationError, match="names no ticker; put one ticker a line"):
        read_watchlist(tmp_path / "empty.txt")
    with pytest.raises(ConfigurationError, match=r"cannot read the watchlist .*missing\.txt"):
        read_watchlist(tmp_path / "missing.txt")

    monkeypatch.setenv("NVDA_FORECAST_TICKERS", "NVDA, amd,AVGO")
    monkeypatch.setenv("NVDA_FORECAST_TASK_RUNNER", "dask")
    monkeypatch.setenv("NVDA_FORECAST_ALERT_WEBHOOK_URL", "https://hooks.example/T0/secret-token")
    settings = Settings()
    assert settings.tickers == ("NVDA", "amd", "AVGO") and settings.task_runner == "dask"
    assert "secret-token" not in repr(settings)
    assert settings.alert_webhook_url.get_secret_value().endswith("/secret-token")


def test_tensorflow_threads_split_the_cores_between_workers():
    assert tensorflow_threads(workers=2, cores=8)["TF_NUM_INTRAOP_THREADS"] == "4"
    assert tensorflow_threads(workers=4, cores=2)["TF_NUM_INTRAOP_THREADS"] == "1"
    assert tensorflow_threads(workers=1, cores=2) == {
        "TF_NUM_INTRAOP_THREADS": "2",
        "TF_NUM_INTEROP_THREADS": "2",
        "OMP_NUM_THREADS": "2",
    }


def test_the_task_runners_each_setting_names():
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from flows.task_runners import local_cluster, runner_for

    local = runner_for(Settings())
    assert isinstance(local, ThreadPoolTaskRunner) and local._max_workers == 1  # one at a time
    cluster = runner_for(Settings(task_runner="dask", dask_workers=3))
    assert isinstance(cluster, DaskTaskRunner) and cluster.address is None
    assert cluster.cluster_class is local_cluster and cluster.cluster_kwargs == {"n_workers": 3}
    remote = runner_for(Settings(task_runner="dask", dask_address="tcp://10.0.0.5:8786"), "dask")
    assert remote.address == "tcp://10.0.0.5:8786"
    assert isinstance(runner_for(Settings(task_runner="dask"), "local"), ThreadPoolTaskRunner)
    with pytest.raises(ConfigurationError, match="unknown task runner 'ray'"):
        build_task_runner("ray")
