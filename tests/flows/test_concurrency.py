"""Runs of one ticker never overlap, whichever deployment (or command) started them."""

from __future__ import annotations

import threading
import time

import pytest

from flows.concurrency import (
    ensure_ticker_limit,
    ensure_ticker_limits,
    ticker_guard,
    ticker_limit_name,
    tickers_held,
)


def test_the_ticker_limit_is_created_once_with_one_slot(prefect_server):
    from prefect import get_client

    assert ticker_limit_name("nvda") == "nvda-forecast-ticker-NVDA"
    ensure_ticker_limit("NVDA")
    ensure_ticker_limit("NVDA")  # idempotent: deploy.py, serve and every run call it
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name("nvda-forecast-ticker-NVDA")
    assert (limit.limit, limit.active) == (1, True)


def test_a_ticker_held_blocks_its_second_run_but_not_other_tickers(prefect_server):
    outcome: dict[str, str] = {}

    def run(ticker: str, timeout: float) -> None:
        try:
            with ticker_guard(ticker, timeout_seconds=timeout):
                outcome[ticker] = "ran"
        except TimeoutError:
            outcome[ticker] = "timed out"

    # While NVDA's slot is held, AMD runs at once and a second NVDA run cannot start.
    with ticker_guard("NVDA", timeout_seconds=60):
        others = [
            threading.Thread(target=run, args=("AMD", 60.0)),
            threading.Thread(target=run, args=("NVDA", 2.0)),
        ]
        for thread in others:
            thread.start()
        for thread in others:
            thread.join(timeout=120)
        assert outcome == {"AMD": "ran", "NVDA": "timed out"}
    # Released: the next NVDA run gets the slot.
    run("NVDA", 60.0)
    assert outcome["NVDA"] == "ran"


def test_a_slot_left_taken_by_a_killed_run_fails_in_one_line_that_says_how_to_free_it(
    prefect_server, monkeypatch
):
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    from flows.concurrency import TickerBusyError
    from flows.settings import get_settings

    name = ensure_ticker_limit("STALE")
    with get_client(sync_client=True) as client:  # what a run killed with its API leaves
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=1))
    monkeypatch.setenv("NVDA_FORECAST_TICKER_WAIT_SECONDS", "1.5")
    get_settings.cache_clear()

    with pytest.raises(TickerBusyError) as raised, ticker_guard("STALE"):
        pass
    message = str(raised.value)
    assert "\n" not in message and "STALE is still taken by another run after 2 s" in message
    assert f"`prefect gcl update {name} --active-slots 0`" in message

    with get_client(sync_client=True) as client:  # the command's effect
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
    with ticker_guard("STALE"):
        ran = True
    assert ran


def active_slots(*tickers: str) -> dict[str, int]:
    from prefect import get_client

    with get_client(sync_client=True) as client:
        return {
            ticker: client.read_global_concurrency_limit_by_name(
                ticker_limit_name(ticker)
            ).active_slots
            for ticker in tickers
        }


def test_many_tickers_limits_are_created_once_and_a_wrong_limit_is_set_back_to_one(
    prefect_server,
):
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    name = ensure_ticker_limit("WIDE")
    with get_client(sync_client=True) as client:
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=3))
    names = ensure_ticker_limits(["WIDE", "NEW1", "NEW2"])
    assert names == [ticker_limit_name(t) for t in ("WIDE", "NEW1", "NEW2")]
    ensure_ticker_limits(["WIDE", "NEW1", "NEW2"])
    with get_client(sync_client=True) as client:
        limits = [client.read_global_concurrency_limit_by_name(n) for n in names]
    assert [(limit.limit, limit.active) for limit in limits] == [(1, True)] * 3


def test_a_many_ticker_run_holds_all_its_tickers_at_once_and_lets_them_go(prefect_server):
    with tickers_held(["HELD1", "HELD2"]) as held:
        assert held
        assert active_slots("HELD1", "HELD2") == {"HELD1": 1, "HELD2": 1}
        # A single-ticker run of one of them waits meanwhile.
        with pytest.raises(TimeoutError), ticker_guard("HELD2", timeout_seconds=1.0):
            pass
    assert active_slots("HELD1", "HELD2") == {"HELD1": 0, "HELD2": 0}


def test_a_ticker_held_elsewhere_makes_the_many_ticker_run_take_none_and_not_wait(
    prefect_server,
):
    with ticker_guard("BUSY", timeout_seconds=60):
        started = time.perf_counter()
        with tickers_held(["FREE", "BUSY"]) as held:
            assert not held
            # Nothing was taken: the free ticker's own guard gets its slot at once.
            assert active_slots("FREE", "BUSY") == {"FREE": 0, "BUSY": 1}
            with ticker_guard("FREE", timeout_seconds=5):
                assert active_slots("FREE") == {"FREE": 1}
        assert time.perf_counter() - started < 10
    assert active_slots("FREE", "BUSY") == {"FREE": 0, "BUSY": 0}


def test_a_ticker_still_taken_logs_no_prefect_error_line_before_its_own(prefect_server):
    """The command's stderr held Prefect's ERROR line ("Service 'ConcurrencySlotAcquisition...'
    failed to process item") above the one-line error: two lines for one fact. Both outcomes
    Prefect logs that way (a timed-out wait, a one-try acquisition refused) are handled here."""
    import logging

    from flows.concurrency import TickerBusyError

    class Keep(logging.Handler):
        def __init__(self):
            super().__init__(logging.DEBUG)
            self.records: list[logging.LogRecord] = []

        def emit(self, record):
            self.records.append(record)

    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    name = ensure_ticker_limit("NOISY")
    with get_client(sync_client=True) as client:  # taken by a run Prefect alone knows of
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=1))
    kept = Keep()
    prefect_logger = logging.getLogger("prefect._internal.concurrency")
    prefect_logger.addHandler(kept)
    try:
        with pytest.raises(TickerBusyError), ticker_guard("NOISY", timeout_seconds=1.0):
            pass
        with tickers_held(["NOISY", "QUIET"]) as held:
            assert not held
        time.sleep(0.5)  # the service logs from its own thread
    finally:
        prefect_logger.removeHandler(kept)
        with get_client(sync_client=True) as client:
            update = GlobalConcurrencyLimitUpdate(active_slots=0)
            client.update_global_concurrency_limit(name, update)
    errors = [r.getMessage() for r in kept.records if r.levelno >= logging.ERROR]
    assert errors == []
