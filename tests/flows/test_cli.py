"""The `nvda-forecast` command line: exit codes, one-line errors, readable output."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.presentation.cli import _fleet_tickers, build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def test_run_defaults_and_date_parsing():
    args = build_parser().parse_args(["run"])
    assert (args.ticker, args.source, args.as_of, args.mode) == (None, "yahoo", None, "auto")
    assert (args.tickers, args.watchlist, args.task_runner) == (None, None, None)
    assert _fleet_tickers(args) is None and args.ticker == "NVDA"  # one ticker, NVDA
    args = build_parser().parse_args(["run", "--tickers", "nvda, amd", "--task-runner", "dask"])
    assert _fleet_tickers(args) == ["NVDA", "AMD"] and args.task_runner == "dask"
    with pytest.raises(SystemExit):  # one of --ticker, --tickers, --watchlist
        build_parser().parse_args(["run", "--ticker", "NVDA", "--tickers", "AMD"])
    args = build_parser().parse_args(["run", "--as-of", "2024-12-31", "--mode", "retrain"])
    assert str(args.as_of) == "2024-12-31" and args.mode == "retrain"


def test_bad_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["run", "--as-of", "31/12/2024"])
    assert raised.value.code == 2
    assert "'31/12/2024' is not a date; use YYYY-MM-DD" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--mode", "sometimes"])


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("NVDA_FORECAST_DASK_WORKERS", "two", "Input should be a valid integer"),
        ("NVDA_FORECAST_TRAINING__UNITS", "0", "Input should be greater than or equal to 1"),
        ("NVDA_FORECAST_TASK_RUNNER", "spark", "Input should be 'local' or 'dask'"),
    ],
)
def test_an_invalid_setting_is_one_line_naming_its_variable(
    monkeypatch, capsys, variable, value, problem
):
    from flows.settings import get_settings

    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    assert main(["db", "current"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: setting {variable}={value!r} is invalid: {problem}")
    assert err.endswith("; fix it in the environment or .env") and "\n" not in err
    get_settings.cache_clear()


def test_unreachable_database_is_one_line_with_the_password_masked(monkeypatch, capsys):
    # Port 1 on localhost refuses at once: no waiting for a timeout.
    monkeypatch.setenv("DATABASE_URL", "postgresql://forecaster:s3cret@127.0.0.1:1/prod")
    assert main(["db", "upgrade"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        "error: cannot connect to postgresql+psycopg://forecaster:***@127.0.0.1:1/"
    )
    assert "s3cret" not in err and "\n" not in err


def test_db_upgrade_then_current_on_a_fresh_sqlite_file(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    assert main(["db", "upgrade"]) == 0
    upgraded = capsys.readouterr().out
    assert "fresh.db is at revision" in upgraded
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out.strip() == upgraded.split()[-1]


def test_history_before_any_run_says_what_to_do(capsys):
    assert main(["history"]) == 1
    assert "run `nvda-forecast run`" in capsys.readouterr().err


@pytest.mark.slow
def test_run_prints_the_summary_and_history_shows_it(flow_settings, capsys):
    assert main(["run", "--source", "sample", "--as-of", "2004-12-31"]) == 0
    out = capsys.readouterr().out
    assert "NVDA close on 2005-01-03 (next trading day after 2004-12-31)" in out
    assert "retrain -> model #1" in out and "promoted to champion" in out
    assert "80% interval" in out and "skill" in out

    assert main(["history", "--days", "5"]) == 0
    history = capsys.readouterr().out
    assert "2004-12-31 2005-01-03" in history
    assert "1 waiting for their target day" in history

    # The 60 sessions to 2004-12-31 differ from the 1999-2003 training years: data drift.
    opened = [line.split("] ")[1].split(":")[0] for line in out.splitlines() if "    [" in line]
    # A first run opens every alert it shows: each is marked NEW.
    assert "NEW data_drift" in opened
    assert main(["alerts"]) == 0
    table = capsys.readouterr().out
    # One line of facts for each open alert (its kind and message wrapped below it).
    facts = [line for line in table.splitlines() if re.match(r"\s*\d+ NVDA ", line)]
    assert len(facts) == len(opened)
    assert "returns_psi" in table


@pytest.mark.slow
def test_run_failure_is_one_line_and_non_zero(flow_settings, capsys, tmp_path):
    missing = tmp_path / "nowhere.csv"
    assert main(["run", "--source", f"csv:{missing}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "nowhere.csv" in err[-1]


@pytest.mark.slow
def test_a_real_process_shows_no_start_up_chatter_and_one_error_line(tmp_path):
    import os
    import subprocess
    import sys

    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "TF_", "NVDA_FORECAST_", "DATABASE_URL"))
    }
    environment.update(
        NVDA_FORECAST_DATA_DIR=str(tmp_path / "data"), PREFECT_HOME=str(tmp_path / "prefect")
    )
    missing = tmp_path / "nowhere.csv"
    process = subprocess.run(
        [sys.executable, "-m", "flows.presentation.cli", "run", "--source", f"csv:{missing}"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert process.returncode == 1
    # The file is checked before anything slow starts: no "Running ..." line, one error line.
    assert process.stdout == ""
    assert process.stderr == f"error: {missing}: does not exist; check the path given after csv:\n"


def test_tickers_are_upper_case_at_the_edge_and_nonsense_is_refused(capsys):
    assert build_parser().parse_args(["run", "--ticker", " nvda "]).ticker == "NVDA"
    assert build_parser().parse_args(["history", "--ticker", "brk-b"]).ticker == "BRK-B"
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["run", "--ticker", "NV DA"])
    assert raised.value.code == 2
    assert "'NV DA' is not a ticker symbol" in capsys.readouterr().err


def test_backfill_options():
    args = build_parser().parse_args(
        ["backfill", "--source", "sample", "--from", "2005-01-03", "--to", "2005-01-05"]
    )
    assert (str(args.start), str(args.end), args.mode, args.redo) == (
        "2005-01-03",
        "2005-01-05",
        "auto",
        False,
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["backfill", "--source", "sample", "--from", "2005-01-03"])


@pytest.mark.slow
def test_backfill_prints_its_summary_and_a_rerun_skips_everything(flow_settings, capsys):
    argv = ["backfill", "--ticker", "nvda", "--source", "sample"]
    argv += ["--from", "2005-01-03", "--to", "2005-01-05"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Backfilling NVDA from sample, 2005-01-03 to 2005-01-05 ..." in out
    assert "3 sessions run, 0 already stored, of 3" in out
    assert "models: finetune 2, retrain 1" in out
    assert main([*argv, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["ran"], again["skipped"]) == (0, 3)


def _children_running(process, program: str, psutil) -> list:
    """The descendants of ``process`` whose command line names ``program``. A child that ends
    between being listed and being read is passed over: Python's ``platform`` module, asked by
    the libraries the CLI imports, runs ``uname -p`` and ``file -b`` as it starts."""
    found = []
    for child in process.children(recursive=True):
        try:
            if program in child.cmdline():
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def test_sigterm_stops_the_temporary_prefect_api_with_the_command(tmp_path):
    psutil = pytest.importorskip("psutil")  # installed with the dev extra (dask.distributed)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    environment |= {"PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONPATH": str(ROOT)}
    environment |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'f.db'}"}
    command = [sys.executable, "-m", "flows.presentation.cli", "run", "--source", "sample"]
    process = subprocess.Popen(command, cwd=tmp_path, env=environment, stderr=subprocess.PIPE)
    try:
        cli = psutil.Process(process.pid)
        deadline = time.monotonic() + 120
        servers = []
        while time.monotonic() < deadline and not servers and process.poll() is None:
            servers = _children_running(cli, "uvicorn", psutil)
            time.sleep(0.5)
        assert servers, "the command never started its temporary Prefect API"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
        _, alive = psutil.wait_procs(servers, timeout=30)
        assert alive == [], [child.cmdline() for child in alive]
    finally:
        if process.poll() is None:
            process.kill()


def _store(url: str, *, forecasts: list[tuple], alerts: list[dict]) -> None:
    """Bars and served forecasts (as_of, target, base, predicted, actual) and alerts, written
    through the repository as a run would, without running one."""
    import datetime as dt

    import pandas as pd

    from db.engine import dispose_engines, get_engine, unit_of_work
    from db.migrate import upgrade
    from db.repository import add_alert, replace_predictions, resolve_alert, upsert_prices

    upgrade(url)
    closes = {}
    for as_of, target, base, _, actual in forecasts:
        closes[as_of] = base
        if actual is not None:
            closes[target] = actual
    index = pd.DatetimeIndex([pd.Timestamp(day) for day in sorted(closes)], name="date")
    close = [closes[day] for day in sorted(closes)]
    frame = pd.DataFrame({"close": close}, index=index.as_unit("ns"))
    frame = frame.assign(open=frame.close, high=frame.close, low=frame.close)
    frame = frame.assign(adj_close=frame.close, volume=1e6)
    with unit_of_work(get_engine(url)) as session:
        upsert_prices(frame, session=session, ticker="NVDA", source="sample")
        for as_of, target, base, predicted, _ in forecasts:
            band = {"lower_80": predicted * 0.97, "upper_80": predicted * 1.03}
            band |= {"lower_95": predicted * 0.95, "upper_95": predicted * 1.05}
            row = {"target_date": target, "base_close": base, "predicted_close": predicted}
            replace_predictions(
                session=session,
                ticker="NVDA",
                as_of_date=as_of,
                model_version_id=None,
                kind="forecast",
                method="naive",
                rows=[row | band],
            )
        for spec in alerts:
            resolved = spec.pop("resolved", False)
            alert = add_alert(session=session, as_of_date=dt.date(2025, 2, 10), **spec)
            if resolved:
                resolve_alert(session=session, alert=alert)
    dispose_engines()


def test_history_keeps_cents_of_a_twenty_cent_stock_and_a_scale_free_footer(
    capsys, tmp_path, monkeypatch
):
    import datetime as dt

    url = f"sqlite:///{tmp_path / 'history.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    day = dt.date
    # A $0.20 stock of 2004 and the same stock at $130 in 2025: 1.9% and 1.5% errors.
    forecasts = [
        (day(2004, 12, 29), day(2004, 12, 30), 0.2000, 0.2050, 0.2012),
        (day(2004, 12, 30), day(2004, 12, 31), 0.2012, 0.2050, 0.2012),
        (day(2025, 2, 6), day(2025, 2, 7), 128.0, 132.0, 130.0),
        (day(2025, 2, 7), day(2025, 2, 10), 130.0, 132.0, 130.0),
        (day(2025, 2, 10), day(2025, 2, 11), 130.0, 131.0, None),
    ]
    _store(url, forecasts=forecasts, alerts=[])
    assert main(["history", "--days", "10"]) == 0
    out = capsys.readouterr().out
    # Before: "0.20  0.20-0.21  0.20  0.00" for the 2004 rows.
    old = [line for line in out.splitlines() if line.startswith("2004-")]
    assert len(old) == 2 and "$0.2050 $0.1988-$0.2112 $0.2012 $0.0038" in old[1]
    amounts = [amount for line in old for amount in re.findall(r"\$[\d.,]+", line)]
    assert len(amounts) == 12 and all(re.fullmatch(r"\$0\.\d{4}", a) for a in amounts), amounts
    assert "$132.00 $128.04-$135.96 $130.00   $2.00" in out
    footer = out.strip().split("\n\n")[-1].replace("\n", " ")
    # Relative RMSE (forecasting.monitoring.performance.relative_rmse): the error as a share of
    # the last close, which pools a $0.20 and a $130 stock; a dollar RMSE would be $1.41.
    assert footer.startswith("4 realized: RMSE 1.7% of the last close vs naive 0.8%"), footer
    assert "$" not in footer and footer.endswith("; 1 waiting for their target day")
    assert max(len(line) for line in out.splitlines()) <= 100


def test_alerts_fit_100_columns_and_all_shows_when_each_resolved(capsys, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    long = "Returns are 2.31x as volatile over the last 60 sessions as in the training years " * 2
    alerts = [
        {
            "ticker": "NVDA",
            "kind": "data_quality",
            "severity": "warning",
            "message": long,
            "metric": "repeated_volume_sessions",
        },
        {
            "ticker": "NVDA",
            "kind": "performance_drift",
            "severity": "critical",
            "metric": "realized_rmse_ratio",
            "message": "worse",
            "resolved": True,
        },
    ]
    _store(url, forecasts=[], alerts=alerts)
    assert main(["alerts"]) == 0
    open_only = capsys.readouterr().out
    assert "repeated_volume_sessions" in open_only and "realized_rmse_ratio" not in open_only
    assert "training years" in open_only
    assert main(["alerts", "--all"]) == 0
    everything = capsys.readouterr().out
    for line in (open_only + everything).splitlines():
        assert len(line) <= 100, line
    assert everything.splitlines()[0].endswith("status (UTC)")
    resolved = next(line for line in everything.splitlines() if "realized_rmse_ratio" in line)
    assert re.search(r"resolved 20\d\d-\d\d-\d\d \d\d:\d\d$", resolved), resolved
    still_open = next(line for line in everything.splitlines() if "repeated_volume" in line)
    assert " open" in still_open
