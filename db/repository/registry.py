"""Model versions (the registry: candidate, champion, rejected, retired) and their evaluations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import EVALUATION_METRICS, MODEL_KINDS, Evaluation, ModelVersion
from db.repository.bulk import clean_number, dialect_insert
from db.repository.runs import run_for
from db.types import utcnow

_INTEGER_METRICS = {"n_train", "n_val", "n_test", "epochs", "n_realized"}
_Row = TypeVar("_Row", ModelVersion, Evaluation)


def add_model_version(
    *,
    session: Session,
    ticker: str,
    as_of_date: dt.date,
    kind: str,
    config_hash: str,
    hyperparameters: Mapping[str, Any],
    feature_config: Mapping[str, Any],
    train_start: dt.date,
    train_end: dt.date,
    parent_id: int | None = None,
    artifact_uri: str | None = None,
    sha256: str | None = None,
    code_version: str | None = None,
    flow_run_id: str | None = None,
    run_id: int | None = None,
) -> ModelVersion:
    """Add a model version (a ``candidate`` until promote/reject decide) to the day's run.

    A rerun of the day adds its own version after ``clear_run`` removed the earlier attempt's,
    so a rejected rerun never touches the champion's row.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind must be one of {MODEL_KINDS}, not {kind!r}")
    if run_id is None:
        run_id = run_for(session=session, ticker=ticker, as_of_date=as_of_date)
    version = ModelVersion(
        run_id=run_id,
        ticker=ticker,
        as_of_date=as_of_date,
        kind=kind,
        config_hash=config_hash,
        hyperparameters=dict(hyperparameters),
        feature_config=dict(feature_config),
        train_start=train_start,
        train_end=train_end,
        parent_id=parent_id,
        artifact_uri=artifact_uri,
        sha256=sha256,
        code_version=code_version,
        flow_run_id=flow_run_id,
        created_at=utcnow(),
        status="candidate",
    )
    session.add(version)
    session.flush()
    return version


def get_model_version(*, session: Session, id: int) -> ModelVersion | None:
    """The model version with this id, or None."""
    return session.get(ModelVersion, id)


def get_champion(*, session: Session, ticker: str) -> ModelVersion | None:
    """The model currently serving forecasts for ``ticker``; None before the first promotion."""
    statement = select(ModelVersion).where(
        ModelVersion.ticker == ticker, ModelVersion.status == "champion"
    )
    return session.scalars(statement).one_or_none()


def list_model_versions(*, session: Session, ticker: str) -> list[ModelVersion]:
    """Every model version of ``ticker``, oldest as-of date first."""
    statement = (
        select(ModelVersion)
        .where(ModelVersion.ticker == ticker)
        .order_by(ModelVersion.as_of_date, ModelVersion.id)
    )
    return list(session.scalars(statement))


def lineage(*, session: Session, version: ModelVersion) -> list[ModelVersion]:
    """``version`` and its ancestors (the models it was fine-tuned from), newest first."""
    chain = [version]
    seen = {version.id}
    while chain[-1].parent_id is not None and chain[-1].parent_id not in seen:
        parent = session.get(ModelVersion, chain[-1].parent_id)
        if parent is None:
            break
        chain.append(parent)
        seen.add(parent.id)
    return chain


def lineage_retrain(*, session: Session, version: ModelVersion) -> ModelVersion:
    """The last full retrain behind ``version`` (itself if a retrain); a fine-tune whose
    retrained root is gone gives its oldest known ancestor."""
    chain = lineage(session=session, version=version)
    return next((ancestor for ancestor in chain if ancestor.kind == "retrain"), chain[-1])


def lineage_retrain_date(*, session: Session, version: ModelVersion) -> dt.date:
    """The as-of date of the last full retrain behind ``version`` (itself if a retrain)."""
    return lineage_retrain(session=session, version=version).as_of_date


def promote(*, session: Session, version: ModelVersion) -> ModelVersion | None:
    """Make ``version`` the champion; retire and return the previous one (None if none)."""
    previous = get_champion(session=session, ticker=version.ticker)
    if previous is not None and previous.id == version.id:
        return None
    now = utcnow()
    if previous is not None:
        previous.status = "retired"
        previous.retired_at = now
        # Flush the retirement first: at most one champion per ticker is a unique index.
        session.flush()
    version.status = "champion"
    version.promoted_at = now
    version.retired_at = None
    session.flush()
    return previous


def retire(*, session: Session, version_id: int) -> ModelVersion:
    """Take a version out of service (e.g. a champion whose model file is unusable)."""
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise ValueError(f"no model version with id {version_id}")
    version.status = "retired"
    version.retired_at = utcnow()
    session.flush()
    return version


def artifact_in_use(*, session: Session, artifact_uri: str) -> bool:
    """Whether any stored model version refers to ``artifact_uri``."""
    statement = select(ModelVersion.id).where(ModelVersion.artifact_uri == artifact_uri)
    return session.scalars(statement.limit(1)).first() is not None


def reject(*, session: Session, version: ModelVersion) -> ModelVersion:
    """Mark a candidate as rejected (it lost to the champion); the champion cannot be."""
    if version.status == "champion":
        raise ValueError(
            f"model version {version.id} is the champion of {version.ticker}; "
            "promote another version instead of rejecting it"
        )
    version.status = "rejected"
    session.flush()
    return version


def record_evaluation(
    *,
    session: Session,
    model_version_id: int,
    as_of_date: dt.date,
    metrics: Mapping[str, float | int | None],
    flow_run_id: str | None = None,
    run_id: int | None = None,
) -> Evaluation:
    """Store the test metrics of a model version, replacing those of an earlier rerun.

    ``metrics`` keys are columns of ``evaluations`` (see ``EVALUATION_METRICS``); missing ones
    and NaN are stored as NULL.
    """
    unknown = sorted(set(metrics) - set(EVALUATION_METRICS))
    if unknown:
        raise ValueError(f"unknown evaluation metrics {unknown}; known: {list(EVALUATION_METRICS)}")
    version = session.get(ModelVersion, model_version_id)
    if version is None:
        raise ValueError(f"no model version with id {model_version_id}")
    if run_id is None:
        run_id = run_for(session=session, ticker=version.ticker, as_of_date=as_of_date)
    values: dict[str, Any] = {
        "run_id": run_id,
        "model_version_id": model_version_id,
        "ticker": version.ticker,
        "as_of_date": as_of_date,
        "created_at": utcnow(),
        "flow_run_id": flow_run_id,
    }
    for name in EVALUATION_METRICS:
        number = clean_number(metrics.get(name))
        values[name] = int(number) if number is not None and name in _INTEGER_METRICS else number
    table = Evaluation.__table__
    statement = dialect_insert(session, table).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.model_version_id, table.c.as_of_date],
        set_={name: statement.excluded[name] for name in values if name != "model_version_id"},
    ).returning(table.c.id)
    session.flush()
    evaluation_id = session.execute(statement).scalar_one()
    return _load(session, Evaluation, evaluation_id)


def get_evaluation(
    *, session: Session, model_version_id: int, as_of_date: dt.date | None = None
) -> Evaluation | None:
    """The evaluation of a model version on ``as_of_date``; the latest one when None."""
    statement = select(Evaluation).where(Evaluation.model_version_id == model_version_id)
    if as_of_date is not None:
        statement = statement.where(Evaluation.as_of_date == as_of_date)
    statement = statement.order_by(Evaluation.as_of_date.desc()).limit(1)
    return session.scalars(statement).first()


def _load(session: Session, model: type[_Row], id: int) -> _Row:
    # populate_existing: the row may already sit in the session with its pre-upsert values.
    statement = select(model).where(model.id == id).execution_options(populate_existing=True)
    return session.scalars(statement).one()
