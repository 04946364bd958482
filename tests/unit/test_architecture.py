"""Dependencies point inward (STYLE.md rule 1), and each layer of `api/` keeps to its own."""

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STDLIB = set(sys.stdlib_module_names)
PACKAGES = ("domain", "adapters", "projections", "api")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: str) -> Iterator[tuple[str, ast.Module]]:
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        yield module_name(path), ast.parse(path.read_text())


def imported(tree: ast.Module, *, top_level_only: bool = False) -> set[str]:
    """Every module a file imports (full dotted names), at any depth unless told otherwise."""
    found: set[str] = set()
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def imports(package: str) -> set[tuple[str, str]]:
    """(module, imported module) pairs of one package."""
    return {(name, target) for name, tree in modules(package) for target in imported(tree)}


def under(target: str, *prefixes: str) -> bool:
    return any(target == p or target.startswith(p + ".") for p in prefixes)


def test_the_domain_imports_only_the_standard_library_and_eventsourcing() -> None:
    allowed = STDLIB | {"eventsourcing", "domain", "__future__"}
    assert {(f, m) for f, m in imports("domain") if m.split(".")[0] not in allowed} == set()


def test_adapters_projections_and_the_domain_never_import_the_api() -> None:
    for package in ("adapters", "projections", "domain"):
        assert {(f, m) for f, m in imports(package) if under(m, "api")} == set()


def test_the_domain_never_imports_adapters_or_projections() -> None:
    assert {(f, m) for f, m in imports("domain") if under(m, "adapters", "projections")} == set()


def test_adapters_never_import_projections() -> None:
    assert {(f, m) for f, m in imports("adapters") if under(m, "projections")} == set()


def test_use_cases_import_no_delivery_mechanism() -> None:
    delivery = ("api.http", "api.cli", "api.bootstrap", "litestar", "argparse", "click", "rich")
    delivery += ("uvicorn", "httpx", "starlette")
    assert {(f, m) for f, m in imports("api.usecases") if under(m, *delivery)} == set()


# Use cases that still reach adapters directly rather than through ports (api/usecases/ports.py);
# the list only shrinks.
ADAPTERS_NOT_YET_BEHIND_PORTS = {
    "api.usecases.access_tokens",
    "api.usecases.analytics",
    "api.usecases.client_admin",
    "api.usecases.issuance",
    "api.usecases.ledger_proofs",
    "api.usecases.projection_rebuild",
    "api.usecases.projection_status",
    "api.usecases.revocation",
    "api.usecases.signing_keys",
}


def test_use_cases_reach_adapters_only_through_ports() -> None:
    reaching = {f for f, m in imports("api.usecases") if under(m, "adapters")}
    assert reaching - ADAPTERS_NOT_YET_BEHIND_PORTS == set()


def test_http_and_cli_never_import_each_other() -> None:
    assert {(f, m) for f, m in imports("api.http") if under(m, "api.cli")} == set()
    assert {(f, m) for f, m in imports("api.cli") if under(m, "api.http")} == set()


def test_no_module_imports_itself_back_through_others() -> None:
    """No import cycle between the project's modules (top-level imports, as Python runs them)."""
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for name, tree in modules(package):
            graph[name] = set()
            for target in imported(tree, top_level_only=True):
                graph[name].add(target)
    known = set(graph)
    edges = {m: {t for t in targets if t in known and t != m} for m, targets in graph.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    # A package's __init__ that only hands names on is no cycle; none exist today.
    assert cycles == []
