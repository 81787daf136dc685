"""Watching a run: drift, realized performance and data-quality checks, and the alert verdicts
(``forecasting.monitoring.alerting``) that ``flows.alerts`` applies to the store. Pure: numbers in,
findings out."""
