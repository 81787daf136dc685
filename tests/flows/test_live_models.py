"""The in-memory champions of a long-lived process: exact by sha256, bounded, least recent out."""

from __future__ import annotations

from flows.tasks import LiveModels


def test_a_kept_model_is_used_only_while_its_sha256_is_the_champions() -> None:
    models = LiveModels()
    model = object()
    models.keep("NVDA", "a" * 64, model)
    assert models.get("NVDA", "a" * 64) is model
    assert models.get("NVDA", "b" * 64) is None
    models.forget("NVDA")
    assert models.get("NVDA", "a" * 64) is None


def test_the_least_recently_used_ticker_goes_first_beyond_capacity() -> None:
    models = LiveModels(capacity=2)
    kept = {ticker: object() for ticker in ("NVDA", "AMD", "AVGO")}
    models.keep("NVDA", "n", kept["NVDA"])
    models.keep("AMD", "a", kept["AMD"])
    assert models.get("NVDA", "n") is kept["NVDA"]  # NVDA is now the most recent
    models.keep("AVGO", "v", kept["AVGO"])
    assert len(models) == 2
    assert models.get("AMD", "a") is None
    assert models.get("NVDA", "n") is kept["NVDA"]
    assert models.get("AVGO", "v") is kept["AVGO"]
