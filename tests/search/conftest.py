"""The search port under test: every contract test runs once per adapter."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from casem.adapters.search import EmbeddedSearch, OpenSearchSearch, SearchPort
from casem.topology.tenants import TENANTS
from tests.backends import engine_address


@pytest.fixture(params=["embedded", pytest.param("opensearch", marks=pytest.mark.opensearch)])
async def port(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SearchPort]:
    adapter: SearchPort
    if request.param == "embedded":
        adapter = EmbeddedSearch(tmp_path)
    else:
        # A prefix of its own per test: xdist workers share the one node.
        adapter = OpenSearchSearch(engine_address("opensearch"), index_prefix=f"t{uuid.uuid4().hex[:12]}-")
    try:
        yield adapter
    finally:
        for t in TENANTS:
            await adapter.drop(t.name)
        await adapter.close()
