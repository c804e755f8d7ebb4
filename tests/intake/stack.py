"""A real casem pipeline for the intake and indexer suites: tenant databases, a live case-api gRPC
server (accepting the service credential), the embedded bus, and a case-intake server on this loop."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from casem.adapters.bus.embedded import EmbeddedBus
from casem.app.context import AppContext
from casem.app.identity.service import BootstrapCredentials, bootstrap_org
from casem.app.internal_auth import INTERNAL_TOKEN_ENV
from casem.app.projects.service import create_project
from casem.proto_gen.casem.v1 import intake_pb2, intake_service_pb2_grpc, types_pb2
from casem.services.case_intake.publisher import PublisherSettings
from casem.services.case_intake.server import IntakeServer, create_intake_server, ensure_intake_topic
from casem.topology.tenants import DatabaseEndpoints
from tests.support.grpc_case_api import GrpcLiveServer

TOKEN = "test-internal-token-" + uuid.uuid4().hex


@dataclass(frozen=True)
class Tenant:
    creds: BootstrapCredentials
    project_id: str
    project_key: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("dd-api-key", self.creds.api_key), ("dd-application-key", self.creds.app_key))


async def new_tenant(context: AppContext, key: str | None = None) -> Tenant:
    key = key or ("P" + uuid.uuid4().hex[:6]).upper()
    async with context.uow() as uow:
        creds = await bootstrap_org(uow, f"org-{uuid.uuid4().hex[:6]}", "admin@example.com")
        await uow.commit()
    async with context.uow() as uow:
        project = await create_project(uow, creds.org_id, creds.user_id, key=key, name=f"Project {key}")
        await uow.commit()
    return Tenant(creds, project.id, project.key)


def intake(tenant: Tenant, key: str | None = None, **fields: object) -> intake_pb2.CaseIntake:
    values: dict[str, object] = {
        "schema_version": 1,
        "intake_key": key or uuid.uuid4().hex,
        "project_id": tenant.project_id,
        "title": "disk full on web-1",
        "description": "the root volume is at 100%",
        "priority": types_pb2.CASE_PRIORITY_P2,
    }
    values.update(fields)
    return intake_pb2.CaseIntake(**values)  # type: ignore[arg-type]


@contextmanager
def case_api_server(endpoints: dict[str, DatabaseEndpoints]) -> Iterator[GrpcLiveServer]:
    """case-api over gRPC with the service credential enabled (read from the environment at start)."""
    previous = os.environ.get(INTERNAL_TOKEN_ENV)
    os.environ[INTERNAL_TOKEN_ENV] = TOKEN
    try:
        live = GrpcLiveServer.open(endpoints).start()
    finally:
        if previous is None:
            os.environ.pop(INTERNAL_TOKEN_ENV, None)
        else:
            os.environ[INTERNAL_TOKEN_ENV] = previous
    try:
        yield live
    finally:
        live.stop()


@asynccontextmanager
async def intake_server(
    context: AppContext, bus: EmbeddedBus, settings: PublisherSettings | None = None
) -> AsyncIterator[tuple[IntakeServer, intake_service_pb2_grpc.CaseIntakeServiceStub]]:
    await ensure_intake_topic(bus)
    producer = bus.producer()
    server = create_intake_server(context, producer, "127.0.0.1:0", settings)
    await server.server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield server, intake_service_pb2_grpc.CaseIntakeServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(1.0)
        await producer.close()


def sqlite_endpoints(workdir: Path) -> dict[str, DatabaseEndpoints]:
    from casem.topology.tenants import TENANTS

    return {t.name: DatabaseEndpoints(master=f"sqlite+aiosqlite:///{workdir / (t.name + '.db')}") for t in TENANTS}
