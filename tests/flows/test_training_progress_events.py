"""A fit updates its progress artifact a bounded number of times (issue 26, 4).

Each update of a Prefect artifact is an event in the UI's event feed (the client emits
`prefect.artifact.updated`): a retrain of 200 epochs was 200 events, a backfill thousands, and the
alert events drowned in them.
"""

from __future__ import annotations

import logging

import pytest

from flows import progress


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def artifacts(monkeypatch):
    """Every create and update of a progress artifact, recorded instead of sent."""
    calls: list[tuple[str, float, str]] = []

    def create(value, *, key, description):
        calls.append(("create", value, description))
        return "artifact-1"

    def update(artifact_id, value, description):
        assert artifact_id == "artifact-1"
        calls.append(("update", value, description))

    monkeypatch.setattr(progress, "create_progress_artifact", create)
    monkeypatch.setattr(progress, "update_progress_artifact", update)
    return calls


def _fit(callback, epochs: int, clock: Clock, seconds_per_epoch: float) -> None:
    callback.on_train_begin()
    for epoch in range(epochs):
        clock.now += seconds_per_epoch
        callback.on_epoch_end(epoch, {"loss": 0.5, "val_loss": 0.6})
    callback.on_train_end()


@pytest.mark.parametrize("seconds_per_epoch", [0.01, 1.0, 60.0])
def test_a_long_fit_emits_a_bounded_number_of_artifact_events(artifacts, seconds_per_epoch):
    clock = Clock()
    logger = logging.getLogger("test.progress")
    callback = progress.TrainingProgress(kind="retrain", max_epochs=200, logger=logger, clock=clock)
    _fit(callback, 200, clock, seconds_per_epoch)
    # One create, at most one update per tenth of the bar, one "finished".
    assert len(artifacts) <= 12
    assert artifacts[0] == ("create", 0.0, "retrain: starting")
    assert artifacts[-1] == ("update", 100.0, "retrain: finished")
    shown = [value for kind, value, _ in artifacts if kind == "update"]
    assert shown == sorted(shown)


def test_a_fast_fit_updates_its_bar_only_at_the_end(artifacts):
    clock = Clock()
    callback = progress.TrainingProgress(
        kind="retrain", max_epochs=50, logger=logging.getLogger("test.progress"), clock=clock
    )
    _fit(callback, 50, clock, seconds_per_epoch=0.05)  # 2.5 s in all
    assert [kind for kind, _, _ in artifacts] == ["create", "update"]


def test_a_slow_fit_still_moves_the_bar(artifacts):
    clock = Clock()
    callback = progress.TrainingProgress(
        kind="retrain", max_epochs=20, logger=logging.getLogger("test.progress"), clock=clock
    )
    _fit(callback, 20, clock, seconds_per_epoch=30.0)
    middle = [(value, text) for kind, value, text in artifacts[1:-1]]
    assert len(middle) == 10
    assert middle[0] == (10.0, "retrain epoch 2/20: loss 0.5, val_loss 0.6")


def test_every_epoch_is_still_logged(artifacts, caplog):
    clock = Clock()
    logger = logging.getLogger("test.progress")
    callback = progress.TrainingProgress(kind="retrain", max_epochs=30, logger=logger, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.progress"):
        _fit(callback, 30, clock, seconds_per_epoch=0.01)
    lines = [r.getMessage() for r in caplog.records if r.name == "test.progress"]
    assert len(lines) == 30 and lines[-1].startswith("retrain epoch 30/30: ")


def test_the_throttle_moves_by_steps_and_waits_between_moves():
    clock = Clock()
    throttle = progress.Throttle(step=10.0, min_interval_s=5.0, clock=clock)
    assert not throttle.due(9.9)  # not a whole step
    assert not throttle.due(50.0)  # a step, but no time has passed
    clock.now = 5.0
    assert throttle.due(50.0)
    clock.now = 100.0
    assert not throttle.due(55.0) and throttle.due(60.0)
