"""`nvda-forecast serve` for real: a served deployment's run completes and stores its forecast."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from db.engine import dispose_engines, get_engine, unit_of_work
from db.models import Prediction
from flows.deployment import (
    CONCURRENCY,
    DEPLOYMENT_NAME,
    FLEET_FLOW_NAME,
    FLOW_NAME,
    SERVED_DEPLOYMENT_NAME,
    SERVED_FLEET_DEPLOYMENT_NAME,
    deployment_options,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SERVE = [sys.executable, "-m", "flows.presentation.cli", "serve", "--source", "sample"]


def _serve(tmp_path: Path, *options: str) -> subprocess.Popen:
    """``serve --source sample`` (and ``options``) started in ``tmp_path``, not the checkout (a
    served run must not depend on the caller's folder), with this test's settings
    (flow_settings put them in os.environ) and the test API; stdout and stderr in one pipe."""
    from prefect.settings import PREFECT_API_URL

    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    environment.update(
        PREFECT_API_URL=PREFECT_API_URL.value(),
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PYTHONPATH=str(ROOT),
    )
    return subprocess.Popen(
        [*SERVE, *options],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_deployment(
    client, process: subprocess.Popen, deadline: float, flow_name: str = FLOW_NAME
):
    """The deployment of ``flow_name`` that serve registered (with ``--source sample``),
    whatever its name."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"serve exited with {process.returncode}: {process.stdout.read()}")
        deployments = client.read_deployments(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name]))
        )
        # serve's own registration (the session's server may hold others from other tests).
        served = [d for d in deployments if d.parameters.get("source") == "sample"]
        if served:
            (deployment,) = served
            return deployment
        time.sleep(1)
    pytest.fail("serve did not register the deployment within its deadline")


def _run_to_completion(client, deployment_id, parameters: dict, deadline: float):
    """Start a run of the deployment, wait for its end, and fail with its logs unless it
    completed."""
    run = client.create_flow_run_from_deployment(deployment_id, parameters=parameters)
    state = None
    while time.monotonic() < deadline:
        state = client.read_flow_run(run.id).state
        if state is not None and state.is_final():
            break
        time.sleep(1)
    logs = client.read_logs()
    assert state is not None and state.is_completed(), (
        f"served run ended {state and state.name}: {state and state.message}; "
        + " | ".join(log.message for log in logs if log.flow_run_id == run.id)[-2000:]
    )
    return run


def _stop(process: subprocess.Popen) -> str:
    """Ctrl-C to serve, as a user would; its terminal output."""
    process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output


def test_a_served_deployment_runs_to_completion_and_stores_the_forecast(flow_settings, tmp_path):
    from prefect import get_client

    process = _serve(tmp_path)
    try:
        deadline = time.monotonic() + 240
        with get_client(sync_client=True) as client:
            deployment = _wait_for_deployment(client, process, deadline)
            assert deployment.name == SERVED_DEPLOYMENT_NAME
            assert deployment.schedules[0].schedule.cron == "30 18 * * 1-5"
            run = _run_to_completion(client, deployment.id, {"as_of": "2004-12-31"}, deadline)
    finally:
        output = _stop(process)
    with unit_of_work(get_engine(flow_settings)) as session:
        predictions = session.scalars(select(Prediction)).all()
    dispose_engines()
    (forecast,) = [p for p in predictions if p.kind == "forecast"]
    assert (forecast.as_of_date.isoformat(), forecast.target_date.isoformat()) == (
        "2004-12-31",
        "2005-01-03",
    )
    # The forecast and the test window's predictions, all written by the served run.
    assert {p.flow_run_id for p in predictions} == {str(run.id)}
    # No TensorFlow line at error level in the serve terminal (the run's process included).
    for noise in ("cuInit", "use_unbounded_threadpool", "E0000 "):
        assert noise not in output, output


def test_a_served_many_ticker_deployment_runs_every_ticker(flow_settings, tmp_path):
    from prefect import get_client

    process = _serve(tmp_path, "--tickers", "NVDA,AVGO")
    try:
        deadline = time.monotonic() + 300
        with get_client(sync_client=True) as client:
            deployment = _wait_for_deployment(client, process, deadline, FLEET_FLOW_NAME)
            assert deployment.name == SERVED_FLEET_DEPLOYMENT_NAME
            assert deployment.parameters["tickers"] == ["NVDA", "AVGO"]
            # As the API sends a scheduled run's parameters: JSON, the date as text. (It failed
            # validation while flows/fleet.py had `from __future__ import annotations`.)
            run = _run_to_completion(client, deployment.id, {"as_of": "2025-02-11"}, deadline)
    finally:
        _stop(process)
    with unit_of_work(get_engine(flow_settings)) as session:
        forecasts = session.scalars(select(Prediction).where(Prediction.kind == "forecast")).all()
    dispose_engines()
    assert sorted((f.ticker, f.as_of_date.isoformat()) for f in forecasts) == [
        ("AVGO", "2025-02-11"),
        ("NVDA", "2025-02-11"),
    ]
    assert {f.flow_run_id for f in forecasts} == {str(run.id)}


def test_serve_leaves_the_work_pool_deployment_alone_and_sigterm_does_not_pause_it(
    flow_settings, tmp_path
):
    """Issue 26: serve registered the pool's `nvda-daily` itself, ran its runs, and a SIGTERM to
    serve paused it, switching the production schedule off without a word."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    from flows.daily import daily_forecast

    pool = "issue26-sigterm-pool"
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"), overwrite=True)
    pool_id = daily_forecast.to_deployment(
        **deployment_options(), concurrency_limit=CONCURRENCY, work_pool_name=pool
    ).apply(work_pool_name=pool)
    process = _serve(tmp_path)
    served_id = None
    try:
        with get_client(sync_client=True) as client:
            served = _wait_for_deployment(client, process, time.monotonic() + 240)
            served_id = served.id
            while_served = client.read_deployment(pool_id)
        process.send_signal(signal.SIGTERM)  # a scheduler's stop, `kill`, a container's end
        process.communicate(timeout=60)
        with get_client(sync_client=True) as client:
            after_stop = client.read_deployment(pool_id)
            served = client.read_deployment(served_id)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        with get_client(sync_client=True) as client:  # leave the session's server as it was
            for deployment_id in {pool_id, served_id} - {None}:
                client.delete_deployment(deployment_id)
            client.delete_work_pool(pool)
    for production in (while_served, after_stop):
        assert (production.name, production.work_pool_name) == (DEPLOYMENT_NAME, pool)
        assert production.parameters["source"] == "yahoo"
        assert production.paused is False
    assert served.name == SERVED_DEPLOYMENT_NAME != DEPLOYMENT_NAME and served.id != pool_id
    # serve's own deployment is on no pool. Whether Prefect's runner pauses it on the way out
    # depends on how far its start-up got before the SIGTERM (a CI run stopped it first), so
    # only the pool's deployment, which must never be paused, is held to that.
    assert served.work_pool_name is None
