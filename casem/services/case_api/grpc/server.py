"""The case-api gRPC server: casem.v1.CaseAPI, grpc.health.v1 and server reflection on one grpc.aio server."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from casem.app.context import AppContext
from casem.proto_gen.casem.v1 import case_api_pb2, case_api_pb2_grpc
from casem.services.case_api.grpc.servicer import CaseApiServicer
from casem.services.common.grpc_health import DatabaseHealth
from casem.services.common.grpc_server import server_interceptors, server_options
from casem.services.common.listen import add_grpc_port

CASE_API_SERVICE = case_api_pb2.DESCRIPTOR.services_by_name["CaseAPI"].full_name  # "casem.v1.CaseAPI"


def create_bound_server(context: AppContext, address: str) -> tuple[grpc.aio.Server, int]:
    """The server (not started) and the port it is bound to (`host:0` picks a free one); PortInUse when taken.

    Call it from inside the running event loop that will serve it: grpc.aio binds the server to that loop.
    """
    server = grpc.aio.server(options=server_options(), interceptors=server_interceptors())
    case_api_pb2_grpc.add_CaseAPIServicer_to_server(CaseApiServicer(context), server)
    health_pb2_grpc.add_HealthServicer_to_server(DatabaseHealth(context, [CASE_API_SERVICE]), server)
    reflection.enable_server_reflection(
        [CASE_API_SERVICE, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
        server,
    )
    return server, add_grpc_port(server, address, "case-api gRPC")


def create_server(context: AppContext, address: str) -> grpc.aio.Server:
    """The case-api gRPC server, bound to `address` and not started: `await server.start()`, and on shutdown
    `await server.stop(grace)` (new calls are refused, in-flight ones get `grace` seconds to finish)."""
    return create_bound_server(context, address)[0]
