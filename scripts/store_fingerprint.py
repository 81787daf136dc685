"""A fingerprint of everything a fixed workload stores: to show a refactoring changed nothing.

Runs, on a fresh SQLite store with the tiny model of the flow tests, a backfill of 20 sample
sessions of NVDA and a four-ticker run (NVDA, AVGO, QCOM, TXN) as of the day after, through the
real command line; then hashes every stored forecast, interval, evaluation metric and drift
metric (timings, ids of flow runs and wall-clock stamps left out). Run it at two commits: the
same hash means the same stored numbers, bit for bit.

    python scripts/store_fingerprint.py            # prints the hash and the row counts
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text

TINY = {
    "NVDA_FORECAST_TRAINING__LAYERS": "1",
    "NVDA_FORECAST_TRAINING__UNITS": "4",
    "NVDA_FORECAST_TRAINING__MAX_EPOCHS": "2",
    "NVDA_FORECAST_TRAINING__PATIENCE": "1",
    "NVDA_FORECAST_TRAINING__FINETUNE_EPOCHS": "1",
    "NVDA_FORECAST_TRAINING__BATCH_SIZE": "256",
}
COMMANDS = [
    ["backfill", "--source", "sample", "--from", "2005-01-03", "--to", "2005-02-01"],
    ["run", "--tickers", "NVDA,AVGO,QCOM,TXN", "--source", "sample", "--as-of", "2025-02-11"],
]
QUERIES = {
    "predictions": """SELECT ticker, as_of_date, kind, method, target_date, horizon, base_close,
        predicted_close, scale, lower_80, upper_80, lower_95, upper_95 FROM predictions
        ORDER BY ticker, as_of_date, kind, method, target_date""",
    "evaluations": """SELECT e.ticker, e.as_of_date, m.kind, m.as_of_date, e.test_loss, e.rmse,
        e.mae, e.mape, e.naive_rmse, e.naive_mae, e.skill, e.directional_accuracy,
        e.coverage_80, e.coverage_95, e.winkler_95, e.naive_winkler_95, e.n_realized, e.n_train,
        e.n_val, e.n_test, e.epochs FROM evaluations e JOIN model_versions m
        ON m.id = e.model_version_id ORDER BY e.ticker, e.as_of_date, m.as_of_date, m.kind""",
    # Not the file's sha256: a .keras file records when it was saved (metadata.json).
    "model_versions": """SELECT ticker, as_of_date, kind, status, train_start, train_end
        FROM model_versions ORDER BY ticker, as_of_date, kind, status""",
    "drift_reports": """SELECT ticker, as_of_date, kind, metric, value, threshold, breached
        FROM drift_reports ORDER BY ticker, as_of_date, kind, metric""",
    "alerts": """SELECT ticker, kind, metric, severity, status, as_of_date, value FROM alerts
        ORDER BY ticker, kind, metric, as_of_date""",
}


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="nvda-fingerprint-"))
    environment = {**os.environ, **TINY, "NVDA_FORECAST_DATA_DIR": str(folder)}
    for name in ("DATABASE_URL", "NVDA_FORECAST_DATABASE_URL", "NVDA_FORECAST_ARTIFACT_ROOT"):
        environment.pop(name, None)
    # The command line of the code in this checkout (not only of the installed package), so
    # that a second worktree fingerprints its own commit.
    root = Path(__file__).resolve().parents[1]
    for arguments in COMMANDS:
        command = [sys.executable, "-m", "flows.presentation.cli", *arguments]
        subprocess.run(command, env=environment, check=True, cwd=root)
    engine = create_engine(f"sqlite:///{folder / 'nvda-forecast.db'}")
    digest, tables = hashlib.sha256(), {}
    with engine.connect() as connection:
        for table, query in QUERIES.items():
            rows = [list(row) for row in connection.execute(text(query))]
            dumped = json.dumps(rows, default=str)
            digest.update(f"{table}{dumped}".encode())
            tables[table] = {"rows": len(rows), "sha256": _sha(dumped)[:16]}
    print(json.dumps({"sha256": digest.hexdigest(), "tables": tables}, indent=2))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


if __name__ == "__main__":
    main()
