"""Forecast quality on the bundled NVDA history: the original blog's LSTM, ours, and naive.

All three forecast the same test days (the last ``test_fraction`` of our windows):

- seed: the original formulation. Close price levels MinMax-scaled with the scaler fitted on the
  whole series (test included: the look-ahead leak is kept on purpose, to reproduce it), windows
  of 10 closes, 3 x 50 LSTM, ReLU Dense(1), Adam, MSE, exactly 100 epochs, batch 32, trained on
  every window whose target day comes before the test days.
- ours: the default model exactly as the flow trains it (``prepare`` + ``train`` + ``evaluate``).
- naive: tomorrow's close = today's close.

Usage::

    python benchmarks/forecast_quality.py [--random-seed 42] [--json]

Training takes a few minutes on a 2-core CPU; the results are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
from sklearn.preprocessing import MinMaxScaler

from forecasting.config import FeatureConfig, TrainingConfig
from forecasting.evaluation import evaluate, point_metrics
from forecasting.features import PreparedData, prepare
from forecasting.model import build_model, set_seed, train
from forecasting.sources import load_prices

SEED_WINDOW = 10
SEED_EPOCHS = 100
SEED_BATCH_SIZE = 32

Row = dict[str, float | int | str | None]


def seed_design(prices: pd.DataFrame, data: PreparedData, random_seed: int) -> Row:
    """Train and score the original blog's formulation on our test days."""
    close = prices["close"].to_numpy(dtype="float64")
    scaler = MinMaxScaler()
    scaled = scaler.fit_transform(close.reshape(-1, 1)).astype("float32")  # fitted on ALL: leak
    targets = np.arange(SEED_WINDOW, len(close))
    windows = np.stack([scaled[target - SEED_WINDOW : target] for target in targets])
    target_dates = prices.index[targets]
    is_test = target_dates.isin(data.test.target_dates)
    is_train = target_dates < data.test.target_dates[0]
    if is_test.sum() != len(data.test):
        raise RuntimeError("the seed's test windows do not line up with ours")
    set_seed(random_seed)
    model = build_model(1, SEED_WINDOW, head_activation="relu")
    started = time.perf_counter()
    model.fit(
        windows[is_train],
        scaled[targets[is_train]],
        epochs=SEED_EPOCHS,
        batch_size=SEED_BATCH_SIZE,
        verbose=0,
    )
    seconds = time.perf_counter() - started
    predicted_scaled = model.predict(windows[is_test], batch_size=256, verbose=0)
    predicted_close = scaler.inverse_transform(predicted_scaled).reshape(-1)
    metrics = point_metrics(data.test.base_close, data.test.target_close, predicted_close)
    return _row(metrics.__dict__, data, seconds=seconds, epochs=SEED_EPOCHS)


def our_model(data: PreparedData, random_seed: int) -> tuple[Row, Row]:
    """Train and score our default model; also return the naive forecast's row."""
    result = train(data, TrainingConfig(seed=random_seed))
    evaluation = evaluate(result.model, data)
    ours = _row(
        {
            "rmse": evaluation.rmse,
            "mae": evaluation.mae,
            "mape": evaluation.mape,
            "directional_accuracy": evaluation.directional_accuracy,
            "coverage_80": evaluation.coverage_80,
            "coverage_95": evaluation.coverage_95,
            "test_loss": evaluation.test_loss,
        },
        data,
        seconds=result.seconds,
        epochs=result.epochs_run,
    )
    ours["best_epoch"] = result.best_epoch
    naive = _row(
        {"rmse": evaluation.naive_rmse, "mae": evaluation.naive_mae, "mape": evaluation.naive_mape},
        data,
        seconds=0.0,
        epochs=0,
    )
    return ours, naive


def _row(metrics: dict[str, float], data: PreparedData, *, seconds: float, epochs: int) -> Row:
    row: Row = {
        "rmse": None,
        "mae": None,
        "mape": None,
        "skill": None,
        "directional_accuracy": None,
        "coverage_80": None,
        "coverage_95": None,
    }
    row.update(metrics)
    row.update(
        training_seconds=round(seconds, 1),
        epochs=epochs,
        n_test=len(data.test),
        test_start=data.test.target_dates[0].date().isoformat(),
        test_end=data.test.target_dates[-1].date().isoformat(),
    )
    return row


def _cell(value: float | None, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return pattern.format(value)


def format_table(results: dict[str, Row]) -> str:
    """The results as a markdown table, one row per forecaster."""
    header = (
        "| forecaster | RMSE $ | MAE $ | skill vs naive | directional accuracy "
        "| 80% coverage | 95% coverage | training s |"
    )
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, row in results.items():
        seconds = row["training_seconds"] if row["epochs"] else None
        cells = [
            _cell(row["rmse"], "{:.3f}"),
            _cell(row["mae"], "{:.3f}"),
            _cell(row["skill"], "{:.4f}"),
            _cell(row["directional_accuracy"], "{:.3f}"),
            _cell(row["coverage_80"], "{:.3f}"),
            _cell(row["coverage_95"], "{:.3f}"),
            _cell(seconds, "{:.0f}"),
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--random-seed", type=int, default=TrainingConfig().seed)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    prices = load_prices("sample", "NVDA")
    data = prepare(prices, FeatureConfig())
    ours, naive = our_model(data, arguments.random_seed)
    seed = seed_design(prices, data, arguments.random_seed)
    results = {"seed": seed, "ours": ours, "naive": naive}
    for row in results.values():
        row["skill"] = row["rmse"] / naive["rmse"]
    if arguments.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"NVDA, {len(prices)} bars {data.first_date}..{data.last_date}; "
        f"{len(data.train)} train / {len(data.validation)} validation / {len(data.test)} test "
        f"windows; test days {ours['test_start']}..{ours['test_end']}; random seed "
        f"{arguments.random_seed}"
    )
    print(format_table(results))
    epochs, best_epoch, loss = ours["epochs"], ours["best_epoch"], ours["test_loss"]
    print(f"ours: {epochs} epochs, best epoch {best_epoch}; test loss {loss:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
