import datetime as dt
import math

import pytest

from forecasting.errors import ConfigurationError
from forecasting.policy import (
    ChampionInfo,
    champion_finding,
    choose_interval,
    choose_served,
    decide,
    deciding_record,
    judge,
    judge_retrain,
    serving_finding,
)

AS_OF = dt.date(2025, 2, 11)


def champion(as_of=dt.date(2025, 2, 10), retrained=dt.date(2025, 2, 3), config="abc"):
    return ChampionInfo(
        version_id=7, as_of_date=as_of, retrained_as_of=retrained, config_hash=config
    )


def auto(**overrides):
    arguments = dict(
        mode="auto", champion=champion(), as_of=AS_OF, config_hash="abc", retrain_every=20
    )
    arguments.update(overrides)
    return decide(**arguments)


def test_fine_tunes_a_young_champion():
    decision = auto()
    assert decision.action == "finetune"
    assert "6 trading days" in decision.reason


def test_retrains_without_champion():
    assert auto(champion=None).action == "retrain"


def test_retrains_when_the_lineage_is_old_even_if_fine_tuned_yesterday():
    decision = auto(champion=champion(retrained=dt.date(2025, 1, 10)))
    assert decision.action == "retrain"
    assert "21 trading days" in decision.reason


def test_retrains_exactly_at_the_limit():
    # 2025-01-13 .. 2025-02-11 is 20 sessions after the start (MLK day is a holiday).
    assert auto(champion=champion(retrained=dt.date(2025, 1, 13))).action == "retrain"
    assert auto(champion=champion(retrained=dt.date(2025, 1, 14))).action == "finetune"


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"config_hash": "changed"}, "configuration changed"),
        ({"history_restated": True}, "restated"),
        ({"open_drift_alerts": ("data_drift",)}, "data_drift"),
        ({"champion": champion(as_of=dt.date(2025, 2, 12))}, "after the as-of date"),
    ],
)
def test_retrain_triggers(overrides, words):
    decision = auto(**overrides)
    assert decision.action == "retrain"
    assert words in decision.reason


def test_reuses_a_champion_already_trained_through_the_as_of_date():
    decision = auto(champion=champion(as_of=AS_OF))
    assert decision.action == "reuse"
    # A drift alert cannot be cured by retraining on the very same bars...
    assert auto(champion=champion(as_of=AS_OF), open_drift_alerts=("data_drift",)).action == (
        "reuse"
    )
    # ...but restated bars are new data.
    assert auto(champion=champion(as_of=AS_OF), history_restated=True).action == "retrain"


def test_forced_modes():
    assert auto(mode="retrain").action == "retrain"
    assert auto(mode="finetune", champion=champion(as_of=AS_OF)).action == "finetune"


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"mode": "finetune", "champion": None}, "no champion"),
        ({"mode": "finetune", "config_hash": "changed"}, "configuration changed"),
        ({"mode": "sometimes"}, "unknown mode"),
    ],
)
def test_impossible_requests_are_clear_errors(overrides, words):
    with pytest.raises(ConfigurationError, match=words):
        auto(**overrides)


def test_judge_promotes_within_tolerance_and_rejects_beyond():
    assert judge(candidate_skill=0.99, champion_skill=None, tolerance=0.02).promote
    assert judge(candidate_skill=1.01, champion_skill=1.00, tolerance=0.02).promote
    rejected = judge(candidate_skill=1.05, champion_skill=1.00, tolerance=0.02)
    assert not rejected.promote
    assert "worse by 0.0500" in rejected.reason
    assert not judge(candidate_skill=float("nan"), champion_skill=1.0, tolerance=0.02).promote


BROKEN = "model file /m/champion.keras has sha256 0a1b..., not the recorded 9f8e..."


@pytest.mark.parametrize(
    "champion_now", [champion(), champion(as_of=AS_OF), None], ids=["young", "current", "none"]
)
def test_a_broken_champion_is_retrained_with_the_reason(champion_now):
    # Even a champion already trained through the as-of date (else "reuse") is replaced.
    decision = auto(champion=champion_now, champion_broken=BROKEN)
    assert decision.action == "retrain"
    assert decision.reason == f"the champion's model file is unusable: {BROKEN}"


def test_a_broken_champion_with_forced_modes():
    forced = auto(mode="retrain", champion_broken=BROKEN)
    assert (forced.action, forced.reason) == ("retrain", "retrain requested (--mode retrain)")
    with pytest.raises(ConfigurationError) as caught:
        auto(mode="finetune", champion_broken=BROKEN)
    assert str(caught.value) == (
        f"the champion cannot be fine-tuned: {BROKEN}; run with --mode retrain"
    )


def serve(skill, n=60, *, basis="walk-forward", tolerance=0.02, min_realized=20):
    return choose_served(
        skill=skill, n=n, basis=basis, tolerance=tolerance, min_realized=min_realized
    )


def test_the_lstm_serves_while_not_worse_than_naive_beyond_the_tolerance():
    better = serve(0.95)
    assert (better.method, better.skill, better.n, better.basis) == (
        "lstm",
        0.95,
        60,
        "walk-forward",
    )
    assert (
        better.reason
        == "LSTM skill 0.950 over 60 walk-forward forecasts (naive = 1, tolerance 0.02)"
    )
    within = serve(1.02)  # exactly 1 + tolerance: served, and the reason says it is worse
    assert within.method == "lstm"
    assert within.reason == (
        "LSTM skill 1.020 over 60 walk-forward forecasts: worse than naive, "
        "but within the tolerance 0.02"
    )
    assert serve(1.0, tolerance=0.0).method == "lstm"
    worse = serve(1.0201)
    assert (worse.method, worse.skill) == ("naive", 1.0201)
    assert worse.reason == (
        "LSTM skill 1.020 over 60 walk-forward forecasts: worse than naive by more than 0.02, "
        "so naive serves"
    )
    assert serve(1.01, tolerance=0.0).method == "naive"


def test_naive_serves_while_the_lstm_record_is_too_short():
    short = serve(0.5, 19, basis="held-out")
    assert (short.method, short.skill, short.n, short.basis) == ("naive", 0.5, 19, "held-out")
    assert short.reason == (
        "only 19 realized LSTM forecasts (held-out); naive serves until there are 20"
    )
    assert serve(0.5, 20).method == "lstm"
    none = serve(None, 0)
    assert (none.method, none.skill, none.n) == ("naive", None, 0)
    unscored = serve(math.nan, 30)
    assert (unscored.method, unscored.skill) == ("naive", None)


def test_an_unscorable_skill_is_not_reported_as_too_few_forecasts():
    unscored = serve(math.nan, 30)
    assert "only 30" not in unscored.reason and "until there are 20" not in unscored.reason


def test_serving_findings_breach_while_naive_serves():
    naive = serving_finding(serve(1.5))
    assert (naive.kind, naive.metric, naive.value, naive.threshold) == (
        "pipeline",
        "lstm_not_served",
        1.0,
        0.0,
    )
    assert naive.breached and not naive.clear and naive.severity == "warning"
    assert naive.message == f"Naive serves today's forecast: {serve(1.5).reason}."
    lstm = serving_finding(serve(0.9))
    assert (lstm.value, lstm.breached, lstm.clear) == (0.0, False, True)
    assert lstm.message.startswith("The LSTM serves: LSTM skill 0.900")


def test_the_fallback_serves_in_naives_place_and_says_so():
    worse = serve(1.5)
    fallback = choose_served(
        skill=1.5, n=60, basis="walk-forward", tolerance=0.02, min_realized=20, fallback="garch_avg"
    )
    assert (fallback.method, fallback.skill, fallback.n) == ("garch_avg", 1.5, 60)
    assert fallback.reason == worse.reason.replace("so naive serves", "so garch_avg serves")
    short = choose_served(
        skill=0.5, n=3, basis="held-out", tolerance=0.02, min_realized=20, fallback="garch_avg"
    )
    assert short.method == "garch_avg" and "garch_avg serves until there are 20" in short.reason
    finding = serving_finding(fallback)
    assert finding.breached and finding.message.startswith(
        "The GARCH average serves today's forecast: LSTM skill 1.500"
    )


def test_the_lstm_keeps_serving_only_while_its_interval_beats_the_fallbacks():
    point = serve(0.99)
    better = choose_interval(
        point, {"lstm": 0.030, "garch_avg": 0.031, "naive": 0.020}, fallback="garch_avg",
        min_realized=20,
    )  # fmt: skip
    assert better.method == "lstm"  # naive's score is not the fallback's: it does not count
    assert better.reason == f"{point.reason}; its 95% interval scored 0.03 vs garch_avg's 0.031"
    worse = choose_interval(
        point, {"lstm": 0.031, "garch_avg": 0.030}, fallback="garch_avg", min_realized=20
    )
    assert (worse.method, worse.skill, worse.n, worse.basis) == (
        "garch_avg",
        0.99,
        60,
        "walk-forward",
    )
    assert worse.reason == (
        "LSTM 95% interval score 0.031 vs garch_avg's 0.03 over 60 walk-forward days"
    )
    tie = choose_interval(
        point, {"lstm": 0.03, "garch_avg": 0.03}, fallback="garch_avg", min_realized=20
    )
    assert tie.method == "garch_avg"  # the model must be better, not as good


def test_the_point_verdict_stands_without_a_comparable_interval_score():
    point = serve(0.99)
    for scores in ({}, {"lstm": 0.03}, {"lstm": math.nan, "garch_avg": 0.02}):
        assert choose_interval(point, scores, fallback="garch_avg", min_realized=20) is point
    short = serve(0.99, 19, min_realized=19)
    assert (
        choose_interval(
            short, {"lstm": 0.05, "garch_avg": 0.01}, fallback="garch_avg", min_realized=20
        )
        is short
    )
    naive = serve(1.5)  # not the LSTM's: nothing to compare
    assert choose_interval(naive, {"lstm": 0.01}, fallback="naive", min_realized=20) is naive


def test_champion_findings_are_critical_when_its_file_is_unusable():
    broken = champion_finding(BROKEN)
    assert (broken.kind, broken.metric, broken.value) == ("pipeline", "champion_unusable", 1.0)
    assert broken.breached and not broken.clear and broken.severity == "critical"
    assert broken.message == f"The champion was retired and a new model retrained: {BROKEN}."
    fine = champion_finding(None)
    assert (fine.value, fine.breached, fine.clear, fine.severity) == (0.0, False, True, "info")


def test_a_replay_of_a_stored_day_reuses_the_model_that_forecast_it():
    newer = champion(as_of=dt.date(2025, 2, 14))
    day_model = champion(as_of=AS_OF)
    decision = auto(champion=newer, day_forecaster=day_model, day_forecaster_live=True)
    assert decision.action == "reuse"
    assert "model #7, which forecast that day" in decision.reason
    # Without a stored model of the day, a replay trains its own, as before.
    assert auto(champion=newer).action == "retrain"


@pytest.mark.parametrize("mode", ["retrain", "finetune"])
def test_forcing_a_new_model_on_a_live_day_later_days_rest_on_is_refused(mode):
    newer = champion(as_of=dt.date(2025, 2, 14))
    with pytest.raises(ConfigurationError, match=f"without --mode {mode}"):
        auto(mode=mode, champion=newer, day_forecaster=champion(), day_forecaster_live=True)


def test_a_replay_s_own_model_may_be_retrained_on_request():
    newer = champion(as_of=dt.date(2025, 2, 14))
    decision = auto(mode="retrain", champion=newer, day_forecaster=champion())
    assert decision.action == "retrain"


def retrain_verdict(**overrides):
    arguments = dict(
        kind="retrain",
        windows=250,
        held_out_days=250,
        replay_of=None,
        comparison=(0.99, 1.0, 60),
        tolerance=0.02,
        min_realized=20,
    )
    return judge_retrain(**(arguments | overrides))


def test_a_retrain_is_judged_on_the_days_it_shares_with_the_champion():
    assert retrain_verdict().promote
    assert "on 60 shared days" in retrain_verdict().reason
    worse = retrain_verdict(comparison=(1.05, 1.0, 60))
    assert not worse.promote and "worse by 0.0500" in worse.reason


def test_too_few_shared_days_or_no_champion_promote_the_retrain():
    few = retrain_verdict(comparison=(2.0, 1.0, 19))
    assert few.promote and "19 realized forecasts of the candidate's 250" in few.reason
    assert retrain_verdict(comparison=None).reason == "no usable champion to compare with"


def test_a_replay_never_promotes_and_a_fine_tune_always_does():
    replay = retrain_verdict(replay_of=dt.date(2025, 2, 14), comparison=(0.5, 1.0, 60))
    assert not replay.promote and "fitted through 2025-02-14, stays" in replay.reason
    fine_tune = retrain_verdict(kind="finetune", comparison=None, windows=250)
    assert fine_tune.promote and "newest 250 windows" in fine_tune.reason


def test_serving_is_decided_on_the_walk_forward_record_once_it_is_long_enough():
    import pandas as pd

    walk_forward, held_out = pd.DataFrame({"n": range(70)}), pd.DataFrame({"n": range(250)})
    deciding, basis = deciding_record(walk_forward, held_out, window=60, min_realized=20)
    assert basis == "walk-forward" and list(deciding["n"]) == list(range(10, 70))
    deciding, basis = deciding_record(walk_forward[:19], held_out, window=60, min_realized=20)
    assert basis == "held-out" and list(deciding["n"]) == list(range(190, 250))
