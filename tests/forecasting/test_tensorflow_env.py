"""TensorFlow's environment defaults are set in one function, and never override the user's."""

from __future__ import annotations

import os

from forecasting.tensorflow_env import set_tensorflow_defaults


def test_the_defaults_quiet_tensorflow_and_turn_onednn_off(monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    set_tensorflow_defaults()
    assert (os.environ["TF_CPP_MIN_LOG_LEVEL"], os.environ["TF_ENABLE_ONEDNN_OPTS"]) == ("3", "0")


def test_a_value_already_set_is_kept(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")  # what nvda-forecast -v sets
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1")
    set_tensorflow_defaults()
    assert (os.environ["TF_CPP_MIN_LOG_LEVEL"], os.environ["TF_ENABLE_ONEDNN_OPTS"]) == ("0", "1")
