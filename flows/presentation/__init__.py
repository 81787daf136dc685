"""What people type and read at a terminal: the command line and its tables of the store.

Nothing else in flows/ imports it (`tests/test_layering.py`); the run's own report (text,
markdown, charts, the Prefect artifacts) is a step of the run, in `flows.report`.
"""
