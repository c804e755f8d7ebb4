"""case-indexer while the search engine is away: it waits in place instead of exiting (CI's outage test saw it
restarted 12 times during an OpenSearch outage), commits nothing past what it has not written, answers not ready
meanwhile, logs once when the engine goes and once when it is back, and then indexes everything.

The engine is the real OpenSearch node. Between it and the indexer's client sits a gate (an httpx transport): open,
it forwards to the node; shut, it sends each request to a loopback port nothing listens on, so the client meets
what a stopped node gives it, a refused connection. The shared node itself is never stopped."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import structlog
from prometheus_client import REGISTRY

from casem.adapters.bus import Consumer, TopicPartition
from casem.adapters.bus.embedded import EmbeddedBus
from casem.adapters.search import OpenSearchSearch
from casem.app.context import AppContext
from casem.proto_gen.casem.v1 import intake_service_pb2 as pb
from casem.services.case_indexer.indexer import GROUP, IndexerSettings, log, run_indexer
from casem.services.common.ops import EngineWaits
from casem.topology.tenants import CASE_MANAGEMENT
from casem.topology.topics import intake_topic
from tests.backends import engine_address
from tests.intake.stack import TOKEN, case_api_server, intake, intake_server, new_tenant, sqlite_endpoints
from tests.support.bus_harness import closed_port

pytestmark = pytest.mark.opensearch


class Gate(httpx.AsyncBaseTransport):
    """Open: requests reach the node. Shut: they go to a closed loopback port (connection refused)."""

    def __init__(self) -> None:
        self.transport = httpx.AsyncHTTPTransport()
        self.dead_end = f"127.0.0.1:{closed_port()}"
        self.open = False
        self.refused = 0  # requests turned away while shut

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self.open:
            self.refused += 1
            host, port = self.dead_end.split(":")
            request.url = request.url.copy_with(host=host, port=int(port))
        return await self.transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self.transport.aclose()


async def until(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def waited() -> float:
    return REGISTRY.get_sample_value("casem_indexer_messages_total", {"outcome": "waited"}) or 0.0


async def test_indexer_waits_for_the_search_engine_then_indexes_everything(tmp_path: Path) -> None:
    url = engine_address("opensearch").rstrip("/")
    prefix = f"t{uuid.uuid4().hex[:12]}-"
    gate = Gate()
    search = OpenSearchSearch(url, index_prefix=prefix, client=httpx.AsyncClient(base_url=url, transport=gate))
    direct = OpenSearchSearch(url, index_prefix=prefix)  # the test's own view of the node, past the gate
    endpoints = sqlite_endpoints(tmp_path)
    fast = replace(IndexerSettings().index_retry, initial_backoff_s=0.02, max_backoff_s=0.1)
    settings = IndexerSettings(session_timeout_s=2.0, index_retry=fast, commit_every=1)
    waits = EngineWaits(log, "case-indexer")
    with case_api_server(endpoints) as live, structlog.testing.capture_logs() as logs:
        context = AppContext.open(endpoints, migrate=False)
        bus = EmbeddedBus(tmp_path / "bus.db", heartbeat_interval_s=0.2)
        tenant = await new_tenant(context)
        stop = asyncio.Event()
        indexer = asyncio.create_task(
            run_indexer(
                context, bus, live.address, search=search, token=TOKEN, settings=settings, stop=stop, waits=waits
            )
        )
        peek = bus.consumer(GROUP, [])  # never polls, so never joins: it only reads the group's offsets
        partitions = [TopicPartition(intake_topic().name, p) for p in range(intake_topic().partitions)]
        try:
            # 1. Away at start-up: the index cannot even be made sure of. The indexer waits, not ready.
            before = waited()
            await until(lambda: _true(waited() - before >= 5))
            assert not indexer.done()
            assert list(await waits.readiness()) == ["search (waiting)"]

            # 2. Back: it starts; then away again while intakes arrive.
            gate.open = True
            await until(lambda: _true(not waits.away))
            gate.open = False
            async with intake_server(context, bus) as (_, stub):
                batch = [intake(tenant, f"k-{i}", title=f"disk full on web-{i}") for i in range(10)]
                await stub.SubmitBatch(pb.SubmitBatchRequest(intakes=batch), metadata=tenant.metadata)
            before = waited()
            await until(lambda: _true(waited() - before >= 5))
            assert not indexer.done()
            assert "search (waiting)" in await waits.readiness()
            committed = await _committed(peek, partitions)
            assert committed == 0, "offsets moved past intakes whose documents are not written"

            # 3. Back again: everything is indexed once and committed; ready.
            gate.open = True

            async def indexed() -> bool:
                return len(await direct.all_checksums(CASE_MANAGEMENT, tenant.creds.org_id)) == 10

            await until(indexed)
            await until(lambda: _true(not waits.away))
            assert await waits.readiness() == {}

            async def all_committed() -> bool:
                return await _committed(peek, partitions) == 10

            await until(all_committed)
            assert not indexer.done()
        finally:
            stop.set()
            await asyncio.wait_for(indexer, 30)
            await peek.close()
            await direct.drop(CASE_MANAGEMENT)
            await direct.close()
            await search.close()
            await bus.close()
            await context.close()
    assert gate.refused >= 10
    # Two outages, many waits: one line when the engine went and one when it came back, each time.
    went = [e for e in logs if e["event"] == "engine unavailable; waiting"]
    came = [e for e in logs if e["event"] == "engine back; resuming"]
    assert [e["engine"] for e in went] == ["search", "search"], went
    assert [e["engine"] for e in came] == ["search", "search"], came


async def _true(value: bool) -> bool:
    return value


async def _committed(peek: Consumer, partitions: list[TopicPartition]) -> int:
    """How many intake messages the indexer's group has committed past (offsets start at 0 on a new bus)."""
    return sum(offset or 0 for offset in (await peek.committed(partitions)).values())
