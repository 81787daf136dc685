"""A run's report: its summary as text and markdown, its charts, and the Prefect artifacts that
show them in the UI (`artifacts.publish_report`). The flows publish it; the command line prints
`text.to_text` of the same summary.
"""
