"""case-intake: authenticates, validates like the HTTP API, publishes the canonical payload, and answers
only once the bus acknowledged; refuses with a retry hint when the bus cannot take the intake."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from casem.adapters.bus import Message
from casem.adapters.bus.embedded import EmbeddedBus
from casem.app.context import AppContext
from casem.app.intake.payload import IntakePayload
from casem.proto_gen.casem.v1 import intake_service_pb2 as pb
from casem.services.case_intake.publisher import PublisherSettings
from casem.topology.topics import intake_topic
from tests.intake.stack import Tenant, intake, intake_server, new_tenant
from tests.support.bus_harness import drain, quiet


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedBus]:
    # A short busy timeout so the "bus unavailable" test fails fast instead of waiting 30 s.
    b = EmbeddedBus(tmp_path / "bus.db", busy_timeout_s=0.5, heartbeat_interval_s=0.2)
    yield b
    await b.close()


@pytest.fixture
async def tenant(context: AppContext) -> Tenant:  # noqa: F811
    return await new_tenant(context)


async def published(bus: EmbeddedBus, count: int, seconds: float = 10.0) -> list[Message]:
    consumer = bus.consumer("test-reader", [intake_topic().name])
    try:
        got = await drain(consumer, count, timeout=seconds)
        got += await quiet(consumer, 0.3)  # and nothing more
        return got
    finally:
        await consumer.close()


def details(exc: grpc.aio.AioRpcError) -> list[object]:
    status = rpc_status.from_call(exc)
    assert status is not None, "the error carries no google.rpc.Status"
    found: list[object] = []
    for any_detail in status.details:
        for cls in (error_details_pb2.BadRequest, error_details_pb2.RetryInfo, error_details_pb2.ResourceInfo):
            if any_detail.Is(cls.DESCRIPTOR):
                message = cls()
                any_detail.Unpack(message)
                found.append(message)
    return found


async def test_submit_publishes_the_canonical_payload_after_the_ack(
    context: AppContext,  # noqa: F811
    bus: EmbeddedBus,
    tenant: Tenant,
) -> None:
    async with intake_server(context, bus) as (_, stub):
        request = intake(tenant, "alert-1", attributes={"service": {"values": ["web-store"]}})
        response = await stub.Submit(request, metadata=tenant.metadata)
    assert response.intake_key == "alert-1"
    [message] = await published(bus, 1)
    assert (message.partition, message.offset) == (response.partition, response.offset)
    assert message.key == f"{tenant.creds.org_id}/alert-1".encode()
    body = json.loads(message.value)
    assert body["schema_version"] == 1
    assert (body["org_id"], body["user_id"]) == (tenant.creds.org_id, tenant.creds.user_id)
    payload = IntakePayload.from_bytes(message.value)
    assert payload.intake == request  # lossless round trip of the CaseIntake


@pytest.mark.parametrize(
    ("fields", "pointer", "text"),
    [
        ({"title": "  "}, "/title", "title must be a non-empty string"),
        ({"title": "x" * 256}, "/title", "title is 256 characters long; the limit is 255"),
        ({"description": "d" * 30_001}, "/description", "the limit is 30000"),
        ({"intake_key": ""}, "/intake_key", "intake_key"),
        ({"schema_version": 7}, "/schema_version", "unknown intake schema_version 7"),
        ({"priority": 42}, "/priority", "unknown case priority 42"),
        ({"project_id": "nope"}, "/project_id", "is not a valid UUID"),
        ({"custom_attributes": {"sev": 1}}, "/custom_attributes/sev", "not configured for this case type"),
    ],
)
async def test_invalid_intakes_get_the_api_message_and_nothing_is_published(
    context: AppContext,  # noqa: F811
    bus: EmbeddedBus,
    tenant: Tenant,
    fields: dict[str, object],
    pointer: str,
    text: str,
) -> None:
    async with intake_server(context, bus) as (_, stub):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Submit(intake(tenant, **fields), metadata=tenant.metadata)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert text in caught.value.details()
    [bad_request] = details(caught.value)
    assert isinstance(bad_request, error_details_pb2.BadRequest)
    assert bad_request.field_violations[0].field == pointer
    assert await published(bus, 1, seconds=0.5) == []


async def test_unknown_project_and_bad_keys_are_refused(
    context: AppContext,  # noqa: F811
    bus: EmbeddedBus,
    tenant: Tenant,
) -> None:
    other = await new_tenant(context)
    async with intake_server(context, bus) as (_, stub):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            # Another org's project does not exist for this org.
            await stub.Submit(intake(tenant, project_id=other.project_id), metadata=tenant.metadata)
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Submit(intake(tenant))
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Submit(intake(tenant), metadata=(("dd-api-key", "x"), ("dd-application-key", "y")))
        assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert await published(bus, 1, seconds=0.5) == []


async def test_batch_is_all_or_nothing_and_names_the_bad_item(
    context: AppContext,  # noqa: F811
    bus: EmbeddedBus,
    tenant: Tenant,
) -> None:
    async with intake_server(context, bus) as (_, stub):
        bad = pb.SubmitBatchRequest(intakes=[intake(tenant, "b-0"), intake(tenant, "b-1", title="")])
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SubmitBatch(bad, metadata=tenant.metadata)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        [bad_request] = details(caught.value)
        assert bad_request.field_violations[0].field == "/intakes/1/title"  # type: ignore[attr-defined]
        twice = pb.SubmitBatchRequest(intakes=[intake(tenant, "same"), intake(tenant, "same")])
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SubmitBatch(twice, metadata=tenant.metadata)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert await published(bus, 1, seconds=0.5) == []

        good = pb.SubmitBatchRequest(intakes=[intake(tenant, f"g-{i}") for i in range(5)])
        response = await stub.SubmitBatch(good, metadata=tenant.metadata)
    assert [a.intake_key for a in response.accepted] == [f"g-{i}" for i in range(5)]
    messages = await published(bus, 5)
    assert sorted(IntakePayload.from_bytes(m.value).intake.intake_key for m in messages) == [f"g-{i}" for i in range(5)]
    by_key = {IntakePayload.from_bytes(m.value).intake.intake_key: (m.partition, m.offset) for m in messages}
    assert all(by_key[a.intake_key] == (a.partition, a.offset) for a in response.accepted)


async def test_bus_unavailable_is_unavailable_with_retry_info_then_recovers(
    context: AppContext,  # noqa: F811
    bus: EmbeddedBus,
    tenant: Tenant,
) -> None:
    async with intake_server(context, bus) as (_, stub):
        blocker = sqlite3.connect(bus.path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # the bus file is locked: writes time out
        try:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Submit(intake(tenant, "during-outage"), metadata=tenant.metadata)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        [retry] = details(caught.value)
        assert isinstance(retry, error_details_pb2.RetryInfo)
        assert retry.retry_delay.seconds >= 1
        # The client retries with the same key once the bus is back.
        await stub.Submit(intake(tenant, "during-outage"), metadata=tenant.metadata)
    [message] = await published(bus, 1)
    assert IntakePayload.from_bytes(message.value).intake.intake_key == "during-outage"


async def test_too_many_in_flight_is_resource_exhausted(
    context: AppContext,  # noqa: F811
    bus: EmbeddedBus,
    tenant: Tenant,
) -> None:
    async with intake_server(context, bus, PublisherSettings(max_pending=3)) as (_, stub):
        request = pb.SubmitBatchRequest(intakes=[intake(tenant, f"k-{i}") for i in range(4)])
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.SubmitBatch(request, metadata=tenant.metadata)
        assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert any(isinstance(d, error_details_pb2.RetryInfo) for d in details(caught.value))
        await stub.SubmitBatch(pb.SubmitBatchRequest(intakes=request.intakes[:3]), metadata=tenant.metadata)
    assert len(await published(bus, 3)) == 3


async def test_health_and_reflection(context: AppContext, bus: EmbeddedBus) -> None:  # noqa: F811
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    async with intake_server(context, bus) as (server, _), grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        health = health_pb2_grpc.HealthStub(ch)
        reply = await health.Check(health_pb2.HealthCheckRequest(service="casem.v1.CaseIntakeService"))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(ch)
        names: list[str] = []
        requests = iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        async for answer in reflect.ServerReflectionInfo(requests):
            names += [s.name for s in answer.list_services_response.service]
        assert "casem.v1.CaseIntakeService" in names
