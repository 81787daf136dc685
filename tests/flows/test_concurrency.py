"""Runs of one ticker never overlap, whichever deployment (or command) started them."""

from __future__ import annotations

import threading
import time

from flows.concurrency import ensure_ticker_limit, ticker_guard, ticker_limit_name


def test_the_ticker_limit_is_created_once_with_one_slot(prefect_server):
    from prefect import get_client

    assert ticker_limit_name("nvda") == "nvda-forecast-ticker-NVDA"
    ensure_ticker_limit("NVDA")
    ensure_ticker_limit("NVDA")  # idempotent: deploy.py, serve and every run call it
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name("nvda-forecast-ticker-NVDA")
    assert (limit.limit, limit.active) == (1, True)


def test_two_runs_of_a_ticker_take_turns_and_other_tickers_do_not_wait(prefect_server):
    spans: dict[str, list[tuple[float, float]]] = {"NVDA": [], "AMD": []}

    def run(ticker: str) -> None:
        with ticker_guard(ticker, timeout_seconds=60):
            started = time.monotonic()
            time.sleep(1.0)
            spans[ticker].append((started, time.monotonic()))

    threads = [threading.Thread(target=run, args=(t,)) for t in ("NVDA", "NVDA", "AMD")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    (first, second) = sorted(spans["NVDA"])
    assert second[0] >= first[1] - 0.05, "two runs of NVDA held the ticker at the same time"
    (amd,) = spans["AMD"]
    assert amd[0] < second[0], "AMD waited for NVDA's slot"
