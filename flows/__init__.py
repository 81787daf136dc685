"""Prefect flows and tasks, and the ``nvda-forecast`` command line."""
