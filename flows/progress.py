"""Training progress in the Prefect UI: a progress artifact updated after every epoch."""

from __future__ import annotations

import logging
from typing import Any

import keras
from prefect.artifacts import create_progress_artifact, update_progress_artifact


class TrainingProgress(keras.callbacks.Callback):
    """Update a progress artifact and log the losses at the end of each epoch.

    Early stopping usually ends training before ``max_epochs``; the bar then jumps to 100%.
    """

    def __init__(self, *, kind: str, max_epochs: int, logger: logging.Logger | Any) -> None:
        super().__init__()
        self.kind = kind
        self.max_epochs = max_epochs
        self.logger = logger
        self.artifact_id = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.artifact_id = create_progress_artifact(
            0.0, key="training-progress", description=f"{self.kind}: starting"
        )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        done = epoch + 1
        line = (
            f"{self.kind} epoch {done}/{self.max_epochs}: "
            f"loss {logs.get('loss', float('nan')):.4g}, "
            f"val_loss {logs.get('val_loss', float('nan')):.4g}"
        )
        self.logger.info(line)
        if self.artifact_id is not None:
            update_progress_artifact(self.artifact_id, 100.0 * done / self.max_epochs, line)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.artifact_id is not None:
            update_progress_artifact(self.artifact_id, 100.0, f"{self.kind}: finished")
