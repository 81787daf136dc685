"""What crosses a task boundary is plain data: every task of a retrain day and a fine-tune day,
its arguments and its result, pickled as a Dask worker would, and searched for live objects."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import sys

import cloudpickle
import keras
import numpy as np
import pandas as pd
import pytest
from prefect import Task
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from flows.daily import daily_forecast
from forecasting.model import SavedModel

LIVE = (keras.Model, Engine, Connection, Session)


def _live_objects(value, path: str = "value", seen: set[int] | None = None) -> list[str]:
    """Where in ``value`` a live model, engine or session hides (frames and arrays are data)."""
    seen = set() if seen is None else seen
    if id(value) in seen or isinstance(value, (str, bytes, int, float, pd.DataFrame, np.ndarray)):
        return []
    seen.add(id(value))
    if isinstance(value, LIVE):
        return [f"{path}: {type(value).__name__}"]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        children = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    elif isinstance(value, dict):
        children = {repr(key): item for key, item in value.items()}
    elif isinstance(value, (list, tuple, set, frozenset)):
        children = dict(enumerate(value))
    else:
        children = {}
    found = []
    for name, child in children.items():
        found += _live_objects(child, f"{path}.{name}", seen)
    return found


@pytest.fixture
def task_calls(monkeypatch):
    """Record every call of every task defined in ``flows``: (task name, arguments, result)."""
    calls: list[tuple[str, dict, object]] = []

    def recording(name, fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            result = fn(*args, **kwargs)
            calls.append((name, {"args": args, "kwargs": kwargs}, result))
            return result

        return call

    tasks = {
        id(value): value
        for module_name, module in list(sys.modules.items())
        if module_name.startswith("flows.")
        for value in vars(module).values()
        if isinstance(value, Task)
    }
    for task in tasks.values():
        monkeypatch.setattr(task, "fn", recording(task.name, task.fn))
    return calls


@pytest.mark.slow
def test_every_task_of_a_retrain_and_a_fine_tune_day_takes_and_returns_plain_data(
    flow_settings, task_calls
):
    daily_forecast(ticker="NVDA", source="sample", as_of=dt.date(2004, 12, 31))
    summary = daily_forecast(ticker="NVDA", source="sample", as_of=dt.date(2005, 1, 7))
    assert summary.action == "finetune"

    names = {name for name, _, _ in task_calls}
    # The steps that hand a model on are among those checked, on both days.
    assert {"train: retrain", "train: fine-tune", "decide: read champion", "predict"} <= names
    assert {"promote", "serve", "persist"} <= names
    models = 0
    for name, arguments, result in task_calls:
        for label, value in (("arguments", arguments), ("result", result)):
            assert _live_objects(value) == [], f"{name} {label}"
            copy = cloudpickle.loads(cloudpickle.dumps(value))
            assert type(copy) is type(value), f"{name} {label}"
        models += sum(
            isinstance(value, SavedModel) or isinstance(getattr(value, "model", None), SavedModel)
            for value in (result, *arguments["args"], *arguments["kwargs"].values())
        )
    assert models >= 4  # read champion, fine-tune in and out, predict: each a SavedModel


def test_the_search_finds_a_live_model_inside_a_dataclass():
    @dataclasses.dataclass
    class Holder:
        inner: tuple

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert _live_objects(Holder(({"m": model},))) == ["value.inner.0.'m': Sequential"]
