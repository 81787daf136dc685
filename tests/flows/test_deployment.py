"""The deployment as code, prefect.yaml and the Dockerfile agree and are fit for a work pool."""

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from prefect.cli.deploy._models import PrefectYamlModel

from flows.deployment import (
    CONCURRENCY,
    DAILY_CRON,
    DEPLOYMENT_NAME,
    FLEET_DEPLOYMENT_NAME,
    FLEET_FLOW_NAME,
    FLOW_NAME,
    SERVED_DEPLOYMENT_NAME,
    SERVED_FLEET_DEPLOYMENT_NAME,
    TAGS,
    TIMEZONE,
    daily_schedule,
    default_parameters,
    deployment_name,
    deployment_options,
    fleet_deployment_options,
)

ROOT = Path(__file__).resolve().parents[2]


def test_schedule_runs_after_the_us_close_on_weekdays_in_new_york():
    schedule = daily_schedule()
    assert schedule.cron == DAILY_CRON == "30 18 * * 1-5"
    assert schedule.timezone == TIMEZONE == "America/New_York"
    assert daily_schedule("0 19 * * 1-5").cron == "0 19 * * 1-5"
    assert CONCURRENCY.limit == 1
    assert default_parameters() == {
        "ticker": "NVDA",
        "source": "yahoo",
        "as_of": None,
        "mode": "auto",
    }


def test_the_work_pool_and_serve_register_a_deployment_each_per_ticker():
    assert DEPLOYMENT_NAME == deployment_name("NVDA") == "nvda-daily"
    assert SERVED_DEPLOYMENT_NAME == deployment_name("NVDA", served=True) == "nvda-daily-served"
    assert deployment_options("AMD")["name"] == "amd-daily"
    assert deployment_options("AMD", served=True)["name"] == "amd-daily-served"
    assert deployment_options("AMD")["parameters"]["ticker"] == "AMD"
    served, pooled = deployment_options(served=True), deployment_options()
    same = ("parameters", "tags", "description")
    assert [served[key] for key in same] == [pooled[key] for key in same]
    assert [s.cron for s in served["schedules"]] == [s.cron for s in pooled["schedules"]]
    assert (FLEET_FLOW_NAME, FLEET_DEPLOYMENT_NAME) == ("fleet-forecast", "fleet-daily")
    assert SERVED_FLEET_DEPLOYMENT_NAME == "fleet-daily-served"
    assert fleet_deployment_options(["NVDA"])["name"] == FLEET_DEPLOYMENT_NAME
    assert fleet_deployment_options(["NVDA"], served=True)["name"] == SERVED_FLEET_DEPLOYMENT_NAME
    # deploy.py takes the pool's name from deployment_options, prefect.yaml spells it (below).
    assert (
        "deployment_options(args.ticker, args.source, args.cron)"
        in (ROOT / "deployments" / "deploy.py").read_text()
    )


def test_prefect_yaml_is_valid_and_matches_the_deployment_in_code():
    text = (ROOT / "deployments" / "prefect.yaml").read_text()
    raw = yaml.safe_load(text)
    project = PrefectYamlModel.model_validate(raw)
    # One deployment: a second one would add a second 18:30 run of the same job.
    # The work pool's name, never the one `serve` registers (serve would take it over).
    assert [d.name for d in project.deployments] == [DEPLOYMENT_NAME] != [SERVED_DEPLOYMENT_NAME]
    # Nothing of the deploying machine is recorded (its $HOME was, once): no pull step at all.
    assert raw["pull"] == [] and "pull" not in raw["deployments"][0]
    assert "{{" not in yaml.safe_dump(raw)  # no templates (the comments may say why)
    for deployment in project.deployments:
        assert deployment.entrypoint == "flows.daily:daily_forecast"
        assert deployment.parameters == default_parameters()
        assert deployment.tags == TAGS
        (schedule,) = deployment.schedules
        assert (schedule.cron, schedule.timezone) == (DAILY_CRON, TIMEZONE)
        assert deployment.concurrency_limit.limit == CONCURRENCY.limit
        assert (
            deployment.concurrency_limit.collision_strategy == CONCURRENCY.collision_strategy.value
        )
        assert deployment.work_pool.name == "nvda-forecast-process"
        assert deployment.paused is False  # deploying switches the schedule on


def test_prefect_yaml_entrypoint_imports_the_flow():
    from prefect.flows import load_flow_from_entrypoint

    flow = load_flow_from_entrypoint("flows.daily:daily_forecast", use_placeholder_flow=False)
    assert flow.name == "daily-forecast"


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def test_dockerfile_pins_its_base_runs_as_non_root_and_installs_like_the_readme():
    dockerfile = (ROOT / "Dockerfile").read_text()
    instructions = _instructions(dockerfile)
    (base,) = [argument for name, argument in instructions if name == "FROM"]
    # A full version tag (or a digest), never `latest` or a bare minor version.
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    # Where a registry is reached the digest pins it too: shown beside the FROM line.
    assert re.search(rf"FROM {re.escape(base)}@sha256:[0-9a-f]{{64}}", dockerfile)
    users = [argument for name, argument in instructions if name == "USER"]
    assert users and users[-1] not in ("root", "0")
    (health,) = [argument for name, argument in instructions if name == "HEALTHCHECK"]
    assert health.endswith('CMD ["python", "-m", "flows.health"]')
    installs = [
        argument for name, argument in instructions if name == "RUN" and "pip install" in argument
    ]
    assert installs == ["python -m pip install ."]
    readme = (ROOT / "README.md").read_text()
    assert "python -m pip install ." in readme
    # What the image copies is what the package needs, and no secrets.
    copied = " ".join(argument for name, argument in instructions if name == "COPY")
    for package in ("forecasting", "db", "flows", "pyproject.toml"):
        assert package in copied
    assert not any(
        name in ("ARG", "ENV") and "PASSWORD" in argument.upper() for name, argument in instructions
    )
    assert "DATABASE_URL" not in " ".join(
        argument for name, argument in instructions if name == "ENV"
    )


def test_console_script_points_at_the_cli():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["nvda-forecast"] == "flows.presentation.cli:main"


def test_dockerignore_keeps_the_build_context_small():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for heavy in (".git", ".venv", "tests", ".nvda-forecast", "*.keras", "*.db"):
        assert heavy in ignored


def _deployments(client):
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    return client.read_deployments(flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])))


@pytest.mark.slow
def test_deploy_py_and_prefect_deploy_register_one_deployment_with_no_deploy_time_folder(
    prefect_server, tmp_path
):
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.settings import PREFECT_API_URL

    from flows.concurrency import ticker_limit_name

    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    environment.update(
        PREFECT_API_URL=PREFECT_API_URL.value(),
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        PYTHONPATH=str(ROOT),
        HOME=str(tmp_path / "deployer-home"),
    )
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="nvda-forecast-process", type="process"))
    commands = [
        [sys.executable, str(ROOT / "deployments" / "deploy.py"), "--work-pool",
         "nvda-forecast-process"],
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--name", DEPLOYMENT_NAME],
    ]  # fmt: skip
    for command in commands:
        done = subprocess.run(
            command,
            cwd=ROOT / "deployments",
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        # No TensorFlow line at error level while the flow is imported to be deployed.
        for noise in ("cuInit", "E0000 ", "use_unbounded_threadpool"):
            assert noise not in done.stdout + done.stderr
        with get_client(sync_client=True) as client:
            # Only the pool's: a served one (another test's `-served`) is another deployment.
            (deployment,) = [d for d in _deployments(client) if d.name == DEPLOYMENT_NAME]
            limit = client.read_global_concurrency_limit_by_name(ticker_limit_name("NVDA"))
            # Paused (as `serve` of the same name once left it): deploying again resumes it.
            client.pause_deployment(deployment.id)
        assert deployment.paused is False
        assert deployment.work_pool_name == "nvda-forecast-process"
        assert len(deployment.schedules) == 1
        assert deployment.global_concurrency_limit.limit == 1
        assert deployment.concurrency_options.collision_strategy == "ENQUEUE"
        assert deployment.entrypoint in ("flows.daily.daily_forecast", "flows.daily:daily_forecast")
        assert not deployment.pull_steps and not deployment.path
        assert str(tmp_path) not in deployment.model_dump_json()
        assert limit.limit == 1
    with get_client(sync_client=True) as client:  # leave the session's server as it was
        client.delete_deployment(deployment.id)
        client.delete_work_pool("nvda-forecast-process")


# --- serve and the work pool's deployment (issue 26, part 2) ---------------------------------

POOL = "issue26-serve-pool"


@pytest.fixture
def served_then_stopped(monkeypatch):
    """`serve` as the CLI runs it, but its runner stops as soon as it has started: the
    registration and the shutdown (which pauses what the runner served) are Prefect's own, only
    the polling loop in between is left out."""
    from prefect.runner import Runner

    async def start_and_stop(self, run_once=False, webserver=None):
        async with self:
            pass

    monkeypatch.setattr(Runner, "start", start_and_stop)


def _deployment_ids() -> set:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return {deployment.id for deployment in client.read_deployments()}


@pytest.fixture
def pool_deployments(prefect_server):
    """Register deployments on a process work pool as deploy.py does; remove them (and whatever
    a test served) afterwards, leaving the session's server as it was."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    before = _deployment_ids()
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=POOL, type="process"), overwrite=True)

    def register(flow, options: dict):
        deployment = flow.to_deployment(
            **options, concurrency_limit=CONCURRENCY, work_pool_name=POOL
        )
        return deployment.apply(work_pool_name=POOL)

    yield register
    with get_client(sync_client=True) as client:
        for deployment_id in _deployment_ids() - before:
            client.delete_deployment(deployment_id)
        client.delete_work_pool(POOL)


def _read(name: str):
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(name)


def _served_with(flow_name: str, source: str):
    """The deployments of ``flow_name`` that a test served (with ``source``), by name."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        deployments = client.read_deployments(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name]))
        )
    return {d.name: d for d in deployments if d.parameters.get("source") == source}


def test_stopping_serve_leaves_the_work_pool_deployment_scheduled_and_on_its_pool(
    pool_deployments, served_then_stopped
):
    from flows.daily import daily_forecast
    from flows.deployment import serve

    pool_id = pool_deployments(daily_forecast, deployment_options("NVDA", "yahoo"))
    serve(ticker="NVDA", source="sample")

    production = _read(f"{FLOW_NAME}/{DEPLOYMENT_NAME}")
    assert production.id == pool_id
    # Serve took it over once: moved it off the pool (its worker logged nothing) and paused it.
    assert production.work_pool_name == POOL
    assert production.paused is False
    assert production.parameters["source"] == "yahoo"
    assert [s.schedule.cron for s in production.schedules] == [DAILY_CRON]
    assert all(s.active for s in production.schedules)
    # serve registered (and, stopped, paused) a deployment of its own, under another name.
    (served,) = _served_with(FLOW_NAME, "sample").values()
    assert served.name == SERVED_DEPLOYMENT_NAME != DEPLOYMENT_NAME and served.id != pool_id
    assert served.work_pool_name is None and served.paused is True


def test_serve_refuses_to_take_over_a_deployment_of_a_work_pool(
    pool_deployments, served_then_stopped
):
    from flows.daily import daily_forecast
    from flows.deployment import ServeTakeoverError, serve

    # A deployment on a pool under the served name (e.g. `prefect deploy --name nvda-daily-served`).
    pool_id = pool_deployments(daily_forecast, deployment_options("NVDA", "yahoo", served=True))
    with pytest.raises(ServeTakeoverError) as refused:
        serve(ticker="NVDA", source="sample")
    message = str(refused.value)
    assert "\n" not in message
    assert f"'{FLOW_NAME}/{SERVED_DEPLOYMENT_NAME}' belongs to work pool '{POOL}'" in message
    assert "prefect deployment delete" in message
    untouched = _read(f"{FLOW_NAME}/{SERVED_DEPLOYMENT_NAME}")
    assert (untouched.id, untouched.work_pool_name, untouched.paused) == (pool_id, POOL, False)
    assert untouched.parameters["source"] == "yahoo"


def test_stopping_a_served_fleet_leaves_the_work_pool_fleet_deployment_alone(
    flow_settings, pool_deployments, served_then_stopped
):
    from flows.deployment import serve_fleet
    from flows.fleet import fleet_forecast

    assert fleet_forecast.name == FLEET_FLOW_NAME
    pool_id = pool_deployments(fleet_forecast, fleet_deployment_options(["NVDA", "AVGO"]))
    serve_fleet(tickers=["NVDA"], source="sample")

    production = _read(f"{FLEET_FLOW_NAME}/{FLEET_DEPLOYMENT_NAME}")
    assert (production.id, production.work_pool_name, production.paused) == (pool_id, POOL, False)
    assert production.parameters["tickers"] == ["NVDA", "AVGO"]
    (served,) = _served_with(FLEET_FLOW_NAME, "sample").values()
    assert served.name == SERVED_FLEET_DEPLOYMENT_NAME
    assert served.work_pool_name is None and served.paused is True


def test_serving_again_resumes_the_served_deployment_it_paused(
    pool_deployments, served_then_stopped, monkeypatch
):
    from flows.deployment import serve

    serve(ticker="NVDA", source="sample")
    assert _read(f"{FLOW_NAME}/{SERVED_DEPLOYMENT_NAME}").paused is True
    # The next `serve` registers it again: its schedule is on while it runs.
    from prefect.runner import Runner

    seen = []

    async def look_then_stop(self, run_once=False, webserver=None):
        seen.append(_read(f"{FLOW_NAME}/{SERVED_DEPLOYMENT_NAME}").paused)

    monkeypatch.setattr(Runner, "start", look_then_stop)
    serve(ticker="NVDA", source="sample")
    assert seen == [False]


def test_the_serve_command_says_in_one_line_that_it_will_not_take_over_a_pool_deployment(
    pool_deployments, capsys
):
    from flows.daily import daily_forecast
    from flows.presentation.cli import main

    pool_deployments(daily_forecast, deployment_options("NVDA", "yahoo", served=True))
    assert main(["serve", "--source", "sample"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(
        f"error: deployment '{FLOW_NAME}/{SERVED_DEPLOYMENT_NAME}' belongs to work pool '{POOL}'"
    )
    assert _read(f"{FLOW_NAME}/{SERVED_DEPLOYMENT_NAME}").work_pool_name == POOL
