"""Many tickers in one run: wall time, tickers a minute, peak memory (a benchmark, not a test).

    python -m benchmarks.fleet [--first 1 2 4 8] [--next 1 2 4 8 16 50] \
        [--runners local dask1 dask2] [--seed-runner dask2] [--work-dir DIR] [--out fleet.json]

Each run is a whole `nvda-forecast run --tickers ... --source csv:WATCHLIST/{ticker}.csv` process,
as cron or a worker would start it, every setting at its default (the real model: 3 x 50 LSTM,
early stopping), tickers the first N of ../shared/data/watchlist/ in alphabetical order:

- **first day** (as of 2026-06-11): a new database, so every ticker fully retrains. Measured for
  the ``--first`` counts on every runner, and once for the largest ``--next`` count on
  ``--seed-runner``, whose database is the next day's starting point;
- **next day** (2026-06-12, the next session): a copy of that database and of that run's Prefect
  home (a scheduled job keeps both from one day to the next; a new Prefect home costs the
  temporary API about 5 s of migrations at every start); every ticker fine-tunes its champion.
  Measured for the ``--next`` counts on every runner.

Runners: ``local`` (tickers one after another in the process; TensorFlow uses both cores),
``daskK`` (`--task-runner dask`, a LocalCluster of K worker processes, 1 thread each, TensorFlow
given cores/K threads each). Peak memory is the largest resident set of any one process of the
run (the CLI's own or a Dask worker's: ``wait4`` reports the maximum over the process tree).
Speed-up is relative to ``dask1`` on the same day and count. CPU is the user and system time of
the whole process tree (the CLI, its temporary Prefect API server, the Dask workers): divided by
the cores, the shortest wall time the run could have.

Targets (issue 9, 2 cores): next day of 50 tickers <= 5 min; dask1 -> dask2 speed-up >= 1.7x;
first day of 50 tickers <= 20 min.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WATCHLIST = ROOT.parent / "shared" / "data" / "watchlist"
FIRST_DAY, NEXT_DAY = "2026-06-11", "2026-06-12"
TARGETS_S = {("next", 50): 300.0, ("first", 50): 1200.0}


def watchlist(folder: Path) -> list[str]:
    return sorted(path.stem for path in folder.glob("*.csv"))


def environment(home: Path, runner: str) -> dict[str, str]:
    """A clean environment: this run's data folder and Prefect home, the runner's settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "NVDA_FORECAST_", "DATABASE_URL", "TF_NUM_"))
    }
    env.update(
        NVDA_FORECAST_DATA_DIR=str(home / "data"),
        PREFECT_HOME=str(home / "prefect"),
        PYTHONUNBUFFERED="1",
        NVDA_FORECAST_TASK_RUNNER="local" if runner == "local" else "dask",
    )
    if runner.startswith("dask"):
        env["NVDA_FORECAST_DASK_WORKERS"] = runner.removeprefix("dask") or "0"
    return env


def run(home: Path, runner: str, tickers: list[str], as_of: str, folder: Path) -> dict:
    """One whole CLI process; its summary, wall time and the peak RSS of its process tree."""
    command = [
        sys.executable,
        "-m",
        "flows.presentation.cli",
        "run",
        "--tickers",
        ",".join(tickers),
    ]
    command += ["--source", f"csv:{folder}/{{ticker}}.csv", "--as-of", as_of, "--json"]
    home.mkdir(parents=True, exist_ok=True)
    out_path, err_path = home / f"{as_of}.out", home / f"{as_of}.err"
    with out_path.open("w") as out, err_path.open("w") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, env=environment(home, runner), stdout=out, stderr=err, cwd=ROOT
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    text = out_path.read_text()
    summary = json.loads(text[text.index("{") :]) if "{" in text else {"outcomes": []}
    outcomes = summary["outcomes"]
    actions = sorted({o["summary"]["action"] for o in outcomes if o["ok"]})
    return {
        "runner": runner,
        "tickers": len(tickers),
        "as_of": as_of,
        "exit": os.waitstatus_to_exitcode(status),
        "wall_s": round(wall, 1),
        "flow_s": summary.get("seconds"),
        "tickers_per_min": round(60 * len(tickers) / wall, 2),
        "peak_mib": round(usage.ru_maxrss / 1024),
        # Every process of the run that was waited for: the CLI, its Prefect API server, the
        # Dask workers. Divided by the cores, it is the shortest wall time the run could take.
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "failed": summary.get("failed", []),
        "errors": [o["error"] for o in outcomes if not o["ok"]],
        "actions": actions,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", type=int, nargs="*", default=[1, 2, 4, 8])
    parser.add_argument("--next", dest="next_", type=int, nargs="*", default=[1, 2, 4, 8, 16, 50])
    parser.add_argument("--runners", nargs="+", default=["local", "dask1", "dask2"])
    parser.add_argument("--seed-runner", default="dask2")
    parser.add_argument("--watchlist", type=Path, default=WATCHLIST)
    parser.add_argument("--work-dir", type=Path, default=Path("fleet-bench"))
    parser.add_argument("--out", type=Path, default=Path("fleet.json"))
    args = parser.parse_args(argv)
    names = watchlist(args.watchlist)
    results = json.loads(args.out.read_text()) if args.out.exists() else []
    done = {(r["day"], r["runner"], r["tickers"]) for r in results}

    def record(day: str, result: dict) -> None:
        result["day"] = day
        results.append(result)
        args.out.write_text(json.dumps(results, indent=2))
        print(json.dumps(result), flush=True)

    seed_count = max(args.next_, default=0)
    seed = args.work_dir / f"first-{args.seed_runner}-{seed_count}"
    if seed_count and ("first", args.seed_runner, seed_count) not in done:
        shutil.rmtree(seed, ignore_errors=True)
        record("first", run(seed, args.seed_runner, names[:seed_count], FIRST_DAY, args.watchlist))
    for runner in args.runners:
        for count in args.first:
            seeded = (runner, count) == (args.seed_runner, seed_count)
            if ("first", runner, count) in done or seeded:
                continue
            home = args.work_dir / f"first-{runner}-{count}"
            shutil.rmtree(home, ignore_errors=True)
            record("first", run(home, runner, names[:count], FIRST_DAY, args.watchlist))
            shutil.rmtree(home, ignore_errors=True)
    for runner in args.runners:
        for count in args.next_:
            if ("next", runner, count) in done:
                continue
            home = args.work_dir / f"next-{runner}-{count}"
            shutil.rmtree(home, ignore_errors=True)
            shutil.copytree(seed / "data", home / "data")
            if (seed / "prefect").exists():
                shutil.copytree(seed / "prefect", home / "prefect")
            record("next", run(home, runner, names[:count], NEXT_DAY, args.watchlist))
            shutil.rmtree(home, ignore_errors=True)
    print(table(results))
    return 0


def table(results: list[dict]) -> str:
    """The docs' table: one row per day, count and runner, speed-up against dask1."""
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}"
    base = {(r["day"], r["tickers"]): r["wall_s"] for r in results if r["runner"] == "dask1"}
    lines = [
        f"fleet benchmark ({machine})",
        "| day | tickers | runner | wall s | tickers/min | peak MiB (largest process) "
        "| CPU s (all processes) | speed-up vs dask1 | failed |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    order = {"first": 0, "next": 1}
    for r in sorted(results, key=lambda r: (order[r["day"]], r["tickers"], r["runner"])):
        one = base.get((r["day"], r["tickers"]))
        speed = f"{one / r['wall_s']:.2f}x" if one else "-"
        target = TARGETS_S.get((r["day"], r["tickers"]))
        wall = f"{r['wall_s']:.0f}" + (f" (target <= {target:.0f})" if target else "")
        lines.append(
            f"| {r['day']} | {r['tickers']} | {r['runner']} | {wall} | {r['tickers_per_min']:.1f} "
            f"| {r['peak_mib']} | {r.get('cpu_s', '-')} | {speed} "
            f"| {', '.join(r['failed']) or '-'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
