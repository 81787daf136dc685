"""Many rows in one statement: multi-row INSERT and INSERT ... ON CONFLICT on both dialects.

Rows go through SQLAlchemy's "insertmanyvalues" mode (an executemany of an INSERT with
RETURNING): it renders them as ONE multi-row ``INSERT ... VALUES (...), (...) ...`` statement,
split only where the dialect's bind-parameter limit requires (32,700 per statement, e.g. 3,270
price rows), and compiles the statement once instead of once per row (compiling a 25,000-value
``.values([...])`` costs more than running it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

Row = Mapping[str, Any]
# No row count of ours splits a statement; only the parameter limit does.
_ONE_STATEMENT = {"insertmanyvalues_page_size": 1_000_000}


def dialect_insert(session: Session, table: Table) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT construct, the one with ``on_conflict_do_update``."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts are implemented for PostgreSQL and SQLite, not {name}")


def insert_rows(session: Session, table: Table, rows: Sequence[Row]) -> int:
    """Insert ``rows`` (all with the same keys) in as few statements as the dialect allows."""
    if not rows:
        return 0
    session.flush()  # Core statements bypass autoflush; pending ORM rows must exist first.
    key = next(iter(table.primary_key.columns))
    result = session.execute(
        table.insert().returning(key), list(rows), execution_options=_ONE_STATEMENT
    )
    return len(result.all())


def upsert_rows(
    session: Session,
    table: Table,
    rows: Sequence[Row],
    *,
    key: Sequence[str],
    update: Sequence[str],
    only_if_changed: Sequence[str] = (),
) -> int:
    """Insert ``rows``, updating the ``update`` columns of rows whose ``key`` already exists.

    With ``only_if_changed``, an existing row is left untouched unless one of those columns
    differs, and the result counts only rows inserted or changed; otherwise all rows.
    """
    if not rows:
        return 0
    session.flush()
    statement = dialect_insert(session, table)
    excluded = statement.excluded
    condition: ColumnElement[bool] | None = None
    if only_if_changed:
        condition = or_(
            *(table.c[name].is_distinct_from(excluded[name]) for name in only_if_changed)
        )
    statement = statement.on_conflict_do_update(
        index_elements=[table.c[name] for name in key],
        set_={name: excluded[name] for name in update},
        where=condition,
    )
    # RETURNING yields one row per inserted or updated row: rows skipped by the WHERE of
    # DO UPDATE return nothing, which is how changed rows are counted.
    returning = statement.returning(*(table.c[name] for name in key))
    result = session.execute(returning, list(rows), execution_options=_ONE_STATEMENT)
    return len(result.all())


def clean_number(value: Any) -> float | None:
    """A plain float, with NaN and None both stored as SQL NULL."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number
