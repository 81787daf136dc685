"""deployments/ reports an unexpected error with the project's one_line (forecasting.errors)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import prefect
import pytest

AUTOMATIONS = Path(__file__).resolve().parents[1] / "deployments" / "automations.py"


@pytest.fixture
def automations():
    spec = importlib.util.spec_from_file_location("automations_under_test", AUTOMATIONS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("message", "line"),
    [
        ("\n  connection refused  \n(details)\n", "RuntimeError: connection refused"),
        ("", "RuntimeError"),  # was "RuntimeError: " with a dangling colon
    ],
)
def test_an_unreachable_api_is_one_line(automations, monkeypatch, capsys, message, line):
    def unreachable(**_):
        raise RuntimeError(message)

    monkeypatch.setattr(prefect, "get_client", unreachable)
    assert automations.main(["--block", "slack-webhook/ops"]) == 1
    assert capsys.readouterr().err == f"error: {line}; check PREFECT_API_URL\n"
