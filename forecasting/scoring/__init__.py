"""How good a forecaster is: the metrics of a record, of its intervals, and tests between two.

- :mod:`~forecasting.scoring.record`: a record's point errors, skill against naive, interval
  metrics, Student-t loss and conformal scores.
- :mod:`~forecasting.scoring.intervals`: coverage and the Winkler (interval) score.
- :mod:`~forecasting.scoring.comparison`: Diebold-Mariano's test of equal accuracy.

Every public name is importable from ``forecasting.scoring`` itself.
"""

from forecasting.scoring.comparison import DieboldMariano, diebold_mariano
from forecasting.scoring.intervals import coverage, winkler_score
from forecasting.scoring.record import (
    INTERVAL_COLUMNS,
    RECORD_COLUMNS,
    PointMetrics,
    RecordMetrics,
    directional_accuracy,
    point_metrics,
    record_metrics,
    scores,
    scores_signed,
    skills_on_same_days,
    student_t_loss,
)

__all__ = [
    "INTERVAL_COLUMNS",
    "RECORD_COLUMNS",
    "DieboldMariano",
    "PointMetrics",
    "RecordMetrics",
    "coverage",
    "diebold_mariano",
    "directional_accuracy",
    "point_metrics",
    "record_metrics",
    "scores",
    "scores_signed",
    "skills_on_same_days",
    "student_t_loss",
    "winkler_score",
]
