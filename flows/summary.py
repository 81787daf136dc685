"""What one daily run did, as a value: printed by the CLI, rendered into the Prefect UI."""

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
    """The outcome of one `daily_forecast` run."""

    ticker: str
    source: str
    as_of: dt.date
    target_date: dt.date
    base_close: float
    predicted_close: float
    lower_80: float
    upper_80: float
    lower_95: float
    upper_95: float
    test_loss: float
    rmse: float
    naive_rmse: float
    skill: float
    directional_accuracy: float
    coverage_80: float
    coverage_95: float
    action: str
    """``retrain``, ``finetune`` or ``reuse``."""
    reason: str
    champion_version_id: int
    """The model version that made the forecast."""
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


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _decision_line(summary: RunSummary) -> str:
    if summary.promoted is None:
        return f"reuse champion v{summary.champion_version_id}: {summary.reason}"
    trained = f"{summary.action} -> v{summary.candidate_version_id}"
    if summary.epochs is not None:
        trained += f" ({summary.epochs} epochs, {summary.train_seconds:.1f} s)"
    verdict = "promoted to champion" if summary.promoted else "rejected"
    return f"{trained} {verdict}: {summary.reason}; {summary.promotion_reason}"


def to_text(summary: RunSummary) -> str:
    """A few lines for the terminal."""
    s = summary
    lines = [
        f"{s.ticker} close on {s.target_date} (next trading day after {s.as_of}): "
        f"{_money(s.predicted_close)}  [last close {_money(s.base_close)}]",
        f"  80% interval {_money(s.lower_80)} - {_money(s.upper_80)}   "
        f"95% interval {_money(s.lower_95)} - {_money(s.upper_95)}",
        f"  test loss {s.test_loss:.6g}   RMSE {_money(s.rmse)} vs naive {_money(s.naive_rmse)}"
        f"   skill {s.skill:.3f}   direction {s.directional_accuracy:.1%}"
        f"   95% coverage {s.coverage_95:.1%}",
        f"  model: {_decision_line(s)}",
    ]
    if s.alerts:
        lines.append(f"  alerts open: {len(s.alerts)}")
        lines += [f"    [{a.severity}] {a.kind}: {a.message}" for a in s.alerts]
    else:
        lines.append("  alerts open: none")
    data = f"{s.rows_ingested} rows from {s.source}" + (" (history restated)" if s.restated else "")
    lines.append(f"  data: {data}; stored in {s.database}")
    return "\n".join(lines)


def _model_lines(summary: RunSummary) -> list[str]:
    s = summary
    if s.promoted is None:
        lines = [f"- **Reused** champion v{s.champion_version_id}: {s.reason}."]
    else:
        training = f" ({s.epochs} epochs, {s.train_seconds:.1f} s)" if s.epochs is not None else ""
        verdict = "promoted to champion" if s.promoted else "**rejected**; the champion forecasts"
        lines = [
            f"- **{s.action.capitalize()}** -> v{s.candidate_version_id}{training}, {verdict}.",
            f"- Why {s.action}: {s.reason}.",
            f"- Promotion: {s.promotion_reason}.",
        ]
    restated = ", history restated" if s.restated else ""
    lines.append(f"- Data: {s.rows_ingested} rows from `{s.source}`{restated}; store {s.database}.")
    return lines


def to_markdown(summary: RunSummary, chart_uri: str | None = None) -> str:
    """The run's markdown artifact: forecast, quality, decision, alerts, chart."""
    s = summary
    rows = [
        ("**Forecast close**", f"**{_money(s.predicted_close)}** on {s.target_date}"),
        ("Last close", f"{_money(s.base_close)} on {s.as_of}"),
        ("80% interval", f"{_money(s.lower_80)} - {_money(s.upper_80)}"),
        ("95% interval", f"{_money(s.lower_95)} - {_money(s.upper_95)}"),
        ("Test loss (MSE, log returns)", f"{s.test_loss:.6g}"),
        ("RMSE vs naive", f"{_money(s.rmse)} vs {_money(s.naive_rmse)}"),
        (
            "Skill (RMSE / naive RMSE)",
            f"{s.skill:.3f} ({'beats' if s.skill < 1 else 'no better than'} naive)",
        ),
        ("Directional accuracy", f"{s.directional_accuracy:.1%}"),
        ("Interval coverage 80% / 95%", f"{s.coverage_80:.1%} / {s.coverage_95:.1%}"),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    header = f"| {s.ticker} as of {s.as_of} | |"
    parts = [f"# {s.ticker} forecast for {s.target_date}", "", header, "|---|---|", table, ""]
    parts += ["## Model", "", *_model_lines(s), ""]
    parts.append("## Alerts")
    if s.alerts:
        parts += [
            f"- **{a.severity}** `{a.kind}`{' (new)' if a.is_new else ''}: {a.message}"
            for a in s.alerts
        ]
    else:
        parts.append("No open alerts.")
    if chart_uri:
        parts += [
            "",
            "## Test window: truth vs prediction",
            "",
            f"![truth vs prediction]({chart_uri})",
        ]
    return "\n".join(parts) + "\n"


def forecast_table(summary: RunSummary) -> list[dict]:
    """The forecast as a one-row table artifact."""
    s = summary
    return [
        {
            "ticker": s.ticker,
            "as_of_date": s.as_of.isoformat(),
            "target_date": s.target_date.isoformat(),
            "last_close": round(s.base_close, 4),
            "predicted_close": round(s.predicted_close, 4),
            "lower_80": round(s.lower_80, 4),
            "upper_80": round(s.upper_80, 4),
            "lower_95": round(s.lower_95, 4),
            "upper_95": round(s.upper_95, 4),
            "model_version_id": s.champion_version_id,
        }
    ]
