"""Engines from settings, clear errors for unreachable databases, and units of work."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from db.engine import get_engine, mask_url, normalize_url, unit_of_work
from db.errors import DatabaseUnavailableError
from db.models import Price
from db.repository import latest_price_date, read_prices, upsert_prices
from flows.settings import get_settings


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgres://u:p@h:5432/d", "postgresql+psycopg"),
        ("postgresql://u:p@h:5432/d", "postgresql+psycopg"),
        ("postgresql+psycopg://u:p@h:5432/d", "postgresql+psycopg"),
        ("sqlite:////tmp/x.db", "sqlite"),
    ],
)
def test_urls_are_normalised_to_psycopg(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver


def test_mask_url_hides_the_password() -> None:
    masked = mask_url("postgresql+psycopg://postgres:s3cret@db:5432/x")
    assert masked == "postgresql+psycopg://postgres:***@db:5432/x"


def test_unreachable_postgres_gives_one_masked_line() -> None:
    url = f"postgresql://postgres:s3cret@127.0.0.1:{_closed_port()}/x?connect_timeout=2"
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError) as raised:
        get_engine(url)
    message = str(raised.value)
    assert time.monotonic() - started < 5
    assert "s3cret" not in message
    assert "\n" not in message
    assert message.startswith("cannot connect to postgresql+psycopg://postgres:***@127.0.0.1:")
    assert "connection refused" in message.lower()
    assert message.endswith("check DATABASE_URL and that the server is running")


def test_unopenable_sqlite_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(DatabaseUnavailableError, match="cannot create the folder"):
        get_engine(f"sqlite:///{blocker / 'sub' / 'x.db'}")


def test_invalid_url_is_a_clear_error() -> None:
    with pytest.raises(DatabaseUnavailableError, match="not a valid SQLAlchemy URL"):
        get_engine("not a url")


def test_default_url_is_a_sqlite_file_in_the_data_folder() -> None:
    engine = get_engine(get_settings().database_url)
    expected = get_settings().data_dir / "nvda-forecast.db"
    assert engine.url.database == str(expected)
    assert expected.parent.is_dir()
    engine.dispose()


def test_one_engine_per_url(database_url: str) -> None:
    assert get_engine(database_url) is get_engine(database_url)


def test_sqlite_connections_enforce_foreign_keys_and_wait(sqlite_url: str) -> None:
    with get_engine(sqlite_url).connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() >= 10_000
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_unit_of_work_commits(engine, make_prices, row_count) -> None:
    with unit_of_work(engine) as session:
        upsert_prices(make_prices(5), session=session, ticker="NVDA", source="sample")
    with unit_of_work(engine) as session:
        assert row_count(session, Price) == 5


def test_error_inside_unit_of_work_leaves_nothing(engine, make_prices, row_count) -> None:
    with pytest.raises(RuntimeError), unit_of_work(engine) as session:
        upsert_prices(make_prices(5), session=session, ticker="NVDA", source="sample")
        raise RuntimeError("a later step failed")
    with unit_of_work(engine) as session:
        assert row_count(session, Price) == 0


def test_sqlite_rolls_back_schema_changes_too(sqlite_url: str) -> None:
    engine = get_engine(sqlite_url)
    with pytest.raises(RuntimeError), engine.begin() as connection:
        connection.execute(text("CREATE TABLE half_done (id INTEGER)"))
        raise RuntimeError("the migration failed half-way")
    with engine.connect() as connection:
        tables = connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
        assert "half_done" not in tables.scalars().all()


def test_tickers_on_threads_read_then_write_without_locking_errors(engine, make_prices) -> None:
    # The flow maps tickers onto threads; each reads (latest bar) then writes (upsert).
    frame = make_prices(30)

    def ingest(ticker: str) -> int:
        for end in range(10, 31, 5):
            with unit_of_work(engine) as session:
                latest_price_date(session=session, ticker=ticker)
                time.sleep(0.01)  # a download happens between read and write
                upsert_prices(frame.iloc[:end], session=session, ticker=ticker, source="sample")
        with unit_of_work(engine) as session:
            return len(read_prices(session=session, ticker=ticker))

    with ThreadPoolExecutor(max_workers=4) as pool:
        counts = list(pool.map(ingest, ["NVDA", "AMD", "MSFT", "TSLA"]))
    assert counts == [30, 30, 30, 30]
