"""Prefect flows and tasks, and the ``nvda-forecast`` command line."""

# Some flows modules import Keras before anything from `forecasting`: load `forecasting` first,
# whose __init__ loads curl_cffi ahead of TensorFlow (see there).
import forecasting  # noqa: F401
