"""A live case-api gRPC server per backend (SQLite, PostgreSQL) and fresh orgs to call it as."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from casem.proto_gen.casem.v1 import case_api_pb2_grpc
from tests.support.databases import tenant_endpoints
from tests.support.grpc_case_api import GrpcLiveServer, Org, new_org


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def grpc_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcLiveServer]:
    workdir: Path = tmp_path_factory.mktemp(f"case-api-grpc-{request.param}")
    with tenant_endpoints(request.param, workdir) as endpoints:
        live = GrpcLiveServer.open(endpoints).start()
        try:
            yield live
        finally:
            live.stop()


@pytest.fixture(scope="session")
def channel(grpc_server: GrpcLiveServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(grpc_server.address) as ch:
        grpc.channel_ready_future(ch).result(timeout=30)
        yield ch


@pytest.fixture(scope="session")
def stub(channel: grpc.Channel) -> case_api_pb2_grpc.CaseAPIStub:
    return case_api_pb2_grpc.CaseAPIStub(channel)


# The case-api's gRPC orgs: these override the HTTP `org`/`other_org` of tests/support/fixtures/case_api.py here.
@pytest.fixture
def org(grpc_server: GrpcLiveServer) -> Org:
    return new_org(grpc_server)


@pytest.fixture
def other_org(grpc_server: GrpcLiveServer) -> Org:
    return new_org(grpc_server)
