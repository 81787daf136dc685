"""A run's summary as people read it: terminal text, the markdown artifact, the forecast table."""

from __future__ import annotations

from flows.summary import RunSummary


def _money(value: float | None) -> str:
    return "-" if value is None or value != value else f"${value:,.2f}"


def _number(value: float | None, pattern: str = "{:.3f}") -> str:
    return "-" if value is None or value != value else pattern.format(value)


def _skill_words(skill: float | None) -> str:
    # Two decimals decide: 1.000 is "level with naive", not a win.
    if skill is None or skill != skill:
        return "no record yet"
    if round(skill, 2) < 1.0:
        return "beats naive"
    return "level with naive" if round(skill, 2) == 1.0 else "worse than naive"


def _decision_line(summary: RunSummary) -> str:
    if summary.promoted is None:
        return f"reuse champion model #{summary.champion_version_id}: {summary.reason}"
    trained = f"{summary.action} -> model #{summary.candidate_version_id}"
    if summary.epochs is not None:
        trained += f" ({summary.epochs} epochs, {summary.train_seconds:.1f} s)"
    verdict = "promoted to champion" if summary.promoted else "rejected"
    return f"{trained} {verdict}: {summary.reason}; {summary.promotion_reason}"


def _served_line(summary: RunSummary) -> str:
    s = summary
    if s.served_by == "lstm":
        return f"served by the LSTM: {s.serving_reason}"
    return f"served by NAIVE (last close); the LSTM said {_money(s.lstm_close)}: {s.serving_reason}"


def to_text(summary: RunSummary) -> str:
    """A few lines for the terminal."""
    s = summary
    lines = [
        f"{s.ticker} close on {s.target_date} (next trading day after {s.as_of}): "
        f"{_money(s.predicted_close)}  [last close {_money(s.base_close)}]",
        f"  80% interval {_money(s.lower_80)} - {_money(s.upper_80)}   "
        f"95% interval {_money(s.lower_95)} - {_money(s.upper_95)}",
        f"  {_served_line(s)}",
        f"  {s.basis} record, {s.n_realized} days: skill {_number(s.skill)} "
        f"({_skill_words(s.skill)})   RMSE {_money(s.rmse)} vs naive {_money(s.naive_rmse)}"
        f"   95% coverage {_number(s.coverage_95, '{:.1%}')}"
        f"   Winkler95 {_number(s.winkler_95)} vs naive+vol {_number(s.naive_winkler_95)}",
        f"  model: {_decision_line(s)}",
        f"  fitted through {s.train_end} ({s.staleness} sessions before the as-of date); "
        f"test loss {_number(s.test_loss, '{:.4g}')}",
    ]
    if s.alerts:
        lines.append(f"  alerts open: {len(s.alerts)}")
        lines += [
            f"    [{a.severity}]{' NEW' if a.is_new else ''} {a.kind}: {a.message}"
            for a in s.alerts
        ]
    else:
        lines.append("  alerts open: none")
    data = f"{s.rows_ingested} rows from {s.source}" + (" (history restated)" if s.restated else "")
    lines.append(f"  data: {data}; stored in {s.database}")
    return "\n".join(lines)


def _model_lines(summary: RunSummary) -> list[str]:
    s = summary
    if s.promoted is None:
        lines = [f"- **Reused** champion model #{s.champion_version_id}: {s.reason}."]
    else:
        training = f" ({s.epochs} epochs, {s.train_seconds:.1f} s)" if s.epochs is not None else ""
        verdict = "promoted to champion" if s.promoted else "**rejected**; the champion forecasts"
        trained = f"**{s.action.capitalize()}** -> model #{s.candidate_version_id}{training}"
        lines = [
            f"- {trained}, {verdict}.",
            f"- Why {s.action}: {s.reason}.",
            f"- Promotion: {s.promotion_reason}.",
        ]
    lines.append(f"- Fitted through {s.train_end}: {s.staleness} sessions before the as-of date.")
    restated = ", history restated" if s.restated else ""
    # Backticks keep a URL such as postgresql://user@host from rendering as an e-mail link.
    lines.append(
        f"- Data: {s.rows_ingested} rows from `{s.source}`{restated}; store `{s.database}`."
    )
    return lines


def to_markdown(summary: RunSummary, chart_uri: str | None = None) -> str:
    """The run's markdown artifact: forecast, quality, decision, alerts, chart."""
    s = summary
    served = "LSTM" if s.served_by == "lstm" else "**naive** (the LSTM is not served)"
    rows = [
        ("**Forecast close**", f"**{_money(s.predicted_close)}** on {s.target_date}"),
        ("Served by", f"{served}: {s.serving_reason}"),
        ("Last close", f"{_money(s.base_close)} on {s.as_of}"),
        ("80% interval", f"{_money(s.lower_80)} - {_money(s.upper_80)}"),
        ("95% interval", f"{_money(s.lower_95)} - {_money(s.upper_95)}"),
        (
            "LSTM forecast (95%)",
            f"{_money(s.lstm_close)} ({_money(s.lstm_lower_95)} - {_money(s.lstm_upper_95)})",
        ),
        (
            f"Skill, {s.basis} record ({s.n_realized} days)",
            f"{_number(s.skill)} ({_skill_words(s.skill)})",
        ),
        ("RMSE vs naive", f"{_money(s.rmse)} vs {_money(s.naive_rmse)}"),
        ("Directional accuracy", _number(s.directional_accuracy, "{:.1%}")),
        (
            "Interval coverage 80% / 95%",
            f"{_number(s.coverage_80, '{:.1%}')} / {_number(s.coverage_95, '{:.1%}')}",
        ),
        (
            "Winkler95, LSTM vs naive + volatility",
            f"{_number(s.winkler_95)} vs {_number(s.naive_winkler_95)}",
        ),
        ("Test loss (Student-t NLL, log returns)", _number(s.test_loss, "{:.4g}")),
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
            f"## {s.basis.capitalize()} record: truth vs LSTM forecast",
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
            "served_by": s.served_by,
            "model_version_id": s.champion_version_id,
        }
    ]
