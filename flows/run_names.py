"""Flow- and task-run names that tell runs apart in the Prefect UI: the ticker and the as-of date.

"NVDA 2025-02-11", "NVDA latest" (a live run, until the pipeline knows its as-of date and the
run renames itself), "NVDA backfill 2025-01-02..2025-01-31", "NVDA, AVGO, QCOM latest". Never
the source: ``sample`` says nothing and a file path is noise.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from forecasting.tickers import normalize_ticker

_MOST_TICKERS_NAMED = 4


def _ticker(value: Any) -> str:
    try:
        return normalize_ticker(str(value))
    except Exception:  # a bad symbol fails the run itself, with its own message
        return str(value).strip().upper() or "?"


def _day(value: Any) -> str:
    if value is None or value == "":
        return "latest"
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)[:10]


def _tickers(values: Any) -> str:
    if isinstance(values, str):
        values = [part for part in values.split(",") if part.strip()]
    names = list(dict.fromkeys(_ticker(value) for value in values or ()))
    if not names:
        return "tickers"
    shown = ", ".join(names[:_MOST_TICKERS_NAMED])
    more = len(names) - _MOST_TICKERS_NAMED
    return shown + (f" +{more}" if more > 0 else "")


def day_name(ticker: Any, as_of: Any) -> str:
    """``NVDA 2025-02-11``, or ``NVDA latest`` before a live run knows its as-of date."""
    return f"{_ticker(ticker)} {_day(as_of)}"


def range_name(ticker: Any, start: Any, end: Any) -> str:
    """``NVDA backfill 2025-01-02..2025-01-31``."""
    return f"{_ticker(ticker)} backfill {_day(start)}..{_day(end)}"


def fleet_day_name(tickers: Iterable[Any], as_of: Any) -> str:
    """``NVDA, AVGO, QCOM 2025-02-11`` (four tickers named, then ``+N``)."""
    return f"{_tickers(tickers)} {_day(as_of)}"


def fleet_range_name(tickers: Iterable[Any], start: Any, end: Any) -> str:
    """``NVDA, AVGO backfill 2025-01-02..2025-01-31``."""
    return f"{_tickers(tickers)} backfill {_day(start)}..{_day(end)}"


def _parameters() -> Mapping[str, Any]:
    from prefect.runtime import flow_run

    return flow_run.parameters or {}


def daily_run_name() -> str:
    """The daily flow's ``flow_run_name``."""
    parameters = _parameters()
    return day_name(parameters.get("ticker", "NVDA"), parameters.get("as_of"))


def backfill_run_name() -> str:
    """The backfill flow's ``flow_run_name``."""
    parameters = _parameters()
    return range_name(
        parameters.get("ticker", "NVDA"), parameters.get("start"), parameters.get("end")
    )


def fleet_forecast_run_name() -> str:
    """The many-ticker daily flow's ``flow_run_name``."""
    parameters = _parameters()
    return fleet_day_name(parameters.get("tickers", ()), parameters.get("as_of"))


def fleet_backfill_run_name() -> str:
    """The many-ticker backfill's ``flow_run_name``."""
    parameters = _parameters()
    return fleet_range_name(
        parameters.get("tickers", ()), parameters.get("start"), parameters.get("end")
    )


def ticker_task_name(parameters: dict[str, Any]) -> str:
    """A many-ticker run's ``forecast-ticker`` task: ``NVDA 2025-02-11`` / ``NVDA latest``."""
    job = parameters["job"]
    return day_name(job.ticker, job.as_of)


def backfill_task_name(parameters: dict[str, Any]) -> str:
    """A many-ticker backfill's ``backfill-ticker`` task: ``NVDA backfill 2025-01-02..``."""
    job = parameters["job"]
    return range_name(job.ticker, job.start, job.end)


def rename_flow_run(flow_run_id: Any, name: str) -> None:
    """Rename a run once its name is known (a live run's as-of date comes from its data).
    A failed rename is logged, never raised: the run's work is done by then."""
    if not flow_run_id:
        return
    from prefect import get_client

    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(UUID(str(flow_run_id)), name=name)
    except Exception as error:  # the name is cosmetic; the forecast is stored
        logging.getLogger(__name__).warning("could not rename flow run to %r: %s", name, error)
