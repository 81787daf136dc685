"""Every code snippet of README.md and docs/*.md runs as written.

- A ```python block runs in a fresh process, in an empty folder, with ``DATABASE_URL`` naming a
  freshly migrated SQLite file. A block that cannot run there (an excerpt, one that needs a
  Prefect server) says so on a line of its own, ``# not run in tests: <why>``; it must still be
  valid Python. Nothing is skipped without that line.
- A ```sql block runs on a migrated database, SQLite and PostgreSQL; the numbered queries of
  docs/sql.md are left to tests/db/test_db_sql_docs.py, which also checks their rows.
- Every ``nvda-forecast ...`` command line of the other blocks parses with the CLI's own parser.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^([ \t]*)```([\w+-]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.MULTILINE | re.DOTALL)
NOT_RUN = re.compile(r"^# not run in tests: (.*)$", re.MULTILINE)
SQL_DOC = ROOT / "docs" / "sql.md"


@dataclass(frozen=True)
class Snippet:
    path: Path
    line: int
    language: str
    code: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _snippets() -> list[Snippet]:
    found = []
    for path in DOCUMENTS:
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            indent, language, body = match.groups()
            code = "\n".join(line.removeprefix(indent) for line in body.splitlines())
            line = text.count("\n", 0, match.start()) + 1
            found.append(Snippet(path, line, language, code + "\n"))
    return found


SNIPPETS = _snippets()


def _of(language: str) -> list[Snippet]:
    return [snippet for snippet in SNIPPETS if snippet.language == language]


def _numbered_queries_section() -> tuple[int, int]:
    """First and last line of docs/sql.md's "## Queries" (tests/db/test_db_sql_docs.py's)."""
    lines = SQL_DOC.read_text(encoding="utf-8").splitlines()
    start = lines.index("## Queries") + 1
    end = next((n for n in range(start, len(lines)) if lines[n].startswith("## ")), len(lines))
    return start, end


def _left_to_the_sql_docs_test(snippet: Snippet) -> bool:
    start, end = _numbered_queries_section()
    return snippet.path == SQL_DOC and start <= snippet.line <= end


def test_the_documents_have_snippets_of_each_kind():
    # A change to the fence pattern that found nothing would pass every test below.
    assert len(_of("python")) >= 2 and len(_of("sql")) >= 10
    assert any(snippet.path.name == "README.md" for snippet in _of("sql"))


@pytest.fixture
def migrated_sqlite(tmp_path) -> str:
    from db.engine import dispose_engines
    from db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'docs.db'}"
    upgrade(url)
    dispose_engines()
    return url


def _runnable(snippet: Snippet) -> bool:
    return NOT_RUN.search(snippet.code) is None


@pytest.mark.parametrize("snippet", _of("python"), ids=str)
def test_python_snippet_parses_and_one_not_run_says_why(snippet: Snippet):
    ast.parse(snippet.code, filename=str(snippet))
    marker = NOT_RUN.search(snippet.code)
    if marker:
        assert len(marker.group(1).strip()) >= 10, f"{snippet}: say why it is not run"


@pytest.mark.slow  # a fresh interpreter importing pandas and the project: about 10 s
@pytest.mark.parametrize("snippet", [s for s in _of("python") if _runnable(s)], ids=str)
def test_python_snippet_runs(snippet: Snippet, tmp_path, migrated_sqlite):
    folder = tmp_path / "run"
    folder.mkdir()
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "NVDA_FORECAST_", "DATABASE_URL"))
    }
    environment |= {
        "DATABASE_URL": migrated_sqlite,
        "NVDA_FORECAST_DATA_DIR": str(tmp_path / "data"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.run(
        [sys.executable, "-c", snippet.code],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, f"{snippet} failed:\n{process.stderr[-3000:]}"


def test_the_run_checks_excerpt_names_real_parameters():
    """docs/alerts.md shows the watch task's call of run_checks; it is not run, so its keyword
    arguments are checked against the function's (read from the source: importing the
    monitoring package loads the whole core)."""
    source = (ROOT / "forecasting" / "monitoring" / "drift.py").read_text(encoding="utf-8")
    function = next(
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef) and node.name == "run_checks"
    )
    parameters = {a.arg for a in [*function.args.args, *function.args.kwonlyargs]}
    excerpt = next(s for s in _of("python") if "run_checks(" in s.code)
    call = next(
        node
        for node in ast.walk(ast.parse(excerpt.code))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "run_checks"
    )
    documented = {keyword.arg for keyword in call.keywords}
    assert documented <= parameters, documented - parameters
    # The watch task passes every parameter; so does the excerpt of its call.
    assert documented == parameters - {"prices"}, parameters - documented - {"prices"}


@pytest.mark.parametrize(
    "snippet", [s for s in _of("sql") if not _left_to_the_sql_docs_test(s)], ids=str
)
def test_sql_snippet_runs(snippet: Snippet, database_url: str):
    from sqlalchemy import text

    from db.engine import dispose_engines, get_engine
    from db.migrate import upgrade

    upgrade(database_url)
    try:
        with get_engine(database_url).connect() as connection:
            connection.execute(text(snippet.code)).fetchall()
    finally:
        dispose_engines()  # before the PostgreSQL fixture drops the database


def test_the_sql_docs_test_has_every_query_of_its_section():
    """The blocks left to tests/db/test_db_sql_docs.py are all ones it finds (each under a
    ``### N.`` heading), so that none falls between the two tests."""
    section = SQL_DOC.read_text(encoding="utf-8").split("\n## Queries\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    numbered = re.findall(r"^### \d+\. .+?\n.*?```sql\n", section, re.MULTILINE | re.DOTALL)
    left = [s for s in _of("sql") if _left_to_the_sql_docs_test(s)]
    assert len(left) == len(numbered) == section.count("```sql")


def _command_lines() -> list[tuple[Snippet, str]]:
    lines = []
    for snippet in SNIPPETS:
        if snippet.language in ("python", "sql"):
            continue
        # A command continued with a backslash is one line.
        for line in snippet.code.replace("\\\n", " ").splitlines():
            if "nvda-forecast" not in line:
                continue
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
                words.pop(0)  # VARIABLE=value before the command
            if words[:1] == ["$"]:
                words.pop(0)  # a prompt
            if words[:1] == ["nvda-forecast"]:
                lines.append((snippet, line.strip()))
    return lines


def test_there_are_command_lines_to_check():
    assert len(_command_lines()) >= 5


@pytest.mark.parametrize(
    ("snippet", "line"), _command_lines(), ids=[f"{s}:{line}" for s, line in _command_lines()]
)
def test_a_documented_command_line_parses(snippet: Snippet, line: str, capsys):
    from flows.presentation.cli import build_parser

    words = shlex.split(line, comments=True)
    arguments = words[words.index("nvda-forecast") + 1 :]
    try:
        build_parser().parse_args(arguments)
    except SystemExit:
        pytest.fail(f"{snippet}: `{line}` does not parse: {capsys.readouterr().err.strip()}")
