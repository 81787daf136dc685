"""Model artifacts under the artifact root: a local folder by default, any fsspec URL in production.

Files are named by content (``<ticker>/<as-of>-<kind>-<sha256[:12]>.keras``), so a rerun never
overwrites the file a stored model version points to.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
from pathlib import Path

# Keras loads TensorFlow here, quietly: `flows/__init__` installed flows.quiet's import hook
# before any flows module runs. tests/test_import_order.py checks that importing flows.daily
# prints nothing.
import fsspec
import keras

from forecasting.errors import ModelArtifactError
from forecasting.model import RETRAIN_HINT, SavedModel, check_sha256


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def _local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def store_model(saved: SavedModel, *, root: str, ticker: str, as_of: dt.date, kind: str) -> str:
    """Write a saved model's bytes under ``root``; return its URI (named by its sha256)."""
    name = f"{ticker}/{as_of.isoformat()}-{kind}-{saved.sha256[:12]}.keras"
    uri = f"{root.rstrip('/')}/{name}"
    try:
        _publish(saved.content, uri)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ModelArtifactError(
                f"no space left to write the model under {root} ({error.strerror}); free some "
                "there, or point NVDA_FORECAST_ARTIFACT_ROOT at a larger volume"
            ) from error
        raise
    return uri


def _publish(content: bytes, uri: str) -> None:
    """Write ``content`` to ``uri`` so that no reader ever sees a partial file there."""
    if _is_local(uri):
        target = _local_path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and not target.is_file():
            raise ModelArtifactError(
                f"{uri} is {_not_a_file(target)}, not a file; remove it, then rerun "
                "(the model file is written there)"
            )
        # Write beside it, then rename: a crash or a full disk never leaves a truncated file
        # under the final name, and the partial file is removed.
        partial = target.with_suffix(".keras.partial")
        try:
            partial.write_bytes(content)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return
    try:
        with fsspec.open(uri, "wb") as remote:
            remote.write(content)
    except BaseException:
        # Leave no partial object behind; never let the clean-up hide the write's own error.
        with contextlib.suppress(Exception):
            remove_model(uri)
        raise


def read_stored_model(uri: str, *, sha256: str) -> SavedModel:
    """The model file at ``uri`` as a :class:`SavedModel`, its sha256 checked."""
    if _is_local(uri):
        path = _local_path(uri)
        if path.exists() and not path.is_file():
            # Permanent: reading it again cannot help. It comes back as the champion's error at
            # once (no retry), and the pipeline retires the champion and retrains.
            raise ModelArtifactError(
                f"model file {uri} is {_not_a_file(path)}, not a file; remove or move it "
                f"away, then {RETRAIN_HINT} (a retrain writes a new file, it does not read this)"
            )
    try:
        if _is_local(uri):
            content = _local_path(uri).read_bytes()
        else:
            with fsspec.open(uri, "rb") as remote:
                content = remote.read()
    except FileNotFoundError:
        raise ModelArtifactError(
            f"model file {uri} is missing from the artifact root; check "
            f"NVDA_FORECAST_ARTIFACT_ROOT or {RETRAIN_HINT}"
        ) from None
    except (IsADirectoryError, NotADirectoryError) as error:
        problem = (
            "is a folder, not a file"
            if isinstance(error, IsADirectoryError)
            else ("has a file where a folder of its path should be")
        )
        raise ModelArtifactError(
            f"model file {uri} {problem}; remove or move it away, then {RETRAIN_HINT} "
            "(a retrain writes a new file, it does not read this)"
        ) from None
    check_sha256(content, sha256, source=uri)
    return SavedModel(content, sha256.lower())


def _not_a_file(path: Path) -> str:
    """What stands at ``path`` instead of a regular file."""
    return "a folder" if path.is_dir() else "not a regular file (a device, socket or pipe)"


def load_stored_model(uri: str, *, sha256: str) -> keras.Model:
    """Load the model at ``uri``, checking its sha256."""
    return read_stored_model(uri, sha256=sha256).load()


def remove_model(uri: str) -> None:
    """Delete an artifact that no stored model version refers to (a failed run's candidate)."""
    if _is_local(uri):
        _local_path(uri).unlink(missing_ok=True)
        return
    filesystem, path = fsspec.core.url_to_fs(uri)
    if filesystem.exists(path):
        filesystem.rm(path)
