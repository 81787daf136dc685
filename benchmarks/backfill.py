"""Wall time of `backfill` over a year of sessions, step by step (a benchmark, not a test).

    python -m benchmarks.backfill [--sessions 252] [--end 2025-02-11] [--json]

Runs the real backfill flow (default policy, default 3 x 50 LSTM, every setting at its default)
once over the last ``--sessions`` sessions of a series up to ``--end``, in this process, into a
fresh SQLite database and Prefect home in a temporary folder; then runs it again over the same
range, which must skip every session (a resumed or repeated backfill does no work) and leave the
same number of rows in every table. Prints the wall time, sessions per minute, where the time
went (the pipeline's own per-step clock, ``BackfillSummary.step_seconds``; "overhead" is the rest
of the session loop: Prefect's task-run bookkeeping, progress artifacts; "start-up" the rest of
the call: Prefect's temporary API server, the flow run, listing the sessions) and how many
sessions retrained, fine-tuned or reused the champion.

Target (issue 8): 252 sessions in at most 10 minutes on 2 cores.

The helpers here (:func:`isolate_process`, :func:`session_range`, :func:`run_backfill`) are
shared with ``benchmarks/forecast_quality.py``, which backfills each series the same way.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SAMPLE_END = dt.date(2025, 2, 11)  # the bundled NVDA history's last session
TARGET_SECONDS = 600.0
STEPS = ("train", "evaluate", "persist", "ingest", "prepare", "decide", "watch", "deliver")


def isolate_process(data_dir: Path, *, threads: int | None = None) -> None:
    """Point this process's settings and Prefect home at ``data_dir``, quietly.

    Call it before anything imports Prefect or reads the settings: both read the environment
    once. ``threads`` caps TensorFlow's intra-op (and inter-op) threads, for parallel workers.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    # Another database or artifact folder from the environment would defeat the isolation.
    for name in ("DATABASE_URL", "NVDA_FORECAST_DATABASE_URL", "NVDA_FORECAST_ARTIFACT_ROOT"):
        os.environ.pop(name, None)
    os.environ["NVDA_FORECAST_DATA_DIR"] = str(data_dir)
    os.environ["PREFECT_HOME"] = str(data_dir / "prefect")
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = str(threads)

    quiet_imports()
    if threads is not None:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    from flows.settings import get_settings

    get_settings.cache_clear()


def quiet_imports() -> None:
    """Import TensorFlow with its start-up chatter silenced, as the command line does."""
    from flows.presentation import cli
    from flows.quiet import import_tensorflow

    cli._prepare_environment(False)
    import_tensorflow()


def session_range(source: str, ticker: str, sessions: int, end: dt.date) -> tuple[dt.date, dt.date]:
    """First and last of the ``sessions`` newest sessions the source has up to ``end``."""
    from forecasting.prices.sources import load_prices

    days = load_prices(source, ticker, as_of=end).index
    if len(days) < sessions:
        raise SystemExit(f"{source} has only {len(days)} {ticker} sessions up to {end}")
    return days[-sessions].date(), days[-1].date()


def run_backfill(ticker: str, source: str, start: dt.date, end: dt.date) -> tuple[Any, float]:
    """Run the backfill flow once; return its ``BackfillSummary`` and the call's wall seconds."""
    from flows.backfill import backfill

    started = time.perf_counter()
    summary = backfill(ticker=ticker, source=source, start=start, end=end)
    return summary, time.perf_counter() - started


def row_counts() -> dict[str, int]:
    """Rows in every table of the settings' database (to show a rerun changed nothing)."""
    from sqlalchemy import func, select

    from db.engine import get_engine
    from db.models import Base
    from flows.settings import get_settings

    with get_engine(get_settings().database_url).connect() as connection:
        return {
            name: connection.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in sorted(Base.metadata.tables.items())
        }


def breakdown(summary: Any, wall: float) -> dict[str, float]:
    """Seconds per pipeline step; "overhead": the rest of the session loop (task-run
    bookkeeping, progress artifacts); "start-up": the rest of the call (Prefect's temporary
    API server, the flow run, listing the sessions)."""
    steps = {name: float(summary.step_seconds.get(name, 0.0)) for name in STEPS}
    others = {k: float(v) for k, v in summary.step_seconds.items() if k not in STEPS}
    parts = {**steps, **others}
    parts["overhead"] = max(float(summary.seconds) - sum(parts.values()), 0.0)
    parts["start-up"] = max(wall - float(summary.seconds), 0.0)
    return parts


def measure(arguments: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """Both backfills, and what the report needs."""
    started = time.perf_counter()
    isolate_process(data_dir)
    imports = time.perf_counter() - started
    start, end = session_range(
        arguments.source, arguments.ticker, arguments.sessions, arguments.end
    )
    cpu = time.process_time()
    first, first_wall = run_backfill(arguments.ticker, arguments.source, start, end)
    cpu = time.process_time() - cpu
    rows_before = row_counts()
    second, second_wall = run_backfill(arguments.ticker, arguments.source, start, end)
    rows_after = row_counts()
    return {
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.machine()}",
        "ticker": arguments.ticker,
        "source": arguments.source,
        "range": f"{start}..{end}",
        "imports_s": round(imports, 1),
        "first": {
            "sessions": first.sessions,
            "ran": first.ran,
            "wall_s": round(first_wall, 1),
            "loop_s": round(first.seconds, 1),
            "cpu_s": round(cpu, 1),
            "sessions_per_minute": round(60 * first.ran / first_wall, 1),
            "breakdown_s": {k: round(v, 1) for k, v in breakdown(first, first_wall).items()},
            "actions": first.actions,
            "served_by": first.served_by,
        },
        "rerun": {
            "ran": second.ran,
            "skipped": second.skipped,
            "wall_s": round(second_wall, 1),
            "same_rows": rows_before == rows_after,
        },
        "rows": rows_after,
        "target_s": TARGET_SECONDS,
    }


def report(result: dict[str, Any]) -> str:
    """The result as text for the terminal."""
    first, rerun = result["first"], result["rerun"]
    verdict = "meets" if first["wall_s"] <= result["target_s"] else "MISSES"
    lines = [
        f"backfill {result['ticker']} from {result['source']}, {result['range']} "
        f"({result['machine']}); imports {result['imports_s']:.1f} s",
        f"first run: {first['ran']} of {first['sessions']} sessions in {first['wall_s']:.1f} s "
        f"({first['wall_s'] / 60:.1f} min, {verdict} target <= {result['target_s'] / 60:.0f} min), "
        f"{first['sessions_per_minute']:.1f} sessions/min; CPU time {first['cpu_s']:.0f} s "
        "(this process's threads; a machine shared with other work shows a wall time well "
        "above CPU time / cores)",
    ]
    for part, seconds in first["breakdown_s"].items():
        share = 100 * seconds / first["wall_s"] if first["wall_s"] else 0.0
        lines.append(f"    {part:<10} {seconds:8.1f} s  {share:5.1f}%")
    actions = ", ".join(f"{k} {v}" for k, v in sorted(first["actions"].items()))
    served = ", ".join(f"{k} {v}" for k, v in sorted(first["served_by"].items()))
    lines.append(f"  models: {actions}; served by: {served}")
    same = "the same rows" if rerun["same_rows"] else "DIFFERENT rows"
    lines.append(
        f"rerun over the same range: ran {rerun['ran']}, skipped {rerun['skipped']} in "
        f"{rerun['wall_s']:.1f} s; {same} in every table"
    )
    return "\n".join(lines)


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=252, help="sessions to backfill")
    parser.add_argument("--end", type=dt.date.fromisoformat, default=SAMPLE_END)
    parser.add_argument("--ticker", default="NVDA")
    parser.add_argument("--source", default="sample", help="sample, csv:PATH or yahoo")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    with tempfile.TemporaryDirectory(prefix="nvda-forecast-backfill-") as scratch:
        result = measure(arguments, Path(scratch))
    print(json.dumps(result, indent=2) if arguments.json else report(result))
    return 0 if result["rerun"]["ran"] == 0 and result["rerun"]["same_rows"] else 1


if __name__ == "__main__":
    sys.exit(main())
