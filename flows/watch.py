"""Step 9: score and watch: the checks of a run, with what they read from the database.

The checks themselves are pure (`forecasting.monitoring.drift`, `forecasting.monitoring.alerting`).
Their findings are applied to the `alerts` table by `flows.alerts` inside the run's transaction
and delivered by `flows.notify` once it has committed. A failed run's alert is opened and
delivered by `flows.failures`, outside the run.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from prefect import get_run_logger

from db.engine import get_engine, unit_of_work
from db.repository import open_alerts, read_realized_errors
from flows.retry import io_task
from forecasting.config import DriftConfig
from forecasting.monitoring.alerting import RETRAIN_KINDS, Finding
from forecasting.monitoring.drift import run_checks
from forecasting.monitoring.performance import relative_rmse


@io_task
def open_drift_alerts(database_url: str, ticker: str, since: dt.date | None) -> tuple[str, ...]:
    """Kinds of open drift alerts opened after ``since``, the last full retrain's as-of date."""
    with unit_of_work(get_engine(database_url)) as session:
        alerts = open_alerts(session=session, ticker=ticker)
    # A retrain on data through ``since`` already answered alerts opened up to that day: a
    # drift that lasts months must not turn every day into a retrain.
    return tuple(
        sorted(
            {
                alert.kind
                for alert in alerts
                if alert.kind in RETRAIN_KINDS and (since is None or alert.as_of_date > since)
            }
        )
    )


@io_task
def watch(
    database_url: str,
    ticker: str,
    prices: pd.DataFrame,
    *,
    judge_as_of: dt.date | None,
    train_window: tuple[dt.date, dt.date],
    reference: pd.DataFrame,
    restated: bool,
    restatement: str | None = None,
    download_failed: bool,
    challenger_rejected: bool | None,
    promotion_reason: str,
    config: DriftConfig,
) -> list[Finding]:
    """Run the drift, performance, data-quality and pipeline checks; every metric, every day.

    ``reference`` is the held-out record whose error the realized error is compared with.
    """
    with unit_of_work(get_engine(database_url)) as session:
        # Only closes up to the run's last bar: a replay must not see later days.
        realized = read_realized_errors(
            session=session, ticker=ticker, through=prices.index[-1].date(), live_only=True
        )
    findings = run_checks(
        prices,
        now=dt.datetime.now(dt.UTC),
        config=config,
        as_of=judge_as_of,
        train_start=train_window[0],
        train_end=train_window[1],
        realized=realized,
        reference_relative_rmse=relative_rmse(reference),
        restated=restated,
        restatement=restatement,
        download_failed=download_failed,
        challenger_rejected=challenger_rejected,
        promotion_reason=promotion_reason,
    )
    breached = [f for f in findings if f.breached]
    get_run_logger().info(
        "checks: %d metrics, %d breached%s",
        len(findings),
        len(breached),
        "".join(f"; {f.metric} {f.value:.3g} (threshold {f.threshold:g})" for f in breached),
    )
    return findings
