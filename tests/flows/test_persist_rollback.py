"""Persist's undo of the model file it wrote (Prefect's ``on_rollback``) keeps the retention
rule: every stored model version keeps its file, whatever fails and whenever the hook fires."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import select

from db.engine import get_engine, unit_of_work
from db.migrate import upgrade
from db.models import ModelVersion, Run
from db.repository import RunKey
from flows import persist
from flows.persist import Candidate, RunRows, persist_run
from forecasting.forecast import Forecast
from forecasting.model import SavedModel, TrainingResult

FIRST, SECOND = dt.date(2024, 3, 1), dt.date(2024, 3, 4)


def persist_in_a_flow(database_url: str, record: RunRows, artifact_root: str):
    """Persist as the daily flow calls it (the record stays out of the flow's parameters)."""

    @flow(name="persist a day")
    def persist_a_day():
        return persist_run(database_url, record, artifact_root=artifact_root)

    return persist_a_day()


def fleet_like_flow(database_url: str, record: RunRows, artifact_root: str) -> None:
    """Persist nested in a task, as the fleet's ``forecast-ticker`` calls it; the task then fails
    and its Prefect transaction rolls back, persist's (committed in SQL) with it."""

    @task(name="forecast-ticker", cache_policy=NO_CACHE)
    def forecast_ticker():
        persist_run(database_url, record, artifact_root=artifact_root)
        raise RuntimeError("delivery failed after persist (injected)")

    @flow(name="fleet of one")
    def fleet():
        forecast_ticker()

    fleet()


def model(content: bytes) -> SavedModel:
    """A model file's bytes (persist never opens them, only writes and names them by sha256)."""
    return SavedModel(content, hashlib.sha256(content).hexdigest())


def forecast(method: str, as_of: dt.date) -> Forecast:
    return Forecast(
        method, as_of, as_of + dt.timedelta(days=3), 100.0, 0.0, 100.0, *(99, 101, 98, 102), 0.01
    )


def record(as_of: dt.date, saved: SavedModel, *, champion_id: int | None = None) -> RunRows:
    """A day's run whose candidate is ``saved``: the first day's retrain becomes champion; a
    later day's fine-tune of ``champion_id`` is rejected (the champion forecasts)."""
    first = champion_id is None
    training = TrainingResult(saved, "retrain" if first else "finetune", 1, 1, 0.5, {}, 0.1, 50)
    candidate = Candidate(
        kind="retrain" if first else "finetune",
        parent_id=champion_id,
        training=training,
        metrics={"test_loss": 0.5},
        held_out=None,
        hyperparameters={"units": 4},
        feature_config={"window": 10},
        config_hash="c0ffee",
        train_start=dt.date(2024, 1, 2),
        train_end=as_of,
        promoted=first,
        promotion_reason="first model" if first else "worse than the champion",
        serves=first,
    )
    return RunRows(
        key=RunKey("NVDA", as_of, None),
        started_at=dt.datetime.now(dt.UTC),
        code_version="test",
        data_hash=None,
        candidate=candidate,
        champion_id=champion_id,
        retired_champion_id=None,
        forecaster_metrics={"test_loss": 0.4},
        served=forecast("naive", as_of),
        contenders=(forecast("lstm", as_of), forecast("naive", as_of)),
        findings=[],
    )


@pytest.fixture
def store(flow_settings, tmp_path) -> tuple[str, str]:
    """A migrated SQLite store and its artifact root."""
    upgrade(flow_settings)
    return flow_settings, str(tmp_path / "artifacts")


def versions(url: str) -> list[ModelVersion]:
    with unit_of_work(get_engine(url)) as session:
        rows = session.scalars(select(ModelVersion).order_by(ModelVersion.id)).all()
        session.expunge_all()
        return rows


def files(root: str) -> set[str]:
    return {str(path) for path in Path(root).rglob("*.keras")}


def assert_every_version_has_its_file(url: str) -> None:
    """The retention rule: every `model_versions.artifact_uri` is a file holding that model."""
    stored = versions(url)
    assert stored
    for version in stored:
        path = Path(version.artifact_uri)
        assert path.is_file(), f"version {version.id}'s file {path} is gone"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == version.sha256


def first_day(url: str, root: str) -> ModelVersion:
    """The first day stored: its retrain is the champion."""
    persist_in_a_flow(url, record(FIRST, model(b"champion")), root)
    (champion,) = versions(url)
    assert champion.status == "champion"
    return champion


def fail_in_the_rows(monkeypatch, error: Exception) -> list[int]:
    """Make ``record_evaluation`` (after the candidate's row is added) raise ``error`` once."""
    real, calls = persist.record_evaluation, []

    def failing(**kwargs):
        calls.append(kwargs["model_version_id"])
        if len(calls) == 1:
            raise error
        return real(**kwargs)

    monkeypatch.setattr(persist, "record_evaluation", failing)
    return calls


def spy_on_the_store_check(monkeypatch) -> list[str]:
    """The URIs whose use the undo (or the clean-up after commit) asked the store about."""
    asked, real = [], persist.artifact_in_use

    def spy(*, session, artifact_uri):
        asked.append(artifact_uri)
        return real(session=session, artifact_uri=artifact_uri)

    monkeypatch.setattr(persist, "artifact_in_use", spy)
    return asked


def test_rows_failing_mid_transaction_store_nothing_and_remove_the_attempts_file(
    store, monkeypatch
):
    url, root = store
    champion = first_day(url, root)
    calls = fail_in_the_rows(monkeypatch, RuntimeError("constraint violated (injected)"))

    with pytest.raises(RuntimeError, match="injected"):
        persist_in_a_flow(url, record(SECOND, model(b"fine-tuned"), champion_id=champion.id), root)

    assert len(calls) == 1  # it failed inside the transaction, after the candidate's row
    assert [v.id for v in versions(url)] == [champion.id]
    with unit_of_work(get_engine(url)) as session:
        assert session.scalars(select(Run.as_of_date)).all() == [FIRST]
    # The attempt wrote its file, and the rollback hook removed it: only the champion's is left.
    assert files(root) == {champion.artifact_uri}
    assert_every_version_has_its_file(url)


def test_a_retried_attempt_commits_a_row_whose_file_exists(store, monkeypatch):
    from db.errors import DatabaseUnavailableError

    url, root = store
    champion = first_day(url, root)
    calls = fail_in_the_rows(monkeypatch, DatabaseUnavailableError("database is locked (injected)"))
    asked = spy_on_the_store_check(monkeypatch)
    monkeypatch.setattr(persist_run, "retry_delay_seconds", [0])

    persist_in_a_flow(url, record(SECOND, model(b"fine-tuned"), champion_id=champion.id), root)

    assert len(calls) == 3  # the first attempt failed; the second stored both evaluations
    _, candidate = versions(url)
    assert asked == [candidate.artifact_uri]  # the first attempt's undo ran, found it unstored
    assert candidate.status == "rejected"
    assert files(root) == {champion.artifact_uri, candidate.artifact_uri}
    assert_every_version_has_its_file(url)


def test_a_failed_attempt_keeps_an_identical_file_a_committed_row_refers_to(store, monkeypatch):
    url, root = store
    champion = first_day(url, root)
    asked = spy_on_the_store_check(monkeypatch)
    fail_in_the_rows(monkeypatch, RuntimeError("constraint violated (injected)"))

    # A rerun of the first day trains the very same model: its file has the champion's URI.
    with pytest.raises(RuntimeError, match="injected"):
        persist_in_a_flow(url, record(FIRST, model(b"champion")), root)

    assert asked == [champion.artifact_uri]  # the undo ran, and the store said: in use
    assert [(v.id, v.status) for v in versions(url)] == [(champion.id, "champion")]
    assert files(root) == {champion.artifact_uri}
    assert_every_version_has_its_file(url)


def test_a_rerun_removes_the_file_of_the_version_it_cleared_after_commit(store):
    url, root = store
    champion = first_day(url, root)
    persist_in_a_flow(url, record(SECOND, model(b"first try"), champion_id=champion.id), root)
    _, cleared = versions(url)

    persist_in_a_flow(url, record(SECOND, model(b"second try"), champion_id=champion.id), root)

    _, replacement = versions(url)
    assert replacement.artifact_uri != cleared.artifact_uri  # (SQLite may reuse the id)
    assert files(root) == {champion.artifact_uri, replacement.artifact_uri}
    assert_every_version_has_its_file(url)


def test_a_rerun_keeps_the_cleared_file_when_its_new_row_refers_to_it(store):
    url, root = store
    champion = first_day(url, root)
    persist_in_a_flow(url, record(SECOND, model(b"same model"), champion_id=champion.id), root)
    _, cleared = versions(url)

    persist_in_a_flow(url, record(SECOND, model(b"same model"), champion_id=champion.id), root)

    _, replacement = versions(url)
    assert replacement.artifact_uri == cleared.artifact_uri
    assert files(root) == {champion.artifact_uri, replacement.artifact_uri}
    assert_every_version_has_its_file(url)


def test_a_failure_after_the_commit_keeps_the_committed_file(store, monkeypatch):
    url, root = store
    champion = first_day(url, root)
    persist_in_a_flow(url, record(SECOND, model(b"first try"), champion_id=champion.id), root)
    _, cleared = versions(url)
    real_remove = persist.remove_model

    def remove(uri):
        if uri == cleared.artifact_uri:  # a permanent error: no retry
            raise PermissionError(13, "Permission denied (injected)", uri)
        real_remove(uri)

    monkeypatch.setattr(persist, "remove_model", remove)
    asked = spy_on_the_store_check(monkeypatch)

    with pytest.raises(PermissionError):
        persist_in_a_flow(url, record(SECOND, model(b"second try"), champion_id=champion.id), root)

    _, committed = versions(url)
    # Prefect rolled its transaction back after the rows had committed, and the undo ran; it
    # asked the store and kept the committed candidate's file.
    assert asked == [cleared.artifact_uri, committed.artifact_uri]
    assert Path(committed.artifact_uri).is_file()
    assert files(root) == {champion.artifact_uri, cleared.artifact_uri, committed.artifact_uri}
    assert_every_version_has_its_file(url)


def test_persist_nested_in_a_task_that_fails_later_keeps_its_committed_file(store, monkeypatch):
    url, root = store
    champion = first_day(url, root)
    asked = spy_on_the_store_check(monkeypatch)

    with pytest.raises(RuntimeError, match="delivery failed"):
        fleet_like_flow(url, record(SECOND, model(b"fine-tuned"), champion_id=champion.id), root)

    _, committed = versions(url)
    # The enclosing task's rollback reached persist's file hook long after the commit.
    assert asked == [committed.artifact_uri]
    assert files(root) == {champion.artifact_uri, committed.artifact_uri}
    assert_every_version_has_its_file(url)
