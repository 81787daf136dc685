"""How good a forecaster is: the metrics of a record, of its intervals, and tests between two.

- :mod:`~forecasting.scoring.record`: a record's point errors, skill against naive, interval
  metrics, Student-t loss and conformal scores.
- :mod:`~forecasting.scoring.intervals`: coverage (overall and per volatility tercile), the
  Winkler (interval) score and Christoffersen's tests of the hit sequence.
- :mod:`~forecasting.scoring.distributions`: the pinball loss of a quantile and the CRPS of a
  normal and a Student-t forecast.
- :mod:`~forecasting.scoring.comparison`: Diebold-Mariano's test of equal accuracy and the model
  confidence set (``arch``, optional).

The QLIKE loss of variance forecasts is :func:`forecasting.volatility.qlike`.

Every public name is importable from ``forecasting.scoring`` itself.
"""

from forecasting.scoring.comparison import (
    DieboldMariano,
    ModelConfidenceSet,
    diebold_mariano,
    model_confidence_set,
)
from forecasting.scoring.distributions import crps_normal, crps_student_t, pinball_loss
from forecasting.scoring.intervals import (
    Christoffersen,
    christoffersen_test,
    coverage,
    coverage_by_tercile,
    winkler_score,
)
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
    "Christoffersen",
    "DieboldMariano",
    "ModelConfidenceSet",
    "PointMetrics",
    "RecordMetrics",
    "christoffersen_test",
    "coverage",
    "coverage_by_tercile",
    "crps_normal",
    "crps_student_t",
    "diebold_mariano",
    "directional_accuracy",
    "model_confidence_set",
    "pinball_loss",
    "point_metrics",
    "record_metrics",
    "scores",
    "scores_signed",
    "skills_on_same_days",
    "student_t_loss",
    "winkler_score",
]
