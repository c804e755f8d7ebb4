from __future__ import annotations

import os

import pytest

# The helpers that moved out of the suites' conftest files keep pytest's assertion messages.
pytest.register_assert_rewrite("tests.support")

from cryptography.fernet import Fernet  # noqa: E402

from tests.backends import ENGINES, required  # noqa: E402

# Fixtures more than one suite uses, registered once here (pytest reads pytest_plugins in the root conftest only).
# A suite never imports another suite's conftest.py: tests/test_test_layout.py fails if one does.
pytest_plugins = [
    "tests.support.fixtures.bus",
    "tests.support.fixtures.case_api",
    "tests.support.fixtures.doorbells",
    "tests.support.fixtures.search",
    "tests.support.fixtures.tenants",
]

# One key seals and opens stored secrets for the whole run (API, handlers and the processes they start),
# instead of a key file made under ./var on first use.
os.environ.setdefault("CASEM_SECRET_KEYS", Fernet.generate_key().decode())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In CI, a required engine's suite must have collected tests: an empty suite is a failure."""
    for engine in ENGINES:
        if required(engine) and not any(item.get_closest_marker(engine) for item in items):
            if config.getoption("-k") or config.getoption("-m"):
                continue  # a filtered run is not the whole suite
            raise pytest.UsageError(f"CASEM_REQUIRE_{engine.upper()}=1 but no test is marked @pytest.mark.{engine}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The outage test's counts (writes acknowledged, present, lost) in every run's output, passed or not."""
    for report in terminalreporter.getreports("passed") + terminalreporter.getreports("failed"):
        for name, value in getattr(report, "user_properties", ()):
            if name == "outage_report":
                terminalreporter.write_sep("-", "engine outages")
                terminalreporter.write_line(str(value))
