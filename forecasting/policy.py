"""When to retrain from scratch, fine-tune the champion, or reuse it as it is.

A pure function of what the database knows about the champion and of this run's inputs, so the
flow's `decide` task stays a one-liner and the policy is tested without Prefect or a database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from forecasting.calendar import trading_days_between
from forecasting.errors import ConfigurationError

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

    Returns
    -------
    Decision
        The action and the reason for it.
    """
    if mode not in MODES:
        raise ConfigurationError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if mode == "retrain":
        return Decision("retrain", "retrain requested (--mode retrain)")
    if champion is None:
        if mode == "finetune":
            raise ConfigurationError(
                "there is no champion to fine-tune yet; run with --mode retrain or --mode auto"
            )
        return Decision("retrain", "no champion model yet")
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


def _auto(
    champion: ChampionInfo,
    as_of: dt.date,
    retrain_every: int,
    history_restated: bool,
    open_drift_alerts: tuple[str, ...],
) -> Decision:
    if champion.as_of_date > as_of:
        return Decision(
            "retrain",
            f"the champion saw data up to {champion.as_of_date}, after the as-of date {as_of}",
        )
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
    """Promote a candidate unless its skill on the same test window is clearly worse.

    Skill is RMSE / naive RMSE (lower is better). The candidate wins when
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
