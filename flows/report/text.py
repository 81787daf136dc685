"""A run's summary as people read it: terminal text and the markdown artifact."""

from __future__ import annotations

from flows.report.money import money, percent
from flows.summary import RunSummary

WINKLER = "lower is better"
"""winkler_95 is the mean of forecasting.scoring.winkler_score: in dollars, like the closes."""

TEST_LOSS = "Student-t NLL of log returns, lower is better"
"""What ``test_loss`` is (docs/model.md, "Test loss"), in the words of a label."""


def _number(value: float | None, pattern: str = "{:.3f}") -> str:
    return "-" if value is None or value != value else pattern.format(value)


def _money(summary: RunSummary, value: float | None) -> str:
    # Every amount of a summary at the precision of its last close: $0.2012 for a 20-cent stock.
    return money(value, like=summary.base_close)


def _serving_reason(summary: RunSummary) -> str:
    """The serving reason after a label that already names the LSTM: "its skill", not
    "LSTM: LSTM skill"."""
    reason = summary.serving_reason
    return "its " + reason.removeprefix("LSTM ") if reason.startswith("LSTM skill") else reason


def _skill_words(skill: float | None) -> str:
    # Two decimals decide: 1.000 is "level with naive", not a win.
    if skill is None or skill != skill:
        return "no record yet"
    if round(skill, 2) < 1.0:
        return "beats naive"
    return "level with naive" if round(skill, 2) == 1.0 else "worse than naive"


def _decision_line(summary: RunSummary) -> str:
    if summary.promoted is None:
        return f"reuse model #{summary.champion_version_id}: {summary.reason}"
    trained = f"{summary.action} -> model #{summary.candidate_version_id}"
    if summary.epochs is not None:
        trained += f" ({summary.epochs} epochs, {summary.train_seconds:.1f} s)"
    verdict = "promoted to champion" if summary.promoted else "rejected"
    return f"{trained} {verdict}: {summary.reason}; {summary.promotion_reason}"


SERVED_NAMES = {
    "lstm": "LSTM",
    "naive": "naive",
    "garch_avg": "GARCH average",
    "garch": "GARCH(1,1)-t",
    "gjr": "GJR-GARCH(1,1)-t",
}


def served_name(method: str) -> str:
    """Who served, as people read it: ``LSTM``, ``naive``, ``GARCH average``."""
    return SERVED_NAMES.get(method, method)


def _served_line(summary: RunSummary) -> str:
    s = summary
    if s.served_by == "lstm":
        return f"served by the LSTM: {_serving_reason(s)}"
    said = _money(s, s.lstm_close)
    who = served_name(s.served_by).upper()
    return f"served by {who} (last close); the LSTM said {said}: {_serving_reason(s)}"


def to_text(summary: RunSummary) -> str:
    """A few lines for the terminal."""
    s = summary
    lines = [
        f"{s.ticker} close on {s.target_date} (next trading day after {s.as_of}): "
        f"{_money(s, s.predicted_close)}  [last close {_money(s, s.base_close)}]",
        f"  80% interval {_money(s, s.lower_80)} - {_money(s, s.upper_80)}   "
        f"95% interval {_money(s, s.lower_95)} - {_money(s, s.upper_95)}",
        f"  {_served_line(s)}",
        f"  {s.basis} record, {s.n_realized} days: skill {_number(s.skill)} "
        f"({_skill_words(s.skill)})   RMSE {_money(s, s.rmse)} vs naive {_money(s, s.naive_rmse)}",
        f"  95% intervals on those days: coverage {percent(s.coverage_95)}, Winkler score "
        f"{_money(s, s.winkler_95)} vs naive+vol {_money(s, s.naive_winkler_95)} ({WINKLER})",
        f"  test loss {_number(s.test_loss, '{:.4g}')} ({TEST_LOSS})",
        f"  model: {_decision_line(s)}",
        f"  fitted through {s.train_end} ({s.staleness} sessions before the as-of date)",
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
    who = "the LSTM" if s.served_by == "lstm" else served_name(s.served_by)
    served = "LSTM" if s.served_by == "lstm" else f"**{who}** (the LSTM is not served: see below)"
    lstm = (
        f"{_money(s, s.lstm_close)} ({_money(s, s.lstm_lower_95)} - {_money(s, s.lstm_upper_95)})"
    )
    rows = [
        ("**Forecast close**", f"**{_money(s, s.predicted_close)}** on {s.target_date}"),
        ("Served by", served),
        ("Last close", f"{_money(s, s.base_close)} on {s.as_of}"),
        ("80% interval", f"{_money(s, s.lower_80)} - {_money(s, s.upper_80)}"),
        ("95% interval", f"{_money(s, s.lower_95)} - {_money(s, s.upper_95)}"),
        ("LSTM forecast (95%)", lstm),
        (
            f"Skill, {s.basis} record ({s.n_realized} days)",
            f"{_number(s.skill)} ({_skill_words(s.skill)})",
        ),
        ("RMSE vs naive", f"{_money(s, s.rmse)} vs {_money(s, s.naive_rmse)}"),
        ("Directional accuracy", percent(s.directional_accuracy)),
        ("Interval coverage 80% / 95%", f"{percent(s.coverage_80)} / {percent(s.coverage_95)}"),
        (
            f"Winkler95 score ($, {WINKLER}), LSTM vs naive + volatility",
            f"{_money(s, s.winkler_95)} vs {_money(s, s.naive_winkler_95)}",
        ),
        (f"Test loss ({TEST_LOSS})", _number(s.test_loss, "{:.4g}")),
    ]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    header = f"| {s.ticker} as of {s.as_of} | |"
    parts = [f"# {s.ticker} forecast for {s.target_date}", "", header, "|---|---|", table, ""]
    # The reason is a sentence: on a line of its own, not in a table cell the UI cuts.
    parts += [f"**Why {who} serves:** {_serving_reason(s)}", ""]
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


def score_line(summary) -> str:
    """How a backfill's forecasts scored: RMSE against naive, direction, interval coverage."""
    if not summary.realized:
        return "no realized forecasts yet"
    like = summary.price_level
    return (
        f"{summary.realized} realized: RMSE {money(summary.rmse, like=like)} vs naive "
        f"{money(summary.naive_rmse, like=like)}, "
        f"direction {percent(summary.direction, places=0)}, "
        f"inside 80% {percent(summary.inside_80, places=0)}, "
        f"inside 95% {percent(summary.inside_95, places=0)}"
    )
