"""Keep TensorFlow's C++ start-up chatter off the terminal and out of a worker's logs.

On a machine without a GPU, TensorFlow 2.21 logs ``failed call to cuInit ... (303)`` at ERROR
level, and tf.data ``NodeDef mentions attribute use_unbounded_threadpool``: neither is a problem
of ours, but both read like one in a worker's logs. ``TF_CPP_MIN_LOG_LEVEL=3`` silences them;
the few lines absl writes while TensorFlow's shared libraries load come before that setting is
read, so the import itself runs with file descriptor 2 pointed at /dev/null.

Set ``TF_CPP_MIN_LOG_LEVEL=0`` (``nvda-forecast -v`` does) to see everything.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


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
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # The CLI, the tests and a worker all compute with the same (non-oneDNN) kernels.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    if "tensorflow" in sys.modules or os.environ["TF_CPP_MIN_LOG_LEVEL"] != "3":
        import tensorflow

        return
    with native_stderr_silenced():
        import tensorflow  # noqa: F401
