"""The test tree's layout: no file under tests/ imports a conftest module.

A conftest belongs to its directory; what several suites share lives in tests/support (helpers) and
tests/support/fixtures (fixtures registered once by tests/conftest.py). Importing another suite's conftest
registers its fixtures a second time under the importer and hides where they come from."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def _package_of(path: Path) -> list[str]:
    """The dotted package a file under tests/ belongs to, e.g. tests/bus/test_x.py -> ["tests", "bus"]."""
    return ["tests", *path.relative_to(TESTS).parent.parts]


def _imported_modules(tree: ast.AST, package: list[str]) -> list[tuple[int, str]]:
    """Every module an import statement names, absolute, with its line (relative imports resolved against
    `package`; `from a import b` counts as importing both a and a.b, since b may be a module)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return found


def conftest_imports(source: str, package: list[str]) -> list[str]:
    """`line: module` for each conftest module `source` imports (once per statement)."""
    hits: dict[str, None] = {}
    for line, module in _imported_modules(ast.parse(source), package):
        parts = module.split(".")
        if "conftest" in parts:
            hits[f"{line}: {'.'.join(parts[: parts.index('conftest') + 1])}"] = None
    return list(hits)


def test_no_file_under_tests_imports_a_conftest() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        for hit in conftest_imports(path.read_text(), _package_of(path)):
            offenders.append(f"{path.relative_to(TESTS.parent)}:{hit}")
    assert not offenders, (
        "import helpers from tests.support.* and let tests/conftest.py register shared fixtures "
        "(pytest_plugins) instead of importing a conftest:\n" + "\n".join(offenders)
    )


@pytest.mark.parametrize(
    "source",
    [
        "from tests.bus.conftest import Harness",
        "from tests.api.conftest import server as server  # noqa: F401",
        "import tests.relay.conftest",
        "from tests.grpc import conftest",
        "from .conftest import World",
        "from . import conftest",
        "from ..bus.conftest import drain",
        "def helper():\n    from tests.api.conftest import client_for\n    return client_for",
    ],
)
def test_the_check_finds_each_way_of_importing_a_conftest(source: str) -> None:
    assert conftest_imports(source, ["tests", "caseworker"])


@pytest.mark.parametrize(
    "source",
    [
        "from tests.support.bus_harness import Harness",
        "from tests.support.fixtures import bus",
        "import tests.support.api_client",
        "from . import helpers",
        "conftest = 'a string, not an import'",
    ],
)
def test_the_check_leaves_other_imports_alone(source: str) -> None:
    assert conftest_imports(source, ["tests", "caseworker"]) == []
