"""The deployment as code, prefect.yaml and the Dockerfile agree and are fit for a work pool."""

import re
import tomllib
from pathlib import Path

import yaml
from prefect.cli.deploy._models import PrefectYamlModel

from flows.deployment import (
    CONCURRENCY,
    DAILY_CRON,
    DEPLOYMENT_NAME,
    TAGS,
    TIMEZONE,
    daily_schedule,
    default_parameters,
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


def test_prefect_yaml_is_valid_and_matches_the_deployment_in_code():
    raw = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    project = PrefectYamlModel.model_validate(raw)
    assert {d.name for d in project.deployments} == {
        f"{DEPLOYMENT_NAME}-process",
        f"{DEPLOYMENT_NAME}-docker",
    }
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
        assert deployment.work_pool.name.startswith("nvda-forecast-")


def test_prefect_yaml_entrypoint_imports_the_flow():
    from prefect.flows import load_flow_from_entrypoint

    flow = load_flow_from_entrypoint("flows.daily:daily_forecast", use_placeholder_flow=False)
    assert flow.name == "daily-forecast"


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def test_dockerfile_pins_its_base_runs_as_non_root_and_installs_like_the_readme():
    instructions = _instructions((ROOT / "Dockerfile").read_text())
    (base,) = [argument for name, argument in instructions if name == "FROM"]
    # A full version tag (or a digest), never `latest` or a bare minor version.
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    users = [argument for name, argument in instructions if name == "USER"]
    assert users and users[-1] not in ("root", "0")
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
    assert project["project"]["scripts"]["nvda-forecast"] == "flows.cli:main"
