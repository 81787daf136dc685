"""The layering of ARCHITECTURE.md, checked on the source: imports go flows -> forecasting, db."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported_roots(path: Path) -> set[str]:
    """Top-level package names a module imports (absolute imports only; we use no others)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("forecasting", {"prefect", "sqlalchemy", "alembic", "db", "flows"}),
        ("db", {"prefect", "flows", "keras", "tensorflow"}),
        ("flows", {"sqlalchemy", "alembic"}),
    ],
)
def test_packages_import_only_what_their_layer_may(package, forbidden):
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & forbidden)
        for path in modules(package)
        if imported_roots(path) & forbidden
    }
    assert offenders == {}


def test_db_uses_only_settings_and_errors_from_forecasting():
    allowed = {"forecasting.config", "forecasting.errors"}
    used = set()
    for path in modules("db"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("forecasting"):
                used.add(node.module)
    assert used <= allowed


def test_only_the_yahoo_adapter_touches_the_network_in_forecasting():
    network = {"yfinance", "requests", "httpx", "urllib3"}
    users = {path.name for path in modules("forecasting") if imported_roots(path) & network}
    assert users == {"yahoo.py"}
