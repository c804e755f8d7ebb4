"""The case-chat-interactions gRPC server: casem.v1.ChatInteractionsService, grpc.health.v1 and reflection."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from casem.app.context import AppContext
from casem.proto_gen.casem.v1 import chat_interactions_pb2, chat_interactions_pb2_grpc
from casem.services.case_chat_interactions.bridge.settings import BridgeSettings
from casem.services.case_chat_interactions.servicer import ChatInteractionsServicer
from casem.services.common.grpc_health import DatabaseHealth
from casem.services.common.grpc_server import server_interceptors, server_options
from casem.services.common.listen import add_grpc_port

CHAT_SERVICE = chat_interactions_pb2.DESCRIPTOR.services_by_name["ChatInteractionsService"].full_name


def create_bound_server(
    context: AppContext, address: str, *, internal_token: str | None = None, settings: BridgeSettings | None = None
) -> tuple[grpc.aio.Server, int]:
    """The server (not started) and its bound port (`host:0` picks one); call from the loop that will serve it."""
    server = grpc.aio.server(options=server_options(), interceptors=server_interceptors())
    chat_interactions_pb2_grpc.add_ChatInteractionsServiceServicer_to_server(
        ChatInteractionsServicer(context, internal_token, settings), server
    )
    health_pb2_grpc.add_HealthServicer_to_server(DatabaseHealth(context, [CHAT_SERVICE]), server)
    reflection.enable_server_reflection(
        [CHAT_SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
    )
    return server, add_grpc_port(server, address, "case-chat-interactions gRPC")
