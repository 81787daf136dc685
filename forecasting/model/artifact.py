"""The model as a file: save and load a self-contained ``.keras`` artifact, checked by sha256.

Loading needs :mod:`forecasting.model.network` imported: it registers the distributional head
and the loss with Keras' serialization (importing this package does).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import keras

import forecasting.model.network  # noqa: F401  (registers the head and the loss for loading)
from forecasting.errors import ModelArtifactError

RETRAIN_HINT = "retrain with --mode retrain"


@dataclass(frozen=True, eq=False)
class SavedModel:
    """A model as its ``.keras`` file: the bytes and their sha256.

    Plain data, so it is what crosses a task (or process) boundary: a live ``keras.Model``
    holds TensorFlow state that neither pickles cheaply nor belongs to another process. Loading
    one costs about 0.1 s and no retrace (see :mod:`forecasting.model.trace`).
    """

    content: bytes
    sha256: str

    @classmethod
    def of(cls, model: keras.Model) -> SavedModel:
        """Save ``model``, which its caller hands on: it must not change it afterwards."""
        with tempfile.TemporaryDirectory(prefix="nvda-forecast-") as scratch:
            path = Path(scratch) / "model.keras"
            sha256 = save_model(model, path)
            saved = cls(path.read_bytes(), sha256)
        _handed_on.put(sha256, model)
        return saved

    def load(self) -> keras.Model:
        """The model, its bytes checked against the sha256 first."""
        check_sha256(self.content, self.sha256, source="handed between tasks")
        live = _handed_on.take(self.sha256)
        if live is not None:
            return live
        with tempfile.TemporaryDirectory(prefix="nvda-forecast-") as scratch:
            path = Path(scratch) / "model.keras"
            path.write_bytes(self.content)
            return load_model(path)  # the bytes were checked above


class _HandedOn:
    """The models this process saved last, by sha256, each taken by one later load.

    A fine-tune saves its candidate and the forecast task loads those same bytes next, in the
    same process: it takes the live model instead of rebuilding it from the file (about 0.13 s
    a day for the default LSTM). Taken once, because a loaded model may be changed in place (a
    fine-tune walks it forward); in another process the load reads the bytes, with the same
    weights (a test compares them).
    """

    def __init__(self, size: int = 2) -> None:
        self._models: OrderedDict[str, keras.Model] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def put(self, sha256: str, model: keras.Model) -> None:
        with self._lock:
            self._models[sha256] = model
            self._models.move_to_end(sha256)
            while len(self._models) > self._size:
                self._models.popitem(last=False)

    def take(self, sha256: str) -> keras.Model | None:
        with self._lock:
            return self._models.pop(sha256, None)


_handed_on = _HandedOn()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_sha256(content: bytes, sha256: str, *, source: str) -> None:
    """Raise :class:`ModelArtifactError` unless ``content`` has the recorded ``sha256``."""
    _check_digest(hashlib.sha256(content).hexdigest(), sha256, source=source)


def _check_digest(actual: str, sha256: str, *, source: str) -> None:
    if actual != sha256.lower():
        raise ModelArtifactError(
            f"model file {source} has sha256 {actual[:12]}..., not the recorded "
            f"{sha256[:12]}...: it was changed or corrupted; {RETRAIN_HINT}"
        )


def save_model(model: keras.Model, path: str | os.PathLike[str]) -> str:
    """Write ``model`` as a ``.keras`` file, atomically, and return its sha256.

    Parameters
    ----------
    model : keras.Model
        The model to save (architecture, weights, built-in scaling, optimizer state).
    path : str or os.PathLike
        Destination ending in ``.keras``; missing parent folders are created.

    Returns
    -------
    str
        The hex sha256 of the written file, to record with the model version.
    """
    target = Path(path)
    if target.suffix != ".keras":
        raise ValueError(f"a model file must end in .keras, got {str(target)!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so a crash never leaves a half-written artifact.
    partial = target.with_name(f".{target.stem}.partial.keras")
    try:
        model.save(partial)
        os.replace(partial, target)
    except BaseException:
        # A full disk mid-write: nothing half written stays behind.
        partial.unlink(missing_ok=True)
        raise
    return file_sha256(target)


def load_model(path: str | os.PathLike[str], *, sha256: str | None = None) -> keras.Model:
    """Load a ``.keras`` file written by :func:`save_model`, checking its sha256 first.

    Parameters
    ----------
    path : str or os.PathLike
        The model file.
    sha256 : str or None
        The recorded hex sha256; ``None`` skips the check.

    Returns
    -------
    keras.Model
        The compiled model, ready to predict or fine-tune.

    Raises
    ------
    ModelArtifactError
        If the file is missing, does not match ``sha256``, or cannot be read by Keras.
    """
    source = Path(path)
    if not source.is_file():
        raise ModelArtifactError(f"model file {source} is missing; {RETRAIN_HINT}")
    if sha256 is not None:
        _check_digest(file_sha256(source), sha256, source=str(source))
    try:
        with warnings.catch_warnings():
            # The optimizer's state is not needed: a fine-tune starts it afresh.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            return keras.saving.load_model(source)
    except Exception as error:  # Keras raises many kinds (zip, JSON, h5, config) for bad files.
        raise ModelArtifactError(
            f"model file {source} cannot be read by Keras ({type(error).__name__}); {RETRAIN_HINT}"
        ) from error
