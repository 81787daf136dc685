"""What a run reports as one line, not as a traceback: the actionable errors of both layers
below (``forecasting.errors`` and ``db.errors``), which say what is wrong and what to do."""

from db.errors import DatabaseError
from forecasting.errors import NvdaForecastError

ACTIONABLE = (NvdaForecastError, DatabaseError)
