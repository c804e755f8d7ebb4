"""A live case-chat-interactions gRPC server per backend (SQLite, PostgreSQL) and its stub."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from casem.app.context import AppContext
from casem.proto_gen.casem.v1 import chat_interactions_pb2_grpc
from tests.support.chat_grpc import LiveChatGrpc
from tests.support.databases import tenant_endpoints


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def chat_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveChatGrpc]:
    workdir: Path = tmp_path_factory.mktemp(f"chat-grpc-{request.param}")
    with tenant_endpoints(request.param, workdir) as endpoints:
        live = LiveChatGrpc(AppContext.open(endpoints)).start()
        try:
            yield live
        finally:
            live.stop()


@pytest.fixture(scope="session")
def chat_stub(chat_server: LiveChatGrpc) -> Iterator[chat_interactions_pb2_grpc.ChatInteractionsServiceStub]:
    with grpc.insecure_channel(f"127.0.0.1:{chat_server.port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        yield chat_interactions_pb2_grpc.ChatInteractionsServiceStub(channel)
