"""Prefect flows and tasks, and the ``nvda-forecast`` command line."""

# Some flows modules import Keras before anything from `forecasting`: load `forecasting` first,
# whose __init__ loads curl_cffi ahead of TensorFlow (see there).
import forecasting  # noqa: F401
from flows import quiet
from forecasting.tensorflow_env import set_tensorflow_defaults

# Whatever imports the flow (the CLI, `serve` and its run processes, a worker, `prefect deploy`)
# imports this package first: TensorFlow's defaults (quiet C++ logs, no oneDNN) before it loads.
set_tensorflow_defaults()

# TensorFlow's first lines come while its libraries load, before any log level is read: whichever
# module imports it first (Keras, from any flows module) does so with stderr silenced.
quiet.install()
