from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from casem.app.context import AppContext
from tests.bus.conftest import Harness, harness  # noqa: F401 - the bus adapters' fixture, reused here
from tests.support.databases import tenant_endpoints


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def context(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AppContext]:
    with tenant_endpoints(request.param, tmp_path) as endpoints:
        ctx = AppContext.open(endpoints)
        try:
            yield ctx
        finally:
            await ctx.close()


__all__ = ["Harness"]
