"""Prefect flows and tasks, and the ``nvda-forecast`` command line."""

import os

# Whatever imports the flow (the CLI, `serve` and its run processes, a worker, `prefect deploy`)
# imports this package first: set TensorFlow's C++ log level before TensorFlow loads, so that
# "failed call to cuInit" on a machine without a GPU and tf.data's "NodeDef mentions attribute
# use_unbounded_threadpool" do not reach the logs as errors. `nvda-forecast -v` sets it to 0.
# The same kernels (oneDNN off) in the CLI, the tests and a worker: identical numbers.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

# Some flows modules import Keras before anything from `forecasting`: load `forecasting` first,
# whose __init__ loads curl_cffi ahead of TensorFlow (see there).
import forecasting  # noqa: F401
from flows import quiet

# TensorFlow's first lines come while its libraries load, before any log level is read: whichever
# module imports it first (Keras, from any flows module) does so with stderr silenced.
quiet.install()
