"""Training progress in the Prefect UI: a progress artifact that moves a bounded number of times.

Every update of a Prefect artifact is an event in the UI's event feed (the client emits
``prefect.artifact.updated``): updated after every epoch, a retrain of 200 epochs was 200 events
and a backfill thousands, drowning the alert events. The bar now moves only by whole steps
(``step`` percent) and at most once every ``min_interval_s`` seconds, so a fit emits at most
``2 + 100 / step`` events (12 by default) whatever its epochs, and a fit of a few seconds two:
created, finished. Every epoch's losses still go to the run's log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import keras
from prefect.artifacts import create_progress_artifact, update_progress_artifact

STEP_PERCENT = 10.0
"""The bar moves by at least this much of the maximum epochs."""
MIN_INTERVAL_S = 5.0
"""...and at most once in this many seconds."""


_CARDS: ContextVar[bool] = ContextVar("nvda_forecast_training_cards", default=True)


@contextmanager
def without_training_cards() -> Iterator[None]:
    """Fits inside make no progress artifact (a backfill shows one bar of its own); their
    losses still go to the log."""
    token = _CARDS.set(False)
    try:
        yield
    finally:
        _CARDS.reset(token)


class Throttle:
    """When a progress bar may move: by ``step`` percent or more, ``min_interval_s`` after the
    last move. For any progress artifact (a fit's, a backfill's): each move is one event."""

    def __init__(
        self,
        *,
        step: float = STEP_PERCENT,
        min_interval_s: float = MIN_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.step = step
        self.min_interval_s = min_interval_s
        self.clock = clock
        self.shown = 0.0
        self.shown_at = clock()

    def restart(self) -> None:
        """The bar is back at 0 (a new artifact), shown now."""
        self.shown, self.shown_at = 0.0, self.clock()

    def due(self, percent: float) -> bool:
        """Whether the bar should move to ``percent`` now; if so, it counts as moved."""
        now = self.clock()
        if percent - self.shown >= self.step and now - self.shown_at >= self.min_interval_s:
            self.shown, self.shown_at = percent, now
            return True
        return False


class TrainingProgress(keras.callbacks.Callback):
    """Log the losses of each epoch; move a progress artifact now and then.

    Early stopping usually ends training before ``max_epochs``; the bar then jumps to 100%.
    """

    def __init__(
        self,
        *,
        kind: str,
        max_epochs: int,
        logger: logging.Logger | Any,
        step: float = STEP_PERCENT,
        min_interval_s: float = MIN_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.max_epochs = max_epochs
        self.logger = logger
        self.throttle = Throttle(step=step, min_interval_s=min_interval_s, clock=clock)
        self.artifact_id = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not _CARDS.get():
            self.artifact_id = None
            return
        self.artifact_id = create_progress_artifact(
            0.0, key="training-progress", description=f"{self.kind}: starting"
        )
        self.throttle.restart()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        done = epoch + 1
        line = (
            f"{self.kind} epoch {done}/{self.max_epochs}: "
            f"loss {logs.get('loss', float('nan')):.4g}, "
            f"val_loss {logs.get('val_loss', float('nan')):.4g}"
        )
        self.logger.info(line)
        if self.artifact_id is None:
            return
        percent = min(100.0, 100.0 * done / self.max_epochs)
        if self.throttle.due(percent):
            update_progress_artifact(self.artifact_id, percent, line)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.artifact_id is not None:
            update_progress_artifact(self.artifact_id, 100.0, f"{self.kind}: finished")
