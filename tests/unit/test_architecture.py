"""Dependencies point inward (STYLE.md rule 1)."""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STDLIB = set(sys.stdlib_module_names)


def imports(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {(path.name, alias.name.split(".")[0]) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((path.name, node.module.split(".")[0]))
    return found


def test_the_domain_imports_only_the_standard_library_and_eventsourcing() -> None:
    allowed = STDLIB | {"eventsourcing", "domain", "__future__"}
    assert {(f, m) for f, m in imports("domain") if m not in allowed} == set()


def test_adapters_and_projections_never_import_the_api() -> None:
    for package in ("adapters", "projections", "domain"):
        assert {(f, m) for f, m in imports(package) if m == "api"} == set()


def test_the_domain_never_imports_adapters_or_projections() -> None:
    assert {(f, m) for f, m in imports("domain") if m in ("adapters", "projections")} == set()
