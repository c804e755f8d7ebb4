"""case-indexer end to end: case-intake -> bus -> indexer -> case-api IngestCase -> search index."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from prometheus_client import REGISTRY

from casem.adapters.bus import OutgoingMessage, TopicPartition
from casem.adapters.bus.embedded import EmbeddedBus
from casem.adapters.search import EmbeddedSearch
from casem.app.context import AppContext
from casem.app.intake.payload import IntakePayload
from casem.app.internal_auth import internal_metadata
from casem.app.search.maintenance import verify_tenant
from casem.app.search.service import search_cases
from casem.domain.cases import STANDARD_TYPE_NAME
from casem.proto_gen.casem.v1 import case_api_pb2_grpc, intake_pb2
from casem.proto_gen.casem.v1 import intake_service_pb2 as pb
from casem.services.case_indexer.indexer import (
    GROUP,
    Indexer,
    IndexerSettings,
    build_processor,
    dead_letter_topic,
    run_indexer,
)
from casem.topology.tenants import CASE_MANAGEMENT
from casem.topology.topics import intake_topic
from tests.intake.stack import TOKEN, case_api_server, intake, intake_server, new_tenant, sqlite_endpoints
from tests.support.bus_harness import closed_port, drain
from tests.support.outbox import envelopes_after


async def wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def test_intakes_become_searchable_once_each(tmp_path: Path) -> None:
    endpoints = sqlite_endpoints(tmp_path)
    with case_api_server(endpoints) as live:
        context = AppContext.open(endpoints, migrate=False)
        bus = EmbeddedBus(tmp_path / "bus.db", heartbeat_interval_s=0.2)
        search = EmbeddedSearch(tmp_path / "search")
        tenant = await new_tenant(context)
        stop = asyncio.Event()
        settings = IndexerSettings(session_timeout_s=2.0)
        stages_before = _stage_figures()
        outcomes_before = _outcomes()
        indexer = asyncio.create_task(
            run_indexer(context, bus, live.address, search=search, token=TOKEN, settings=settings, stop=stop)
        )
        try:
            async with intake_server(context, bus) as (_, stub):
                batch = [intake(tenant, f"k-{i}", title=f"disk full on web-{i}") for i in range(12)]
                await stub.SubmitBatch(pb.SubmitBatchRequest(intakes=batch), metadata=tenant.metadata)
                for request in batch[:3]:  # a producer retrying: same keys, no new cases
                    await stub.Submit(request, metadata=tenant.metadata)
                producer = bus.producer()
                await producer.publish(intake_topic().name, b"junk", b"not json")  # dead-lettered, not blocking
                await producer.close()

            async def indexed() -> bool:
                return len(await search.all_checksums(CASE_MANAGEMENT, tenant.creds.org_id)) == 12

            await wait_for(indexed)
            report = await verify_tenant(context, search, CASE_MANAGEMENT, tenant.creds.org_id)
            assert report.ok, report
            # Searchable with no search-indexing flavor running (none does here), and each creation says so: the
            # flavor leaves these documents to the indexer.
            created = [
                e
                for e in await envelopes_after(context, 0)
                if e["type"] == "com.casem.case.created.v1" and e["orgid"] == tenant.creds.org_id
            ]
            assert len(created) == 12
            assert all(e["data"]["indexed_by_creator"] is True for e in created)
            ids, total = await search_cases(search, CASE_MANAGEMENT, tenant.creds.org_id, "web-7")
            assert total == 1
            doc = await search.get(CASE_MANAGEMENT, tenant.creds.org_id, ids[0])
            assert doc is not None
            assert doc["project_key"] == tenant.project_key
            assert doc["type_name"] == STANDARD_TYPE_NAME
            assert doc["key"].startswith(tenant.project_key + "-")
            assert doc["created_by_id"] == tenant.creds.user_id  # created as the user who submitted it
            dlq = bus.consumer("test-dlq", [dead_letter_topic()])
            [dead] = await drain(dlq, 1)
            await dlq.close()
            assert dead.value == b"not json"
            assert dict(dead.headers)["dlq_error"].startswith(b"not a case-intake payload")

            # Each stage counted what went through it (15 intakes: 12 and 3 retried; the junk never reached one),
            # in batches it timed: what bench/intake_e2e.py reads to name the slowest stage. Only the 3 retried
            # intakes' cases are read: IngestCases gave the document of each case it created.
            async def counted() -> bool:
                grown = _grown(stages_before, _stage_figures())
                return grown["ingest"][0] == 15 and grown["read"][0] == 3

            await wait_for(counted)
            grown = _grown(stages_before, _stage_figures())
            assert 12 <= grown["write"][0] <= 15  # a document is written once per batch it is in
            assert all(batches >= 1 and seconds > 0 for _, batches, seconds in grown.values()), grown
            # And by outcome: 12 cases created, the 3 retried intakes found theirs.
            assert {k: v - outcomes_before[k] for k, v in _outcomes().items()} == {"created": 12, "existing": 3}
        finally:
            stop.set()
            await asyncio.wait_for(indexer, 30)
            await search.close()
            await bus.close()
            await context.close()


STAGES = ("ingest", "read", "write")


def _outcomes() -> dict[str, float]:
    """Intakes so far whose case IngestCases created, and those whose case it found (by intake key)."""
    return {
        outcome: REGISTRY.get_sample_value("casem_indexer_messages_total", {"outcome": outcome}) or 0.0
        for outcome in ("created", "existing")
    }


def _stage_figures() -> dict[str, tuple[float, float, float]]:
    """Per indexer stage: (items, batches, seconds) so far, from the process's metrics."""

    def value(name: str, stage: str) -> float:
        return REGISTRY.get_sample_value(name, {"stage": stage}) or 0.0

    return {
        stage: (
            value("casem_indexer_stage_items_total", stage),
            value("casem_indexer_stage_seconds_count", stage),
            value("casem_indexer_stage_seconds_sum", stage),
        )
        for stage in STAGES
    }


def _grown(
    before: dict[str, tuple[float, float, float]], after: dict[str, tuple[float, float, float]]
) -> dict[str, tuple[float, float, float]]:
    return {stage: tuple(a - b for a, b in zip(after[stage], before[stage], strict=True)) for stage in STAGES}  # type: ignore[misc]


async def test_service_credential_acts_only_as_real_users_of_the_org(tmp_path: Path) -> None:
    endpoints = sqlite_endpoints(tmp_path)
    with case_api_server(endpoints) as live:
        context = AppContext.open(endpoints, migrate=False)
        try:
            tenant, other = await new_tenant(context), await new_tenant(context)
        finally:
            await context.close()
        async with grpc.aio.insecure_channel(live.address) as channel:
            stub = case_api_pb2_grpc.CaseAPIStub(channel)
            org, user = tenant.creds.org_id, tenant.creds.user_id
            created = await stub.IngestCase(intake(tenant, "svc-1"), metadata=internal_metadata(TOKEN, org, user))
            assert created.created and created.case.created_by_id == user
            again = await stub.IngestCase(intake(tenant, "svc-1"), metadata=internal_metadata(TOKEN, org, user))
            assert not again.created and again.case.id == created.case.id  # idempotent by intake key
            for metadata in (
                internal_metadata("wrong-token", org, user),
                internal_metadata(TOKEN, org, other.creds.user_id),  # a user of another org
                internal_metadata(TOKEN, org, ""),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.IngestCase(intake(tenant, "svc-2"), metadata=metadata)
                assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_ingest_retries_while_case_api_is_unreachable_then_stops_without_committing(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path / "bus.db", heartbeat_interval_s=0.2)
    topic = intake_topic().name
    await bus.ensure_topic(topic, 1)
    await bus.ensure_topic(dead_letter_topic(), 1)
    producer = bus.producer()
    payload = IntakePayload.new("org-1", "user-1", intake_pb2.CaseIntake(intake_key="k-1", title="disk full"))
    await producer.publish(topic, payload.key, payload.to_bytes())
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{closed_port()}")  # case-api is down
    fast = replace(IndexerSettings().ingest_retry, initial_backoff_s=0.01, max_backoff_s=0.05)
    settings = IndexerSettings(ingest_retry=fast, rpc_timeout_s=2.0)
    # No case is ever ingested here, so the database and the search index are never reached.
    indexer = Indexer(case_api_pb2_grpc.CaseAPIStub(channel), None, None, producer, TOKEN, settings)  # type: ignore[arg-type]
    consumer = bus.consumer(GROUP, [topic])
    processor = build_processor(indexer, consumer)
    retried = REGISTRY.get_sample_value("casem_indexer_messages_total", {"outcome": "retried"}) or 0
    task = asyncio.create_task(processor.run())
    try:

        async def retrying() -> bool:
            now = REGISTRY.get_sample_value("casem_indexer_messages_total", {"outcome": "retried"}) or 0
            return now - retried >= 5

        await wait_for(retrying, timeout=30)  # UNAVAILABLE is retried, not dead-lettered
        assert not task.done()
        indexer.stop()
        processor.stop()
        with pytest.raises(grpc.aio.AioRpcError) as stopped:
            await asyncio.wait_for(task, 10)
        assert stopped.value.code() is grpc.StatusCode.UNAVAILABLE
        tp = TopicPartition(topic, 0)
        assert await consumer.committed([tp]) == {tp: None}  # left for the next owner
        dlq = bus.consumer("test-dlq", [dead_letter_topic()])
        assert await drain(dlq, 1, timeout=2) == []
        await dlq.close()
    finally:
        await consumer.close()
        await producer.close()
        await channel.close()
        await bus.close()


async def test_an_intake_case_api_refuses_with_its_batch_is_dead_lettered_alone(tmp_path: Path) -> None:
    """case-api refuses a whole IngestCases call holding a NUL character anywhere: the indexer sends that batch
    again item by item, so the good intakes published beside the bad one still become cases."""
    endpoints = sqlite_endpoints(tmp_path)
    with case_api_server(endpoints) as live:
        context = AppContext.open(endpoints, migrate=False)
        bus = EmbeddedBus(tmp_path / "bus.db", heartbeat_interval_s=0.2)
        search = EmbeddedSearch(tmp_path / "search")
        tenant = await new_tenant(context)
        await bus.ensure_topic(intake_topic().name, intake_topic().partitions)
        await search.ensure_index(CASE_MANAGEMENT)
        org, user = tenant.creds.org_id, tenant.creds.user_id
        accepted = datetime.now(UTC).isoformat()
        payloads = [
            IntakePayload(org, user, intake(tenant, f"good-{i}", title=f"good {i}"), accepted) for i in range(6)
        ]
        payloads.insert(3, IntakePayload(org, user, intake(tenant, "bad", title="nul \x00 inside"), accepted))
        producer = bus.producer()
        await producer.publish_batch(
            [OutgoingMessage(intake_topic().name, b"same-key", p.to_bytes()) for p in payloads]  # one partition
        )
        await producer.close()
        stop = asyncio.Event()
        indexer = asyncio.create_task(
            run_indexer(context, bus, live.address, search=search, token=TOKEN, settings=IndexerSettings(), stop=stop)
        )
        try:

            async def indexed() -> bool:
                return len(await search.all_checksums(CASE_MANAGEMENT, org)) == 6

            await wait_for(indexed)
            dlq = bus.consumer("test-dlq", [dead_letter_topic()])
            [dead] = await drain(dlq, 1)
            await dlq.close()
            assert IntakePayload.from_bytes(dead.value).intake.intake_key == "bad"
            assert dict(dead.headers)["dlq_error"].startswith(b"INVALID_ARGUMENT")
        finally:
            stop.set()
            await asyncio.wait_for(indexer, 30)
            await search.close()
            await bus.close()
            await context.close()
