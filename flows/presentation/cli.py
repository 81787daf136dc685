"""The ``nvda-forecast`` command line: run the daily flow once, serve it, inspect the store."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from flows.api import configure_temporary_api, ensure_api
from flows.errors import ACTIONABLE
from forecasting.errors import NvdaForecastError, one_line


def _prepare_environment(verbose: bool) -> None:
    """Set, before TensorFlow and Prefect are imported, how much of their chatter a person sees."""
    if verbose:
        # flows/__init__ defaults it to 3; -v asks for everything.
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    configure_temporary_api()
    # Flow-run logs still reach the Prefect API (and its UI) at INFO, tracebacks included; the
    # terminal shows the summary or one error line, and every log line with --verbose.
    os.environ.setdefault(
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "INFO" if verbose else "CRITICAL"
    )
    # Our modules' own log lines (a dropped empty row, a restatement) go to the run's logs too.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "forecasting,db,flows")
    if not os.environ.get("PREFECT_API_URL"):
        # Ephemeral mode on a machine that may be offline: telemetry would only log errors.
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not verbose:
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)


def _check_source(source: str, ticker: str, *, read: bool = True) -> None:
    """Fail at once on a bad ``--source`` (with ``read``, a missing or empty file too), before
    the slow imports."""
    from forecasting.prices.price_files import read_price_csv
    from forecasting.prices.sources import CsvSource, parse_source, source_for_ticker

    parsed = parse_source(source_for_ticker(source, ticker))
    if read and isinstance(parsed, CsvSource):
        # A second read in the flow costs milliseconds; loading Prefect and TensorFlow and
        # starting the API first cost twenty seconds before the same one-line error.
        read_price_csv(parsed.path, ticker=ticker)


def _start() -> None:
    """Make sure a Prefect API answers, loading TensorFlow (quietly) while it starts."""
    from flows.quiet import import_tensorflow

    ensure_api(meanwhile=import_tensorflow)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD") from None


def _ticker(text: str) -> str:
    from forecasting.tickers import normalize_ticker

    try:
        return normalize_ticker(text)
    except NvdaForecastError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _ticker_list(text: str) -> list[str]:
    tickers = [_ticker(part) for part in text.split(",") if part.strip()]
    if not tickers:
        raise argparse.ArgumentTypeError("give tickers separated by commas, e.g. NVDA,AMD")
    return tickers


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--ticker", type=_ticker, default=None, help="ticker symbol (default NVDA; any case)"
    )
    which.add_argument(
        "--tickers",
        type=_ticker_list,
        help="many tickers in one run, comma-separated (default: NVDA_FORECAST_TICKERS)",
    )
    which.add_argument("--watchlist", type=Path, help="a file of tickers, one a line, # comments")
    parser.add_argument(
        "--source",
        default="yahoo",
        help="where prices come from: yahoo, sample (bundled NVDA, AVGO, QCOM, TXN) or "
        "csv:PATH, where PATH may hold {ticker} (csv:data/{ticker}.csv)",
    )
    parser.add_argument(
        "--task-runner",
        choices=("local", "dask"),
        default=None,
        help="where the tickers of a many-ticker run go (default NVDA_FORECAST_TASK_RUNNER, "
        "local); dask uses NVDA_FORECAST_DASK_ADDRESS or starts a LocalCluster",
    )


def _fleet_tickers(args: argparse.Namespace) -> list[str] | None:
    """The tickers of a many-ticker run, or None for a single-ticker run (``args.ticker``)."""
    from flows.settings import get_settings
    from forecasting.tickers import read_watchlist, resolve_tickers

    if args.tickers:
        return resolve_tickers(args.tickers)
    if args.watchlist:
        return resolve_tickers(read_watchlist(args.watchlist))
    if args.ticker is None and get_settings().tickers:
        return resolve_tickers(get_settings().tickers)
    args.ticker = args.ticker or "NVDA"
    return None


def _add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", choices=("auto", "retrain", "finetune"), default="auto")
    parser.add_argument(
        "--adjust-splits",
        action="store_true",
        help="adjust the bars before an unadjusted split instead of refusing the file "
        "(recorded in ingestions.adjustment)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, exposed for the tests and for shell completion generators."""
    parser = argparse.ArgumentParser(
        prog="nvda-forecast",
        description="Daily LSTM forecast of a next close, stored in SQL, watched for drift.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show Prefect and TF logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the daily flow once (no Prefect server needed)")
    _add_run_options(run)
    run.add_argument("--as-of", type=_date, help="behave as if today were this date (YYYY-MM-DD)")
    _add_pipeline_options(run)

    backfill = commands.add_parser(
        "backfill", help="run the daily pipeline for every session of a date range"
    )
    _add_run_options(backfill)
    backfill.add_argument("--from", dest="start", type=_date, required=True, help="YYYY-MM-DD")
    backfill.add_argument("--to", dest="end", type=_date, required=True, help="YYYY-MM-DD")
    backfill.add_argument(
        "--redo", action="store_true", help="recompute sessions that already have a forecast"
    )
    _add_pipeline_options(backfill)

    serve = commands.add_parser("serve", help="serve the deployment on its daily schedule")
    _add_run_options(serve)
    serve.add_argument("--cron", help="override the schedule (cron, America/New_York)")

    database = commands.add_parser("db", help="manage the database schema")
    database_commands = database.add_subparsers(dest="db_command", required=True)
    upgrade = database_commands.add_parser("upgrade", help="apply migrations up to a revision")
    upgrade.add_argument("revision", nargs="?", default="head")
    database_commands.add_parser("current", help="print the schema revision")

    history = commands.add_parser("history", help="recent forecasts and their realized error")
    history.add_argument("--ticker", type=_ticker, default="NVDA")
    history.add_argument("--days", type=int, default=30, help="forecasts made in the last N days")

    alerts = commands.add_parser("alerts", help="open alerts (all alerts with --all)")
    alerts.add_argument("--ticker", type=_ticker, default=None)
    alerts.add_argument("--all", action="store_true", help="include resolved alerts")
    return parser


def _run(args: argparse.Namespace) -> int:
    return _forecast(args, as_of=args.as_of)


def _backfill(args: argparse.Namespace) -> int:
    if args.start > args.end:
        raise NvdaForecastError(f"--from {args.start} is after --to {args.end}; swap them")
    return _forecast(args, start=args.start, end=args.end, redo=args.redo)


def _forecast(args: argparse.Namespace, **when) -> int:
    """`run` and `backfill`: one ticker's flow, or the many-ticker flow, with ``when`` (the
    as-of date, or the range) and the options both commands share."""
    tickers = _fleet_tickers(args)
    # A many-ticker run reads no file here: one bad file fails its ticker only.
    _check_source(args.source, tickers[0] if tickers else args.ticker, read=tickers is None)
    backfill = args.command == "backfill"
    if not args.json:
        print(_announcement(args, tickers, **when), flush=True)
    _start()
    options = {"source": args.source, "mode": args.mode, "adjust_splits": args.adjust_splits}
    if tickers is not None:
        from flows.fleet import fleet_backfill, fleet_forecast, run_fleet
        from flows.settings import get_settings
        from flows.task_runners import runner_for

        runner = runner_for(get_settings(), args.task_runner)
        fleet_flow = fleet_backfill if backfill else fleet_forecast
        summary = run_fleet(fleet_flow, runner, tickers=tickers, **options, **when)
    elif backfill:
        from flows.backfill import backfill as backfill_flow

        summary = backfill_flow(ticker=args.ticker, **options, **when)
    else:
        from flows.daily import daily_forecast

        summary = daily_forecast(ticker=args.ticker, **options, **when)
    print(json.dumps(summary.to_dict(), indent=2) if args.json else _text(summary))
    if tickers is None:
        return 0
    for outcome in summary.outcomes:
        if not outcome.ok:
            print(f"error: {outcome.ticker}: {outcome.error}", file=sys.stderr)
    return 1 if summary.failed else 0


def _text(summary) -> str:
    """A run's summary for the terminal (a backfill's and a many-ticker run's say it alike)."""
    from flows.report.text import to_text
    from flows.summary import RunSummary

    return to_text(summary) if isinstance(summary, RunSummary) else summary.to_text()


def _announcement(args: argparse.Namespace, tickers: list[str] | None, **when) -> str:
    """What the command is about to do, before the slow imports."""
    if tickers is not None:
        what = "Backfilling" if args.command == "backfill" else "Forecasting"
        return f"{what} {len(tickers)} tickers from {args.source} ..."
    if args.command == "backfill":
        return f"Backfilling {args.ticker} from {args.source}, {when['start']} to {when['end']} ..."
    return f"Running the daily forecast for {args.ticker} from {args.source} ..."


def _serve(args: argparse.Namespace) -> int:
    tickers = _fleet_tickers(args)
    if tickers is not None:
        _start()
        from flows.deployment import serve_fleet

        serve_fleet(
            tickers=tickers, source=args.source, cron=args.cron, task_runner=args.task_runner
        )
        return 0
    _check_source(args.source, args.ticker)
    _start()
    from flows.deployment import serve

    serve(ticker=args.ticker, source=args.source, cron=args.cron)
    return 0


def _db(args: argparse.Namespace) -> int:
    from db.engine import get_engine, mask_url
    from db.migrate import current_revision, upgrade
    from flows.settings import get_settings

    url = get_settings().database_url
    engine = get_engine(url)
    if args.db_command == "upgrade":
        upgrade(url, revision=args.revision)
        print(f"{mask_url(engine.url)} is at revision {current_revision(engine)}")
    else:
        print(current_revision(engine) or "empty (run `nvda-forecast db upgrade`)")
    return 0


def _history(args: argparse.Namespace) -> int:
    from flows.presentation.tables import forecast_history_table

    print(forecast_history_table(ticker=args.ticker, days=args.days))
    return 0


def _alerts(args: argparse.Namespace) -> int:
    from flows.presentation.tables import alerts_table

    print(alerts_table(ticker=args.ticker, include_resolved=args.all))
    return 0


COMMANDS = {
    "run": _run,
    "backfill": _backfill,
    "serve": _serve,
    "db": _db,
    "history": _history,
    "alerts": _alerts,
}


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nvda-forecast`` console script."""
    args = build_parser().parse_args(argv)
    _prepare_environment(args.verbose)
    # SIGTERM (a scheduler's stop, `kill`, a container's shutdown) ends the command like Ctrl-C
    # does: the exit handlers run, so the temporary Prefect API it started stops with it
    # instead of living on as an orphan.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        return COMMANDS[args.command](args)
    except ACTIONABLE as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.verbose:
            raise
        # A bug or an error we have no advice for: still one line; the traceback is in the
        # run's logs (the Prefect UI) and, with -v, here.
        print(f"error: {one_line(error)} (rerun with -v for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
