"""The gRPC server around CaseAPI: health, reflection, graceful shutdown, and the committed generated code."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from casem.adapters.storage.database import open_tenant_database
from casem.app.context import AppContext
from casem.services.case_api.grpc.server import create_server
from casem.services.common.grpc_errors import request_pointer
from casem.topology.tenants import TENANTS, DatabaseEndpoints
from tests.support.grpc_case_api import GrpcLiveServer
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def test_health_is_serving_per_service_name(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "casem.v1.CaseAPI"):
        assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == SERVING
    with pytest.raises(grpc.RpcError) as caught:
        health.Check(health_pb2.HealthCheckRequest(service="casem.v1.Nope"))
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_health_is_not_serving_while_a_database_does_not_answer() -> None:
    # Nothing listens on port 1: the tenant databases cannot answer.
    dead = DatabaseEndpoints(master="postgresql+psycopg://casem:casem@127.0.0.1:1/casem")
    context = AppContext(databases={t.name: open_tenant_database(t.name, dead) for t in TENANTS})
    live = GrpcLiveServer(context).start()
    try:
        with grpc.insecure_channel(live.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for name in ("", "casem.v1.CaseAPI"):
                assert health.Check(health_pb2.HealthCheckRequest(service=name), timeout=30).status == NOT_SERVING
    finally:
        live.stop()


def test_reflection_lists_the_services(channel: grpc.Channel) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (response,) = list(reflection.ServerReflectionInfo(iter([request])))
    names = {s.name for s in response.list_services_response.service}
    assert {"casem.v1.CaseAPI", "grpc.health.v1.Health"} <= names

    # A client can fetch the schema itself (grpcurl's describe).
    by_symbol = reflection_pb2.ServerReflectionRequest(file_containing_symbol="casem.v1.CaseAPI")
    (described,) = list(reflection.ServerReflectionInfo(iter([by_symbol])))
    assert described.file_descriptor_response.file_descriptor_proto


async def test_create_server_serves_until_stopped(tmp_path: Path) -> None:
    """The lead's entry point, in the test's own event loop, as case-api runs it beside the HTTP server."""
    endpoints = {t.name: DatabaseEndpoints(master=f"sqlite+aiosqlite:///{tmp_path / t.name}.db") for t in TENANTS}
    context = AppContext.open(endpoints)
    port = free_port()
    server = create_server(context, f"127.0.0.1:{port}")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            assert (await health.Check(health_pb2.HealthCheckRequest(service="casem.v1.CaseAPI"))).status == SERVING
            await asyncio.wait_for(server.stop(1.0), timeout=10)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(None)
        await context.close()


@pytest.mark.parametrize(
    ("pointer", "field"),
    [
        ("/data/attributes/title", "/title"),
        ("/data/attributes/status_name", "/status"),
        ("/data/attributes/custom_attributes/severity", "/custom_attributes/severity"),
        ("/data/relationships/project/data", "/project_id"),
        ("/data/relationships/assignee", "/assignee_id"),
        ("/data/attributes/comment", "/message"),
        ("/schema_version", "/schema_version"),
        (None, ""),
    ],
)
def test_service_pointers_become_request_fields(pointer: str | None, field: str) -> None:
    assert request_pointer(pointer) == field


def test_committed_generated_code_matches_a_fresh_generation(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "scripts" / "gen_proto.py")
    assert spec is not None and spec.loader is not None
    gen_proto = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_proto)

    fresh_root = tmp_path / "proto_gen"
    fresh = {p.relative_to(fresh_root): p.read_text() for p in gen_proto.generate(fresh_root)}
    committed_root = ROOT / "casem" / "proto_gen"
    committed = {
        p.relative_to(committed_root): p.read_text()
        for p in committed_root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert sorted(committed) == sorted(fresh), "run: python scripts/gen_proto.py"
    stale = [str(path) for path, text in fresh.items() if committed[path] != text]
    assert not stale, f"casem/proto_gen is out of date ({', '.join(stale)}): run python scripts/gen_proto.py"
