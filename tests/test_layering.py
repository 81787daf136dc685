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


def test_db_and_forecasting_know_nothing_of_each_other():
    """Both are used by flows, neither uses the other: no whitelist (settings live in flows)."""
    assert not any("forecasting" in imported_roots(path) for path in modules("db"))
    assert not any("db" in imported_roots(path) for path in modules("forecasting"))


def test_deployment_settings_are_read_in_flows_only():
    """The pure core gets its configuration passed in; only flows/ reads the environment's."""
    readers = {
        str(path.relative_to(ROOT))
        for package in ("forecasting", "db")
        for path in modules(package)
        if "pydantic_settings" in imported_roots(path)
    }
    assert readers == set()


def test_only_the_yahoo_adapter_touches_the_network_in_forecasting():
    network = {"yfinance", "requests", "httpx", "urllib3"}
    users = {path.name for path in modules("forecasting") if imported_roots(path) & network}
    assert users == {"yahoo.py"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _typing_only_imports(tree: ast.Module) -> set[int]:
    """Imports under ``if TYPE_CHECKING:``: read by type checkers, never run."""
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded |= {id(child) for child in ast.walk(node)}
    return guarded


def import_graph(package: str) -> dict[str, set[str]]:
    """Which modules of ``package`` each of its modules imports, at any depth of the file."""
    names = {_module_name(path) for path in modules(package)}
    graph = {}
    for path in modules(package):
        targets = set()
        tree = ast.parse(path.read_text())
        typing_only = _typing_only_imports(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                candidates = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            else:
                continue
            if id(node) in typing_only:
                continue
            targets |= {name for name in candidates if name in names}
        graph[_module_name(path)] = targets - {_module_name(path)}
    return graph


@pytest.mark.parametrize("package", ["forecasting", "db", "flows"])
def test_no_import_cycle_within_a_package(package):
    graph = import_graph(package)
    # A package's __init__ importing its children is not a cycle of theirs.
    graph = {
        name: {t for t in targets if not name.startswith(t + ".")}
        for name, targets in graph.items()
    }
    done, on_path, cycles = set(), [], []

    def visit(name: str) -> None:
        if name in on_path:
            cycles.append([*on_path[on_path.index(name) :], name])
            return
        if name in done:
            return
        on_path.append(name)
        for target in sorted(graph.get(name, ())):
            visit(target)
        on_path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)
    assert cycles == []


def test_forecasting_is_split_by_concern():
    graph = import_graph("forecasting")
    prices = {name for name in graph if name.startswith("forecasting.prices.")}
    monitoring = {name for name in graph if name.startswith("forecasting.monitoring.")}
    assert {"forecasting.prices.sources", "forecasting.prices.yahoo"} <= prices
    assert {"forecasting.monitoring.drift", "forecasting.monitoring.alerting"} <= monitoring
    # Prices know nothing of models or monitoring; monitoring reads no source.
    for name in prices:
        assert not {t for t in graph[name] if t.startswith("forecasting.monitoring")}, name
        assert "forecasting.model" not in graph[name], name
    for name in monitoring:
        assert not {t for t in graph[name] if t.startswith("forecasting.prices")}, name


def test_nothing_below_the_command_line_imports_flows_presentation():
    """flows/presentation (the CLI and its tables) sits on top: the flows, their report and
    their deployments never import it."""
    graph = import_graph("flows")
    offenders = {
        name: sorted(t for t in targets if t.startswith("flows.presentation"))
        for name, targets in graph.items()
        if not name.startswith("flows.presentation")
    }
    assert {name: used for name, used in offenders.items() if used} == {}


def longest_chain(graph: dict[str, set[str]], start: str) -> list[str]:
    """The longest import chain from ``start`` (the graph has no cycle: tested above)."""
    best = [start]
    for target in graph.get(start, ()):
        chain = [start, *longest_chain(graph, target)]
        if len(chain) > len(best):
            best = chain
    return best


def test_import_chains_below_the_command_line_are_at_most_six_modules():
    graph = {
        name: {t for t in targets if not name.startswith(t + ".")}
        for name, targets in import_graph("flows").items()
        if not name.startswith("flows.presentation")
    }
    chains = {name: longest_chain(graph, name) for name in graph}
    deepest = max(chains.values(), key=len)
    assert len(deepest) <= 6, " -> ".join(deepest)


def test_functions_in_flows_fit_on_a_screen_and_forecasting_modules_stay_small():
    """Issue 23's bounds: a flows function reads in one screen (50 lines), a forecasting
    module in one sitting (400)."""
    long_functions = {
        f"{path.relative_to(ROOT)}:{node.name}": node.end_lineno - node.lineno + 1
        for path in modules("flows")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > 50
    }
    assert long_functions == {}
    long_modules = {
        str(path.relative_to(ROOT)): lines
        for path in modules("forecasting")
        if (lines := len(path.read_text().splitlines())) > 400
    }
    assert long_modules == {}


def test_one_tickers_day_is_a_list_of_steps():
    """The flow body of one ticker's day (`forecast_day`) stays at most 30 lines."""
    tree = ast.parse((ROOT / "flows" / "pipeline.py").read_text())
    body = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "forecast_day")
    assert body.end_lineno - body.lineno + 1 <= 30
