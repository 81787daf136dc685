"""Presentation: what people see of the runs (the command line, terminal tables, the run's text
and markdown summary, charts, the Prefect artifacts). It reads the orchestration's values and
the store; orchestration calls into it only to publish a run's report (`report.publish_report`).
"""
