"""Model versions and evaluations: rows of a run, promotion, lineage."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from sqlalchemy.exc import IntegrityError

from db.engine import unit_of_work
from db.models import Evaluation, ModelVersion
from db.repository import (
    add_model_version,
    get_champion,
    get_evaluation,
    get_model_version,
    lineage,
    lineage_retrain_date,
    list_model_versions,
    promote,
    record_evaluation,
    reject,
)

AS_OF = dt.date(2024, 6, 28)


def _version(session, as_of=AS_OF, kind="retrain", **changes) -> ModelVersion:
    arguments = {
        "session": session,
        "ticker": "NVDA",
        "as_of_date": as_of,
        "kind": kind,
        "config_hash": "c0ffee",
        "hyperparameters": {"layers": 3, "units": 50},
        "feature_config": {"sequence_length": 10},
        "train_start": dt.date(2020, 1, 2),
        "train_end": as_of,
        "artifact_uri": f"/models/NVDA/{as_of}-{kind}.keras",
        "sha256": "0" * 64,
        "code_version": "0.1.0",
        "flow_run_id": "run-1",
    }
    return add_model_version(**(arguments | changes))


def test_a_version_of_each_kind_and_day_is_a_row(session, row_count) -> None:
    first = _version(session)
    assert first.status == "candidate"
    assert first.created_at.tzinfo is not None
    assert first.hyperparameters == {"layers": 3, "units": 50}
    _version(session, kind="finetune")
    _version(session, as_of=AS_OF + dt.timedelta(days=3))
    assert row_count(session, ModelVersion) == 3
    assert len(list_model_versions(session=session, ticker="NVDA")) == 3


def test_promote_retires_the_previous_champion(session) -> None:
    first = _version(session, as_of=dt.date(2024, 6, 27))
    assert promote(session=session, version=first) is None
    second = _version(session, kind="finetune", parent_id=first.id)
    previous = promote(session=session, version=second)
    assert previous is not None and previous.id == first.id
    assert first.status == "retired" and first.retired_at is not None
    assert second.status == "champion" and second.promoted_at is not None
    assert get_champion(session=session, ticker="NVDA").id == second.id
    assert promote(session=session, version=second) is None


def test_the_schema_allows_one_champion_per_ticker(engine) -> None:
    with unit_of_work(engine) as session:
        promote(session=session, version=_version(session))
    with pytest.raises(IntegrityError), unit_of_work(engine) as session:
        other = _version(session, kind="finetune")
        other.status = "champion"
        session.flush()


def test_reject(session) -> None:
    champion = _version(session, as_of=dt.date(2024, 6, 27))
    promote(session=session, version=champion)
    candidate = _version(session)
    reject(session=session, version=candidate)
    assert get_model_version(session=session, id=candidate.id).status == "rejected"
    assert get_champion(session=session, ticker="NVDA").id == champion.id
    with pytest.raises(ValueError, match="champion"):
        reject(session=session, version=champion)


def test_lineage_and_last_retrain(session) -> None:
    root = _version(session, as_of=dt.date(2024, 6, 3))
    middle = _version(session, as_of=dt.date(2024, 6, 10), kind="finetune", parent_id=root.id)
    leaf = _version(session, as_of=dt.date(2024, 6, 17), kind="finetune", parent_id=middle.id)
    assert [version.id for version in lineage(session=session, version=leaf)] == [
        leaf.id,
        middle.id,
        root.id,
    ]
    assert lineage_retrain_date(session=session, version=leaf) == dt.date(2024, 6, 3)
    assert lineage_retrain_date(session=session, version=root) == dt.date(2024, 6, 3)


def test_record_evaluation_twice_keeps_one_row(session, row_count) -> None:
    version = _version(session)
    metrics = {"test_loss": 0.5, "rmse": 2.0, "mape": 1.5, "skill": 0.97, "n_test": 120}
    first = record_evaluation(
        session=session, model_version_id=version.id, as_of_date=AS_OF, metrics=metrics
    )
    second = record_evaluation(
        session=session,
        model_version_id=version.id,
        as_of_date=AS_OF,
        metrics=metrics | {"test_loss": 0.4, "mae": math.nan},
        flow_run_id="run-2",
    )
    assert second.id == first.id
    assert row_count(session, Evaluation) == 1
    assert second.test_loss == 0.4
    assert second.mae is None
    assert second.n_test == 120
    assert second.ticker == "NVDA"
    assert get_evaluation(session=session, model_version_id=version.id).id == first.id


def test_record_evaluation_refuses_unknown_metrics(session) -> None:
    version = _version(session)
    with pytest.raises(ValueError, match="unknown evaluation metrics"):
        record_evaluation(
            session=session, model_version_id=version.id, as_of_date=AS_OF, metrics={"r2": 1}
        )


def test_get_evaluation_picks_the_date(session) -> None:
    version = _version(session)
    for offset, loss in ((0, 0.3), (1, 0.2)):
        record_evaluation(
            session=session,
            model_version_id=version.id,
            as_of_date=AS_OF + dt.timedelta(days=offset),
            metrics={"test_loss": loss},
        )
    latest = get_evaluation(session=session, model_version_id=version.id)
    assert latest.test_loss == 0.2
    first = get_evaluation(session=session, model_version_id=version.id, as_of_date=AS_OF)
    assert first.test_loss == 0.3
