"""TensorFlow's environment defaults: the one place they are set.

TensorFlow reads both when it is first imported, so whatever may import it first (the flows
package, the model and forecast modules, the test suite, a benchmark) calls
:func:`set_tensorflow_defaults` before it imports Keras or TensorFlow.
"""

from __future__ import annotations

import os


def set_tensorflow_defaults() -> None:
    """Quiet TensorFlow's C++ start-up logs and compute with the same kernels everywhere.

    ``TF_CPP_MIN_LOG_LEVEL=3`` keeps "failed call to cuInit" (a machine without a GPU) and
    tf.data's "NodeDef mentions attribute use_unbounded_threadpool" out of the logs, where they
    read like errors (``nvda-forecast -v`` sets 0 to see everything); ``TF_ENABLE_ONEDNN_OPTS=0``
    gives the CLI, the tests and a worker the same (non-oneDNN) kernels: identical numbers.
    A value already in the environment is kept.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
