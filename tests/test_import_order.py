"""Yahoo downloads survive TensorFlow: curl_cffi must be loaded before it, in every entry point."""

import subprocess
import sys

import pytest

# A closed local port: the request fails at connect time, after impersonation is set up, so
# the test needs no network. An ImpersonateError means curl_cffi bound to TensorFlow's libcurl.
PROBE = """
import {entry}
import keras  # TensorFlow, loaded the way the flow loads it
from curl_cffi import requests
try:
    requests.Session(impersonate="chrome").get("http://127.0.0.1:9/", timeout=2)
except Exception as error:
    print(type(error).__name__)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "entry", ["flows.progress", "flows.daily", "flows.presentation.cli", "forecasting.model"]
)
def test_yahoo_impersonation_works_after_tensorflow_is_loaded(entry):
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(entry=entry)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    assert result.stdout.strip() == "ConnectionError", result.stdout + result.stderr[-2000:]


@pytest.mark.slow
def test_loading_the_flow_prints_no_tensorflow_start_up_lines():
    # What a worker, `prefect deploy` and deploy.py do first: import the flow (then compute, when
    # TensorFlow probes for CUDA). No TF_* variable is set here, as on a fresh worker host.
    result = subprocess.run(
        [sys.executable, "-c", "import flows.daily, keras; keras.ops.ones((2,)) + 1"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""
