from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.processes import RUNNING


@pytest.fixture(autouse=True)
def _no_command_outlives_its_test() -> Iterator[None]:
    yield
    while RUNNING:
        RUNNING.pop().kill()
