"""Replay the drift checks day by day over 2018-2024 of the bundled NVDA history.

For every NYSE session of the span, as if the daily flow ran after that day's close, the replay
forecasts the next close with the champion, scores the forecasts whose day has come, runs
``forecasting.monitoring.drift.run_checks`` and applies
``forecasting.monitoring.alerting.reconcile``: the same functions, thresholds and lifecycle the
flow uses. It prints how many alerts of each kind and metric *opened* per year, and when each
opened and resolved, to match against the known regimes (the 2018 Q4 sell-off, March 2020, the 2022
drawdown, the 2023-24 AI rally).

Faster than running the flow daily, and said so in the output:

- the real model (default architecture) is retrained as the flow retrains it (``prepare``,
  ``train``, ``score_held_out`` on the newest test windows, then ``walk_forward`` through the
  validation and test windows) every ``--retrain-every`` sessions (default 60, the flow's
  policy is 20) and on the session after a data- or performance-drift alert opens, with at most
  ``--max-epochs`` epochs and early-stopping patience ``--patience``; a candidate replaces the
  champion unless ``forecasting.policy.judge`` finds it worse on its held-out days than the
  champion's own forecasts of those days (the flow's rule);
- between retrains the champion's weights are fixed (the flow fine-tunes daily); its daily
  forecasts are computed from windows that end on the as-of day, and their intervals by
  adaptive conformal inference over the replay's realized forecasts, warmed up on the
  champion's held-out days (``forecasting.forecast.interval_quantiles``, as the flow);
- data quality is judged against the as-of date: the sample is complete, so it stays quiet.

A second, cheap table replays the data-drift checks with the reference set to the champion's
whole training window (``DriftConfig(reference="training")``) for comparison.

Usage::

    nice python -m benchmarks.drift_replay [--json] [--retrain-every 60] [--max-epochs 10]

About 7 minutes on a 2-core CPU (longer on a shared one); the results are in docs/alerts.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# Imported before anything that loads Keras: the flows package sets TensorFlow's defaults
# (forecasting.tensorflow_env).
from flows.settings import Settings
from forecasting.calendar import session_close
from forecasting.config import FeatureConfig, ServingConfig, TrainingConfig
from forecasting.features import make_features, prepare
from forecasting.forecast import INTERVAL_LEVELS, interval_quantiles, score_held_out
from forecasting.model import predict_distribution, train, walk_forward
from forecasting.monitoring.alerting import RETRAIN_KINDS, Finding, reconcile
from forecasting.monitoring.drift import data_drift, drift_inputs, run_checks
from forecasting.monitoring.performance import relative_rmse
from forecasting.policy import judge
from forecasting.prices.sources import load_prices
from forecasting.scoring import RECORD_COLUMNS, record_metrics, skills_on_same_days

REPLAY_START = dt.date(2018, 1, 1)
REPLAY_END = dt.date(2024, 12, 31)


@dataclass
class Champion:
    """The model in service and what the checks need to know about it."""

    model: object
    held_out: pd.DataFrame = field(repr=False)
    """Its retrain's forecasts of the held-out test days, with their intervals."""
    skill: float
    train_start: dt.date
    train_end: dt.date
    reference_relative_rmse: float
    retrained_on: dt.date
    location: pd.Series = field(repr=False)
    """Forecast ``mu`` of the next log return for every as-of day from ``retrained_on`` on."""
    scale: pd.Series = field(repr=False)
    """Forecast ``sigma`` of the same."""


@dataclass
class Episode:
    """One alert, from the day it opened to the day it resolved (None: still open)."""

    kind: str
    metric: str
    opened: dt.date
    severity: str
    threshold: float
    peak: float
    resolved: dt.date | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "metric": self.metric,
            "opened": self.opened.isoformat(),
            "resolved": self.resolved.isoformat() if self.resolved else None,
            "severity": self.severity,
            "threshold": self.threshold,
            "peak": round(self.peak, 6),
        }


class Lifecycle:
    """The alert table of the replay: open alerts by (kind, metric), and every episode."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, str], Episode] = {}
        self.episodes: list[Episode] = []

    def apply(self, day: dt.date, findings: list[Finding]) -> list[Episode]:
        """Reconcile one day's findings; return the episodes opened that day."""
        outcome = reconcile(self.open.keys(), findings)
        for key in outcome.to_resolve:
            self.open.pop(key).resolved = day
        for finding in outcome.to_keep:
            episode = self.open[finding.key]
            if _worse(finding, episode.peak):
                episode.peak = finding.value
            if finding.severity == "critical":
                episode.severity = "critical"
        opened = []
        for finding in outcome.to_open:
            episode = Episode(
                finding.kind,
                finding.metric,
                day,
                finding.severity,
                finding.threshold,
                finding.value,
            )
            self.open[finding.key] = episode
            self.episodes.append(episode)
            opened.append(episode)
        return opened


def _worse(finding: Finding, peak: float) -> bool:
    lower_is_worse = finding.metric.endswith("p_value")
    return finding.value < peak if lower_is_worse else finding.value > peak


class Forecaster:
    """Trains champions on the history up to an as-of day and forecasts with them."""

    def __init__(
        self,
        prices: pd.DataFrame,
        features: FeatureConfig,
        training: TrainingConfig,
        serving: ServingConfig,
    ):
        self.prices = prices
        self.features = features
        self.training = training
        self.serving = serving
        daily = make_features(prices, features.volatility_window)
        length = features.sequence_length
        values = daily.to_numpy(dtype="float32")
        # Window i holds the feature rows i .. i + length - 1 and ends on that last day, as
        # forecasting.features builds them (the model scales its inputs itself).
        self.windows = np.lib.stride_tricks.sliding_window_view(values, length, axis=0)
        self.windows = self.windows.transpose(0, 2, 1)
        self.window_dates = daily.index[length - 1 :]
        self.seconds = 0.0

    def fit(self, as_of: dt.date) -> Champion:
        """Retrain on the bars up to ``as_of`` as the flow does; return the candidate."""
        started = time.perf_counter()
        data = prepare(self.prices.loc[: pd.Timestamp(as_of)], self.features)
        fitted = train(data, self.training)
        held_out = score_held_out(fitted.model, data, self.serving)
        model = walk_forward(
            fitted.model, data.windows[len(data.train) :], self.training, mode="retrain"
        ).model
        later = self.window_dates >= pd.Timestamp(as_of)
        location, scale = predict_distribution(model, self.windows[later])
        self.seconds += time.perf_counter() - started
        metrics = record_metrics(held_out.record)
        return Champion(
            model=model,
            held_out=held_out.record,
            skill=metrics.skill if metrics else math.nan,
            train_start=data.first_date,
            train_end=data.last_target_date,
            reference_relative_rmse=relative_rmse(held_out.record),
            retrained_on=as_of,
            location=pd.Series(location, index=self.window_dates[later]),
            scale=pd.Series(scale, index=self.window_dates[later]),
        )

    def forecast(
        self, champion: Champion, realized: pd.DataFrame, as_of: dt.date, target: dt.date
    ) -> dict[str, object]:
        """The forecast row made after the close of ``as_of`` (a ``forecast_accuracy`` row),
        its intervals calibrated on the ``realized`` forecasts before it."""
        stamp = pd.Timestamp(as_of)
        base = float(self.prices.at[stamp, "close"])
        location = float(champion.location.at[stamp])
        scale = float(champion.scale.at[stamp])
        quantiles = interval_quantiles(realized, champion.held_out, self.serving)
        row: dict[str, object] = {
            "as_of_date": stamp,
            "target_date": pd.Timestamp(target),
            "base_close": base,
            "actual_close": float(self.prices.at[pd.Timestamp(target), "close"]),
            "predicted_close": base * math.exp(location),
            "scale": scale,
        }
        for level in INTERVAL_LEVELS:
            half = quantiles[level] * scale
            percent = round(level * 100)
            row[f"lower_{percent}"] = base * math.exp(location - half)
            row[f"upper_{percent}"] = base * math.exp(location + half)
        return row


def replay(arguments: argparse.Namespace) -> dict[str, object]:
    """Run the replay and return everything the report needs."""
    started = time.perf_counter()
    settings = Settings()
    config = settings.drift
    shadow_config = config.model_copy(update={"reference": "training"})
    prices = load_prices("sample", "NVDA")
    training = settings.training.model_copy(
        update={"max_epochs": arguments.max_epochs, "patience": arguments.patience}
    )
    forecaster = Forecaster(prices, settings.features, training, settings.serving)
    sessions = [
        day.date() for day in prices.index if arguments.start <= day.date() <= arguments.end
    ]
    next_session = dict(zip(sessions, [*sessions[1:], None], strict=True))
    lifecycle, shadow = Lifecycle(), Lifecycle()
    shadow_values: dict[str, list[float]] = defaultdict(list)
    champion: Champion | None = None
    tape: list[dict[str, object]] = []
    retrains: list[dict[str, object]] = []
    since_retrain = 0
    for day in sessions:
        rejected: bool | None = None
        reason = ""
        due = champion is None or since_retrain >= arguments.retrain_every
        triggered = champion is not None and any(
            episode.kind in RETRAIN_KINDS and episode.opened > champion.retrained_on
            for episode in lifecycle.open.values()
        )
        realized = pd.DataFrame(tape, columns=list(RECORD_COLUMNS))
        if due or triggered:
            candidate = forecaster.fit(day)
            since_retrain = 0
            if champion is None:
                champion = candidate
            else:
                candidate_skill, champion_skill, shared = skills_on_same_days(
                    candidate.held_out, realized
                )
                verdict = judge(
                    candidate_skill=candidate_skill,
                    # As the flow: too short a shared record does not judge the candidate.
                    champion_skill=(
                        champion_skill if shared >= settings.serving.min_realized else None
                    ),
                    tolerance=settings.promotion_tolerance,
                )
                rejected, reason = not verdict.promote, verdict.reason
                # A rejected challenger keeps the champion, but its retrain still counts: the
                # alert that triggered it must not trigger a retrain every day.
                champion.retrained_on = day
                if verdict.promote:
                    champion = candidate
            retrains.append(
                {
                    "as_of": day.isoformat(),
                    "why": "schedule" if due else "drift alert",
                    "promoted": rejected is not True,
                    "skill": round(candidate.skill, 4),
                }
            )
        since_retrain += 1
        findings = run_checks(
            prices,
            now=session_close(day) + pd.Timedelta(hours=1),
            config=config,
            as_of=day,
            train_start=champion.train_start,
            train_end=champion.train_end,
            realized=realized.tail(config.performance_window) if tape else None,
            reference_relative_rmse=champion.reference_relative_rmse,
            challenger_rejected=rejected,
            promotion_reason=reason,
        )
        lifecycle.apply(day, findings)
        visible = prices.loc[: pd.Timestamp(day)]
        reference, recent = drift_inputs(
            visible,
            config=shadow_config,
            train_start=champion.train_start,
            train_end=champion.train_end,
        )
        shadow_findings = data_drift(reference, recent, shadow_config)
        shadow.apply(day, shadow_findings)
        for finding in shadow_findings:
            shadow_values[finding.metric].append(finding.value)
        target = next_session[day]
        if target is not None:
            tape.append(forecaster.forecast(champion, realized, day, target))
    episodes = [episode.to_dict() for episode in lifecycle.episodes]
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.system()}",
        "method": {
            "span": f"{sessions[0]}..{sessions[-1]}",
            "sessions": len(sessions),
            "retrain_every": arguments.retrain_every,
            "max_epochs": arguments.max_epochs,
            "patience": arguments.patience,
            "retrains": len(retrains),
            "training_seconds": round(forecaster.seconds, 1),
        },
        "config": config.model_dump(),
        "runtime_seconds": round(time.perf_counter() - started, 1),
        "retrains": retrains,
        "opened_per_year": {
            by: {name: dict(sorted(years.items())) for name, years in table.items()}
            for by in ("kind", "metric")
            for table in [opened_counts(episodes, by)]
        },
        "episodes": episodes,
        "training_reference_episodes": [episode.to_dict() for episode in shadow.episodes],
        "training_reference_ranges": {
            metric: [round(float(np.nanmin(values)), 4), round(float(np.nanmax(values)), 4)]
            for metric, values in shadow_values.items()
        },
    }


def opened_counts(episodes: list[dict[str, object]], by: str) -> dict[str, Counter[int]]:
    """Alerts opened per ``by`` (``kind`` or ``metric``) and year."""
    counts: dict[str, Counter[int]] = defaultdict(Counter)
    for episode in episodes:
        counts[str(episode[by])][int(str(episode["opened"])[:4])] += 1
    return counts


def opened_table(episodes: list[dict[str, object]], by: str, years: list[int]) -> str:
    """Markdown table: alerts opened per ``by`` (kind or metric) and year."""
    counts = opened_counts(episodes, by)
    header = f"| {by} | " + " | ".join(str(year) for year in years) + " | total |"
    lines = [header, "|---|" + "---:|" * (len(years) + 1)]
    for name in sorted(counts):
        cells = [str(counts[name][year]) for year in years]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {sum(counts[name].values())} |")
    totals = [str(sum(counts[name][year] for name in counts)) for year in years]
    lines.append("| **all** | " + " | ".join(totals) + f" | {len(episodes)} |")
    return "\n".join(lines)


def episode_lines(episodes: list[dict[str, object]]) -> list[str]:
    """One line per alert: opened, resolved, kind/metric, severity and worst value."""
    lines = []
    for episode in sorted(episodes, key=lambda item: (item["opened"], item["metric"])):
        resolved = episode["resolved"] or "still open"
        lines.append(
            f"  {episode['opened']} -> {resolved:10}  {episode['kind']}/{episode['metric']}"
            f"  {episode['severity']}, worst {episode['peak']:.4g} (threshold "
            f"{episode['threshold']:g})"
        )
    return lines


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--retrain-every", type=int, default=60, help="sessions between retrains")
    parser.add_argument("--max-epochs", type=int, default=10, help="epochs per retrain at most")
    parser.add_argument("--patience", type=int, default=3, help="early-stopping patience")
    parser.add_argument("--start", type=dt.date.fromisoformat, default=REPLAY_START)
    parser.add_argument("--end", type=dt.date.fromisoformat, default=REPLAY_END)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    parser.add_argument(
        "--report", metavar="PATH", help="print the tables of a saved --json result, no replay"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.report:
        with open(arguments.report, encoding="utf-8") as handle:
            result = json.load(handle)
    else:
        result = replay(arguments)
    if arguments.json:
        print(json.dumps(result, indent=2))
        return 0
    first, last = (int(day[:4]) for day in result["method"]["span"].split(".."))
    years = list(range(first, last + 1))
    method = result["method"]
    print(
        f"Replay {method['span']} ({method['sessions']} sessions) on {result['machine']}: "
        f"{method['retrains']} retrains (every {method['retrain_every']} sessions or after a "
        f"drift alert opened; <= {method['max_epochs']} epochs, patience {method['patience']}), "
        f"{method['training_seconds']:.0f} s training, {result['runtime_seconds']:.0f} s in all; "
        "fixed weights between retrains (the flow fine-tunes daily)."
    )
    episodes = result["episodes"]
    print("\nAlerts opened per year and kind:\n" + opened_table(episodes, "kind", years))
    print("\nAlerts opened per year and metric:\n" + opened_table(episodes, "metric", years))
    print("\nEvery alert, opened -> resolved:")
    print("\n".join(episode_lines(episodes)))
    shadow = result["training_reference_episodes"]
    print(
        "\nFor comparison, data drift against the champion's whole training window "
        "(reference='training'), alerts opened:\n" + opened_table(shadow, "metric", years)
    )
    print("\n".join(episode_lines(shadow)))
    ranges = result.get("training_reference_ranges", {})
    print(
        "  range over the span: "
        + "; ".join(f"{k} {lo:g}..{hi:g}" for k, (lo, hi) in ranges.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
