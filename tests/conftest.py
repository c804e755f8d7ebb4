from __future__ import annotations

import os

import pytest
from cryptography.fernet import Fernet

from tests.backends import ENGINES, required

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
