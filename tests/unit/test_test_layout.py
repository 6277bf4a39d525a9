"""The suite's own layout: helpers live in helper modules, so no test module imports another (a
test module imported elsewhere runs its fixtures and collection twice, and hides what it shares)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_test_module_imports_another():
    offenders = {f"{path.relative_to(TESTS)} imports {module}"
                 for path in TESTS.rglob("test_*.py") for module in imported_modules(path)
                 if module.startswith("tests.") and module.rsplit(".", 1)[-1].startswith("test_")}
    assert offenders == set()
