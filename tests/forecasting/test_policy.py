import datetime as dt

import pytest

from forecasting.errors import ConfigurationError
from forecasting.policy import ChampionInfo, decide

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
    from forecasting.policy import judge

    assert judge(candidate_skill=0.99, champion_skill=None, tolerance=0.02).promote
    assert judge(candidate_skill=1.01, champion_skill=1.00, tolerance=0.02).promote
    rejected = judge(candidate_skill=1.05, champion_skill=1.00, tolerance=0.02)
    assert not rejected.promote
    assert "worse by 0.0500" in rejected.reason
    assert not judge(candidate_skill=float("nan"), champion_skill=1.0, tolerance=0.02).promote
