"""The CLI on a database at another schema revision: one line each, saying what to do."""

from __future__ import annotations

import pytest

from db.engine import dispose_engines
from db.migrate import head_revision, upgrade
from flows.presentation.cli import main
from flows.settings import get_settings


@pytest.fixture
def old_database(tmp_path, monkeypatch):
    """A SQLite database migrated only to 0002, as DATABASE_URL."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    upgrade(url, "0002")
    yield url
    dispose_engines()
    get_settings.cache_clear()


@pytest.mark.parametrize("command", [["history"], ["alerts"], ["alerts", "--all"]])
def test_history_and_alerts_on_an_old_schema_say_run_db_upgrade(old_database, command, capsys):
    assert main(command) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: database at {old_database} is at schema revision 0002, this version of "
        f"nvda-forecast needs {head_revision()}; run `nvda-forecast db upgrade`"
    )


def test_db_upgrade_to_a_revision_the_database_is_past_says_so(old_database, capsys):
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["db", "upgrade", "0002"]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"error: database at {old_database} is already at revision {head_revision()}, past "
        "0002; nothing was changed (an upgrade never downgrades)"
    )
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out.strip() == head_revision()
