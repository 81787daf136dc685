"""When to retrain from scratch, fine-tune the champion, or reuse it as it is.

A pure function of what the database knows about the champion and of this run's inputs, so the
flow's `decide` task stays a one-liner and the policy is tested without Prefect or a database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from forecasting.calendar import trading_days_between
from forecasting.errors import ConfigurationError
from forecasting.monitoring.alerting import Finding

Mode = Literal["auto", "retrain", "finetune"]
Action = Literal["retrain", "finetune", "reuse"]
MODES: tuple[Mode, ...] = ("auto", "retrain", "finetune")


@dataclass(frozen=True)
class ChampionInfo:
    """What the policy needs to know about the current champion."""

    version_id: int
    as_of_date: dt.date
    """Last bar of the data the champion was trained or fine-tuned on."""
    retrained_as_of: dt.date
    """As-of date of the last full retrain in its lineage (fine-tunes do not reset the age)."""
    config_hash: str


@dataclass(frozen=True)
class Decision:
    """The action for this run and a sentence a person reads in the run summary."""

    action: Action
    reason: str


def decide(
    *,
    mode: Mode,
    champion: ChampionInfo | None,
    as_of: dt.date,
    config_hash: str,
    retrain_every: int,
    history_restated: bool = False,
    open_drift_alerts: tuple[str, ...] = (),
    champion_broken: str | None = None,
    day_forecaster: ChampionInfo | None = None,
    day_forecaster_live: bool = False,
) -> Decision:
    """Choose between a full retrain, a fine-tune of the champion, or reusing it unchanged.

    Parameters
    ----------
    mode
        ``"auto"`` applies the policy; ``"retrain"`` and ``"finetune"`` force one action.
    champion
        The current champion, or None when there is none yet.
    as_of
        Last bar of this run's data.
    config_hash
        Fingerprint of the feature and model configuration in force now.
    retrain_every
        Trading days since the lineage's last full retrain after which a retrain is due.
    history_restated
        Whether ingest found restated history (split or dividend re-adjustment).
    open_drift_alerts
        Kinds of open data or performance drift alerts; any forces a retrain.
    champion_broken
        Why the champion's model file cannot be used (missing, changed, unreadable), if so:
        a retrain replaces it without loading it.
    day_forecaster
        On a replay (the champion saw later days), the usable model that made the stored
        forecast of the day, if any: it forecasts the day again, so a rerun of an old day
        reproduces what later days' records rest on.
    day_forecaster_live
        Whether that model was of the live lineage (promoted); forcing a new model for such a
        day is refused, since later days' records rest on its forecast.

    Returns
    -------
    Decision
        The action and the reason for it.
    """
    if mode not in MODES:
        raise ConfigurationError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if champion is not None and day_forecaster is not None and champion.as_of_date > as_of:
        return _rerun(mode, day_forecaster, as_of, live=day_forecaster_live)
    if mode == "retrain":
        return Decision("retrain", "retrain requested (--mode retrain)")
    if champion_broken is not None:
        if mode == "finetune":
            raise ConfigurationError(
                f"the champion cannot be fine-tuned: {champion_broken}; run with --mode retrain"
            )
        return Decision("retrain", f"the champion's model file is unusable: {champion_broken}")
    if champion is None:
        if mode == "finetune":
            raise ConfigurationError(
                "there is no champion to fine-tune yet; run with --mode retrain or --mode auto"
            )
        return Decision("retrain", "no champion model yet")
    if champion.as_of_date > as_of:
        if mode == "finetune":
            raise ConfigurationError(
                f"the champion was fitted on data up to {champion.as_of_date}, after the as-of "
                f"date {as_of}: fine-tuning it would learn the future; use --mode retrain or auto"
            )
        return Decision(
            "retrain",
            f"the champion saw data up to {champion.as_of_date}, after the as-of date {as_of}",
        )
    if champion.config_hash != config_hash:
        if mode == "finetune":
            raise ConfigurationError(
                "the model/feature configuration changed since the champion was trained, so its "
                "weights do not fit; run with --mode retrain or --mode auto"
            )
        return Decision("retrain", "the model or feature configuration changed")
    if mode == "finetune":
        return Decision("finetune", "fine-tune requested (--mode finetune)")
    return _auto(champion, as_of, retrain_every, history_restated, open_drift_alerts)


def _rerun(mode: Mode, forecaster: ChampionInfo, as_of: dt.date, *, live: bool) -> Decision:
    """A stored day before the champion's: the model that forecast it forecasts it again."""
    if mode == "finetune" or (mode == "retrain" and live):
        raise ConfigurationError(
            f"{as_of} was forecast by model #{forecaster.version_id} of the live lineage and "
            f"later days' records rest on it; rerun {as_of} without --mode {mode} (it reuses "
            "that model)"
        )
    if mode == "retrain":
        return Decision("retrain", "retrain requested (--mode retrain)")
    return Decision(
        "reuse",
        f"a rerun of {as_of}: model #{forecaster.version_id}, which forecast that day, "
        "forecasts it again",
    )


def _auto(
    champion: ChampionInfo,
    as_of: dt.date,
    retrain_every: int,
    history_restated: bool,
    open_drift_alerts: tuple[str, ...],
) -> Decision:
    if history_restated:
        return Decision("retrain", "price history was restated (split or dividend adjustment)")
    if champion.as_of_date == as_of:
        # Nothing new to learn from: retraining on the same bars would give the same model.
        return Decision("reuse", f"the champion is already trained on data through {as_of}")
    if open_drift_alerts:
        return Decision("retrain", f"drift alert open: {', '.join(sorted(open_drift_alerts))}")
    age = trading_days_between(champion.retrained_as_of, as_of)
    if age >= retrain_every:
        return Decision(
            "retrain",
            f"last full retrain was {age} trading days ago (retrain every {retrain_every})",
        )
    return Decision("finetune", f"champion is {age} trading days from its last full retrain")


@dataclass(frozen=True)
class Promotion:
    """Whether a candidate replaces the champion, and why."""

    promote: bool
    reason: str


def judge(*, candidate_skill: float, champion_skill: float | None, tolerance: float) -> Promotion:
    """Promote a candidate unless its skill on the same days is clearly worse.

    Skill is RMSE / naive RMSE (lower is better), for a retrain on its held-out test days and
    for the champion on its walk-forward forecasts of those same days. The candidate wins when
    ``candidate_skill <= champion_skill + tolerance``: a small tolerance keeps fresh weights
    (trained on newer data) in service when the two are indistinguishable.
    """
    if champion_skill is None:
        return Promotion(True, "no champion to compare with")
    margin = candidate_skill - champion_skill
    comparison = f"skill {candidate_skill:.4f} vs champion {champion_skill:.4f}"
    if candidate_skill != candidate_skill:  # NaN: the candidate could not be scored
        return Promotion(False, f"{comparison}: candidate could not be scored")
    if margin <= tolerance:
        return Promotion(True, f"{comparison} (tolerance {tolerance:g})")
    return Promotion(False, f"{comparison}: worse by {margin:.4f} > tolerance {tolerance:g}")


def judge_retrain(
    *,
    kind: str,
    windows: int,
    held_out_days: int,
    replay_of: dt.date | None,
    comparison: tuple[float, float | None, int] | None,
    tolerance: float,
    min_realized: int,
) -> Promotion:
    """Step 5: does a candidate replace the champion?

    Parameters
    ----------
    kind
        ``retrain`` or ``finetune``.
    windows
        Windows a fine-tune walked through (for its reason).
    held_out_days
        A retrain's held-out test days.
    replay_of
        The champion's own as-of date when this run replays an earlier day: the champion,
        which has seen later days, stays.
    comparison
        ``(candidate skill, champion skill, shared days)``: a retrain on its held-out days
        against the champion's walk-forward forecasts of the same days; None without a usable
        champion.
    tolerance, min_realized
        As in :func:`judge`; fewer shared days than ``min_realized`` decide nothing (promoted).
    """
    if replay_of is not None:
        return Promotion(
            False,
            f"a replay of an earlier day: the champion, fitted through {replay_of}, stays; "
            "this candidate forecasts its own day only",
        )
    if kind == "finetune":
        return Promotion(True, f"walked the champion forward through the newest {windows} windows")
    if comparison is None:
        return Promotion(True, "no usable champion to compare with")
    candidate_skill, champion_skill, shared = comparison
    if shared < min_realized:
        return Promotion(
            True,
            f"the champion has {shared} realized forecasts of the candidate's "
            f"{held_out_days} held-out days, too few to compare",
        )
    verdict = judge(
        candidate_skill=candidate_skill, champion_skill=champion_skill, tolerance=tolerance
    )
    return Promotion(verdict.promote, f"{verdict.reason} on {shared} shared days")


@dataclass(frozen=True)
class Serving:
    """Which forecaster serves today's forecast, and why (the run summary shows the reason)."""

    method: str
    """``lstm``, ``naive``, or a GARCH-family contender (``garch``, ``gjr``)."""
    reason: str
    skill: float | None
    """LSTM RMSE / naive RMSE on the deciding record; None without one."""
    n: int
    """Realized forecasts in the deciding record."""
    basis: str
    """``walk-forward`` (the realized record) or ``held-out`` (the latest retrain's test days)."""


def deciding_record(
    walk_forward: pd.DataFrame, held_out: pd.DataFrame, *, window: int, min_realized: int
) -> tuple[pd.DataFrame, str]:
    """The record that decides serving, and its basis: the newest ``window`` realized
    walk-forward forecasts, or the latest retrain's held-out days while those are fewer than
    ``min_realized``."""
    newest = walk_forward.tail(window)
    if len(newest) < min_realized:
        return held_out.tail(window), "held-out"
    return newest, "walk-forward"


def choose_served(
    *,
    skill: float | None,
    n: int,
    basis: str,
    tolerance: float,
    min_realized: int,
    fallback: str = "naive",
) -> Serving:
    """Serve the LSTM's point only while it is not worse than naive beyond ``tolerance``.

    Parameters
    ----------
    skill
        The LSTM's RMSE / naive RMSE over the deciding record (the newest realized walk-forward
        forecasts, or the latest retrain's held-out days while that record is short).
    n
        How many realized forecasts ``skill`` rests on.
    basis
        Which record it is, for the reason.
    tolerance
        How much worse than naive the LSTM may be and still serve (``promotion_tolerance``).
    min_realized
        Fewer forecasts than this decide nothing: the fallback serves.
    fallback
        Who serves instead: a price-only contender whose point is the last close, naive's
        (``naive``, or ``garch_avg``: :func:`choose_interval`).

    Returns
    -------
    Serving
        ``lstm`` or ``fallback``, with a sentence for the summary.
    """
    if n >= min_realized and (skill is None or skill != skill):
        return Serving(
            fallback,
            f"the LSTM's skill could not be scored over {n} {basis} forecasts "
            f"(the close never moved); {fallback} serves",
            None,
            n,
            basis,
        )
    if skill is None or skill != skill or n < min_realized:
        return Serving(
            fallback,
            f"only {n} realized LSTM forecasts ({basis}); {fallback} serves until there are "
            f"{min_realized}",
            None if skill != skill else skill,
            n,
            basis,
        )
    comparison = f"LSTM skill {skill:.3f} over {n} {basis} forecasts"
    if skill <= 1.0 + tolerance:
        reason = f"{comparison} (naive = 1, tolerance {tolerance:g})"
        if skill > 1.0:
            # Served, but the user is told: worse than naive, within the tolerance.
            reason = f"{comparison}: worse than naive, but within the tolerance {tolerance:g}"
        return Serving("lstm", reason, skill, n, basis)
    return Serving(
        fallback,
        f"{comparison}: worse than naive by more than {tolerance:g}, so {fallback} serves",
        skill,
        n,
        basis,
    )


def choose_interval(
    point: Serving, winkler_95: Mapping[str, float], *, fallback: str, min_realized: int
) -> Serving:
    """Who serves, once the point is judged: the LSTM keeps serving only while its 95% interval
    also scored better than the fallback's on the same days; otherwise the fallback serves.

    ``point`` is :func:`choose_served`'s verdict (``lstm`` or ``fallback``). ``fallback`` is the
    price-only contender that serves in naive's place: ``garch_avg`` (the last close with the
    averaged GARCH(1,1)-t and GJR-GARCH(1,1)-t variance, chosen on the validation period:
    docs/model.md), or ``naive`` while the history is too short for a GARCH fit. Its point is the
    last close, naive's, so the point never gets worse. ``winkler_95`` holds the mean 95%
    interval score of ``lstm`` and of ``fallback`` over the days ``point`` was judged on.
    """
    if point.method != "lstm":
        return point
    model, other = winkler_95.get("lstm"), winkler_95.get(fallback)
    if point.n < min_realized or model is None or other is None or model != model or other != other:
        return point
    if model < other:
        reason = f"{point.reason}; its 95% interval scored {model:.3g} vs {fallback}'s {other:.3g}"
        return Serving("lstm", reason, point.skill, point.n, point.basis)
    reason = (
        f"LSTM 95% interval score {model:.3g} vs {fallback}'s {other:.3g} over "
        f"{point.n} {point.basis} days"
    )
    return Serving(fallback, reason, point.skill, point.n, point.basis)


def serving_finding(serving: Serving) -> Finding:
    """A pipeline finding, breached while another contender serves instead of the LSTM (a
    warning: the user is told whenever the model does not serve)."""
    other = serving.method != "lstm"
    who = {"naive": "Naive", "garch_avg": "The GARCH average"}
    verdict = f"{who.get(serving.method, serving.method)} serves today's forecast"
    return Finding(
        "pipeline",
        "lstm_not_served",
        1.0 if other else 0.0,
        0.0,
        other,
        "warning",
        f"{verdict if other else 'The LSTM serves'}: {serving.reason}.",
    )


def champion_finding(broken: str | None) -> Finding:
    """A pipeline finding, critical when the champion's model file could not be used."""
    if broken is None:
        return Finding("pipeline", "champion_unusable", 0.0, 0.0, False, "info",
                       "The champion's model file loaded and matched its sha256.")  # fmt: skip
    return Finding("pipeline", "champion_unusable", 1.0, 0.0, True, "critical",
                   f"The champion was retired and a new model retrained: {broken}.")  # fmt: skip
