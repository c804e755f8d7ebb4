"""case-indexer started while Kafka is away: it waits in place for its topics (CI's outage test saw it exit and be
restarted again and again while Kafka was down, each start failing to make sure of its topics), answers not ready
naming the bus meanwhile, logs once when the bus goes and once when it is back, and then indexes.

Kafka is the real broker. The indexer's bootstrap address is a loopback port where nothing listens at first (a
refused connection, what a stopped broker gives); then a forwarder to the broker listens there. Once bootstrapped, a
client talks to the broker's advertised address directly, so only a start-up outage can be staged this way. The
shared broker itself is never stopped."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
import structlog
from prometheus_client import REGISTRY

from casem.adapters.search import EmbeddedSearch
from casem.app.context import AppContext
from casem.proto_gen.casem.v1 import intake_service_pb2 as pb
from casem.services.case_indexer.indexer import IndexerSettings, log, run_indexer
from casem.services.common.ops import EngineWaits
from casem.topology.tenants import CASE_MANAGEMENT
from tests.intake.stack import TOKEN, case_api_server, intake, intake_server, new_tenant, sqlite_endpoints
from tests.support.bus_outage import StagedBootstrap, holds, until

pytestmark = pytest.mark.kafka


def waited() -> float:
    return REGISTRY.get_sample_value("casem_indexer_messages_total", {"outcome": "waited"}) or 0.0


async def test_indexer_waits_for_kafka_at_start_up_then_indexes(tmp_path: Path) -> None:
    staged = StagedBootstrap()
    bus = staged.bus()
    search = EmbeddedSearch(tmp_path / "search")
    endpoints = sqlite_endpoints(tmp_path)
    fast = replace(IndexerSettings().index_retry, initial_backoff_s=0.02, max_backoff_s=0.2)
    settings = IndexerSettings(session_timeout_s=6.0, index_retry=fast, commit_every=1)
    waits = EngineWaits(log, "case-indexer")
    with case_api_server(endpoints) as live, structlog.testing.capture_logs() as logs:
        context = AppContext.open(endpoints, migrate=False)
        tenant = await new_tenant(context)
        stop = asyncio.Event()
        before = waited()
        indexer = asyncio.create_task(
            run_indexer(
                context, bus, live.address, search=search, token=TOKEN, settings=settings, stop=stop, waits=waits
            )
        )
        try:
            # 1. Kafka away at start-up: the indexer waits for its topics instead of exiting, not ready.
            await until(holds(lambda: waited() - before >= 2), timeout=60)
            assert not indexer.done()
            assert list(await waits.readiness()) == ["bus (waiting)"]

            # 2. Kafka answers: the indexer starts and indexes what arrives.
            await staged.answer()
            await until(holds(lambda: not waits.away), timeout=90)
            async with intake_server(context, bus) as (_, stub):
                batch = [intake(tenant, "k-1", title="disk full on web-1")]
                await stub.SubmitBatch(pb.SubmitBatchRequest(intakes=batch), metadata=tenant.metadata)

            async def indexed() -> bool:
                return len(await search.all_checksums(CASE_MANAGEMENT, tenant.creds.org_id)) == 1

            await until(indexed, timeout=90)
            assert not indexer.done()
            assert await waits.readiness() == {}
        finally:
            stop.set()
            await asyncio.wait_for(indexer, 60)
            await bus.close()
            staged.close()
            await search.close()
            await context.close()
    went = [e for e in logs if e["event"] == "engine unavailable; waiting"]
    came = [e for e in logs if e["event"] == "engine back; resuming"]
    assert [e["engine"] for e in went] == ["bus"], went  # one line for the outage, not one per wait
    assert [e["engine"] for e in came] == ["bus"], came
