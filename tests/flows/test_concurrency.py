"""Runs of one ticker never overlap, whichever deployment (or command) started them."""

from __future__ import annotations

import threading

import pytest

from flows.concurrency import ensure_ticker_limit, ticker_guard, ticker_limit_name


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
