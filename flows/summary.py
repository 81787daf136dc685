"""What one daily run did, as a value (rendered by flows.report.text)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class AlertLine:
    """An open alert as the summary shows it."""

    kind: str
    severity: str
    message: str
    is_new: bool = False


@dataclass(frozen=True)
class RunSummary:
    """The outcome of one run of the pipeline for one ticker and as-of date."""

    ticker: str
    source: str
    as_of: dt.date
    target_date: dt.date
    base_close: float
    served_by: str
    """``lstm`` or ``naive``: who made the served forecast below."""
    serving_reason: str
    predicted_close: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    lstm_close: float
    """The LSTM's own forecast, stored beside the served one when naive serves."""
    lstm_lower_95: float
    lstm_upper_95: float
    basis: str
    """The record the quality figures come from: ``walk-forward`` or ``held-out``."""
    n_realized: int
    skill: float | None
    rmse: float | None
    naive_rmse: float | None
    directional_accuracy: float | None
    coverage_80: float | None
    coverage_95: float | None
    winkler_95: float | None
    naive_winkler_95: float | None
    """The naive + volatility baseline's 95% interval score over its own realized record."""
    test_loss: float | None
    train_end: dt.date
    """The newest target day the serving model was fitted on."""
    staleness: int
    """NYSE sessions between ``train_end`` and the as-of date (0 = fitted through today)."""
    action: str
    """``retrain``, ``finetune`` or ``reuse``."""
    reason: str
    champion_version_id: int
    """The LSTM version that made the LSTM forecast."""
    candidate_version_id: int | None
    promoted: bool | None
    """None when nothing was trained (reuse)."""
    promotion_reason: str
    rows_ingested: int
    restated: bool
    epochs: int | None
    train_seconds: float | None
    database: str
    """The database URL with its password masked."""
    flow_run_id: str | None
    alerts: tuple[AlertLine, ...] = field(default_factory=tuple)
    step_seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each pipeline step (ingest, prepare, train, evaluate, watch, persist)."""

    @property
    def outcome(self) -> str:
        """One word for what happened to the model: promoted, rejected or reused."""
        if self.promoted is None:
            return "reused"
        return "promoted" if self.promoted else "rejected"

    def to_dict(self) -> dict:
        """A JSON-friendly dict (dates as ISO strings)."""
        values = asdict(self)
        for key, value in values.items():
            if isinstance(value, dt.date):
                values[key] = value.isoformat()
        values["outcome"] = self.outcome
        return values
