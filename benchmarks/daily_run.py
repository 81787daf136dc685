"""Wall time and peak memory of whole `nvda-forecast run` processes (a benchmark, not a test).

    python benchmarks/daily_run.py [--json]

(a) a first run on a new machine: full retrain on the whole bundled history (6,555 bars), fresh
    database, fresh Prefect home; (b) the run a week later: a fine-tune of that champion.
Each run is a separate process, as cron or a worker would start it. The time is split into
imports (measured in a separate process), Prefect start-up (the rest of the time before the
flow run begins: the temporary API server, and its database migrations on a new machine), each
pipeline step as the run's own clock measured it (``step_seconds`` of the JSON summary: the same
steps as ``benchmarks/backfill.py``'s breakdown), the rest of the flow run (the report) and
shutdown.
Targets (issue 4): (a) under 180 s, (b) under 45 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST_AS_OF = "2025-02-04"
LATER_AS_OF = "2025-02-11"  # five sessions later: fine-tune under the default policy
TARGETS = {"first run (retrain)": 180.0, "next run (fine-tune)": 45.0}


def _environment(home: Path) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "NVDA_FORECAST_", "DATABASE_URL"))
    }
    environment.update(
        NVDA_FORECAST_DATA_DIR=str(home / "data"),
        PREFECT_HOME=str(home / "prefect"),
        PYTHONUNBUFFERED="1",
    )
    return environment


def _command() -> list[str]:
    script = Path(sys.executable).with_name("nvda-forecast")
    return [str(script)] if script.exists() else [sys.executable, "-m", "flows.presentation.cli"]


def measure_imports(environment: dict[str, str]) -> float:
    """Seconds to import the flow and everything it needs, in a fresh process."""
    code = (
        "import time; t = time.perf_counter(); "
        "from flows import quiet; from flows.presentation import cli; "
        "cli._prepare_environment(False); quiet.import_tensorflow(); import flows.daily; "
        "print(time.perf_counter() - t)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    )
    return float(output.stdout.strip().splitlines()[-1])


def run_process(environment: dict[str, str], as_of: str, scratch: Path) -> dict:
    """Run the CLI once; return its summary, wall time and peak resident memory."""
    command = [*_command(), "run", "--source", "sample", "--as-of", as_of, "--json"]
    out_path, err_path = scratch / "stdout.txt", scratch / "stderr.txt"
    with out_path.open("w") as out, err_path.open("w") as err:
        started = time.time()
        process = subprocess.Popen(command, env=environment, stdout=out, stderr=err)
        # Reap the child ourselves: wait4 gives this process's own peak RSS (ru_maxrss, KiB).
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.time() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"nvda-forecast run failed: {err_path.read_text().strip()}")
    return {
        "summary": json.loads(out_path.read_text()),
        "started": started,
        "wall_s": wall,
        "peak_mib": usage.ru_maxrss / 1024,
    }


def flow_record(environment: dict[str, str], flow_run_id: str) -> dict:
    """When the flow run started and how long it ran, from Prefect's records (read in a helper
    process, against the same Prefect home)."""
    code = f"""
import json, uuid
from prefect import get_client
with get_client(sync_client=True) as client:
    flow_run = client.read_flow_run(uuid.UUID({flow_run_id!r}))
print(json.dumps({{
    "flow_start": flow_run.start_time.timestamp(),
    "flow_seconds": flow_run.total_run_time.total_seconds(),
}}))
"""
    output = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    )
    return json.loads(output.stdout.strip().splitlines()[-1])


def breakdown(run: dict, imports_s: float, record: dict) -> dict[str, float]:
    """Split a run's wall time into imports, Prefect start-up, each pipeline step (the run's
    own clock, ``RunSummary.step_seconds``), the rest of the flow run, and shutdown."""
    shares = {"imports": imports_s}
    shares["Prefect start-up"] = max(record["flow_start"] - run["started"] - imports_s, 0.0)
    steps = {name: float(seconds) for name, seconds in run["summary"]["step_seconds"].items()}
    shares.update(steps)
    in_steps = sum(steps.values())
    shares["report + flow overhead"] = max(record["flow_seconds"] - in_steps, 0.0)
    shares["shutdown"] = max(run["wall_s"] - sum(shares.values()), 0.0)
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="nvda-forecast-bench-") as scratch:
        environment = _environment(Path(scratch))
        imports_s = measure_imports(environment)
        for label, as_of in zip(TARGETS, (FIRST_AS_OF, LATER_AS_OF), strict=True):
            run = run_process(environment, as_of, Path(scratch))
            record = flow_record(environment, run["summary"]["flow_run_id"])
            results[label] = {
                "action": run["summary"]["action"],
                "epochs": run["summary"]["epochs"],
                "wall_s": round(run["wall_s"], 1),
                "target_s": TARGETS[label],
                "peak_mib": round(run["peak_mib"]),
                "breakdown_s": {
                    k: round(v, 1) for k, v in breakdown(run, imports_s, record).items()
                },
            }
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}"
    if args.json:
        print(json.dumps({"machine": machine, "runs": results}, indent=2))
        return
    print(f"nvda-forecast run, whole process ({machine})\n")
    for label, result in results.items():
        verdict = "meets" if result["wall_s"] < result["target_s"] else "MISSES"
        print(
            f"{label}: {result['action']} ({result['epochs']} epochs), {result['wall_s']:.1f} s "
            f"wall ({verdict} target < {result['target_s']:.0f} s), peak {result['peak_mib']} MiB"
        )
        for part, seconds in result["breakdown_s"].items():
            share = 100 * seconds / result["wall_s"]
            print(f"    {part:<24} {seconds:7.1f} s  {share:5.1f}%")
        print()


if __name__ == "__main__":
    main()
