"""Keep TensorFlow's C++ start-up chatter off the terminal and out of a worker's logs.

On a machine without a GPU, TensorFlow 2.21 logs ``failed call to cuInit ... (303)`` at ERROR
level, and tf.data ``NodeDef mentions attribute use_unbounded_threadpool``: neither is a problem
of ours, but both read like one in a worker's logs. ``TF_CPP_MIN_LOG_LEVEL=3`` silences them;
the few lines absl writes while TensorFlow's shared libraries load come before that setting is
read, so the import itself runs with file descriptor 2 pointed at /dev/null: `flows/__init__`
installs :class:`QuietTensorFlowImport`, so that whichever module imports TensorFlow first (Keras,
in any order ruff's import sorting gives) does it quietly.

Set ``TF_CPP_MIN_LOG_LEVEL=0`` (``nvda-forecast -v`` does) to see everything.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Iterator

from forecasting.tensorflow_env import set_tensorflow_defaults


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null: C++ libraries write there, not to sys.stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(null)
        os.close(saved)


def import_tensorflow() -> None:
    """Import TensorFlow once, quietly unless ``TF_CPP_MIN_LOG_LEVEL`` asks for its logs."""
    set_tensorflow_defaults()
    if "tensorflow" in sys.modules or os.environ["TF_CPP_MIN_LOG_LEVEL"] != "3":
        import tensorflow

        return
    with native_stderr_silenced():
        import tensorflow  # noqa: F401


class _QuietLoader(importlib.abc.Loader):
    """Runs another loader's ``exec_module`` with the native stderr silenced."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with native_stderr_silenced():
            self._loader.exec_module(module)


class QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, like the normal import system, and loads it quietly."""

    def find_spec(self, name, path, target=None):
        if name != "tensorflow" or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3") != "3":
            return None
        sys.meta_path.remove(self)  # once: the real finders locate it
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def install() -> None:
    """Make the first import of TensorFlow in this process a quiet one (idempotent)."""
    if "tensorflow" in sys.modules:
        return
    if not any(isinstance(finder, QuietTensorFlowImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, QuietTensorFlowImport())
