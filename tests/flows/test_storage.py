"""Model artifacts on a local folder and on any fsspec URL, checked by sha256."""

from __future__ import annotations

import datetime as dt
import errno
from pathlib import Path

import fsspec
import numpy as np
import pytest

from flows.retry import is_transient
from flows.storage import load_stored_model, read_stored_model, remove_model, store_model
from forecasting.errors import ModelArtifactError
from forecasting.model import SavedModel, build_model, set_seed

AS_OF = dt.date(2025, 2, 11)


@pytest.fixture(scope="module")
def model():
    set_seed(3)
    model = build_model(n_features=2, sequence_length=4, layers=1, units=3)
    # One step, so the optimizer's state exists and is saved, as after real training.
    model.fit(np.zeros((2, 4, 2), "float32"), np.zeros((2, 1), "float32"), verbose=0)
    return model


@pytest.fixture(scope="module")
def saved(model):
    return SavedModel.of(model)


@pytest.fixture
def window():
    return np.linspace(-1, 1, 8, dtype="float32").reshape(1, 4, 2)


@pytest.mark.parametrize("scheme", ["local", "memory"])
def test_store_then_load_round_trips_under_a_content_addressed_name(
    scheme, tmp_path, model, saved, window
):
    root = str(tmp_path / "models") if scheme == "local" else "memory://bucket/models"
    uri = store_model(saved, root=root, ticker="NVDA", as_of=AS_OF, kind="retrain")
    sha256 = saved.sha256
    assert uri == f"{root}/NVDA/2025-02-11-retrain-{sha256[:12]}.keras"
    # The file is exactly the bytes that crossed the task boundary.
    assert read_stored_model(uri, sha256=sha256).content == saved.content
    loaded = load_stored_model(uri, sha256=sha256)
    np.testing.assert_array_equal(
        loaded.predict(window, verbose=0), model.predict(window, verbose=0)
    )
    remove_model(uri)
    with pytest.raises(ModelArtifactError, match="retrain"):
        load_stored_model(uri, sha256=sha256)


def test_a_tampered_remote_file_is_refused(saved):
    uri = store_model(
        saved, root="memory://tampered/models", ticker="NVDA", as_of=AS_OF, kind="finetune"
    )
    with fsspec.open(uri, "ab") as remote:
        remote.write(b"\0")
    with pytest.raises(ModelArtifactError, match="sha256"):
        read_stored_model(uri, sha256=saved.sha256)


def _fail_half_way(destination, content):
    """A write that stores part of the file, then finds the disk full."""
    with open(destination, "wb") as out:
        out.write(content[:100])
    raise OSError(errno.ENOSPC, "No space left on device", str(destination))


def test_a_full_artifact_volume_is_one_line_and_leaves_no_partial_file(
    tmp_path, saved, monkeypatch
):
    monkeypatch.setattr("flows.storage.Path.write_bytes", _fail_half_way)
    root = tmp_path / "models"
    with pytest.raises(ModelArtifactError) as raised:
        store_model(saved, root=str(root), ticker="NVDA", as_of=AS_OF, kind="retrain")
    message = str(raised.value)
    assert message.startswith(f"no space left to write the model under {root} ")
    assert "NVDA_FORECAST_ARTIFACT_ROOT" in message and "\n" not in message
    assert list(root.rglob("*")) == [root / "NVDA"]  # the folder, no *.partial, no model


def test_a_failed_remote_write_leaves_no_object(saved, monkeypatch):
    def disk_full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("fsspec.implementations.memory.MemoryFile.write", disk_full)
    with pytest.raises(ModelArtifactError, match="no space left"):
        store_model(saved, root="memory://full/models", ticker="NVDA", as_of=AS_OF, kind="retrain")
    assert not fsspec.filesystem("memory").glob("/full/models/**/*.keras")


def test_a_folder_at_the_model_path_is_one_line_at_once(tmp_path, saved):
    """A folder where the champion's file should be is a broken artifact, not a transient error:
    the pipeline retires the champion and retrains instead of retrying the read for a minute."""
    uri = store_model(saved, root=str(tmp_path / "models"), ticker="NVDA", as_of=AS_OF, kind="x")
    Path(uri).unlink()
    Path(uri).mkdir()
    with pytest.raises(ModelArtifactError) as raised:
        read_stored_model(uri, sha256=saved.sha256)
    message = str(raised.value)
    assert message.startswith(f"model file {uri} is a folder, not a file;")
    assert "retrain" in message and "\n" not in message


def test_a_folder_at_a_new_model_s_path_is_one_line(tmp_path, saved):
    root = tmp_path / "models"
    name = f"NVDA/{AS_OF.isoformat()}-retrain-{saved.sha256[:12]}.keras"
    (root / name).mkdir(parents=True)
    with pytest.raises(ModelArtifactError, match="is a folder, not a file; remove it"):
        store_model(saved, root=str(root), ticker="NVDA", as_of=AS_OF, kind="retrain")


@pytest.mark.parametrize(
    "error",
    [
        IsADirectoryError(errno.EISDIR, "Is a directory"),
        NotADirectoryError(errno.ENOTDIR, "Not a directory"),
        OSError(errno.ELOOP, "Too many levels of symbolic links"),
        OSError(errno.ENAMETOOLONG, "File name too long"),
    ],
)
def test_a_path_that_cannot_be_a_file_is_not_retried(error):
    assert is_transient(error) is False
