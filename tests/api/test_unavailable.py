"""An engine away is the server's problem, said as such: HTTP 503 with Retry-After, gRPC UNAVAILABLE with
RetryInfo, never 500/INTERNAL (the outage suite, tests/outage, shows it with the engines really stopped)."""

from __future__ import annotations

import socket

import grpc
import httpx
import sqlalchemy as sa
from google.rpc import error_details_pb2, status_pb2

from casem.app.context import AppContext
from casem.services.case_api.http.app import create_app
from casem.services.common.grpc_errors import to_status
from casem.topology.tenants import TENANTS, DatabaseEndpoints

KEYS = {"DD-API-KEY": "a" * 32, "DD-APPLICATION-KEY": "b" * 40}


def _nowhere() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/casem"  # nothing listens there


async def test_a_database_that_is_away_is_503_with_retry_after() -> None:
    ctx = AppContext.open({t.name: DatabaseEndpoints(master=_nowhere()) for t in TENANTS}, migrate=False)
    try:
        # raise_app_exceptions: an error that escaped to the outermost middleware would fail this test too.
        transport = httpx.ASGITransport(app=create_app(ctx))
        async with httpx.AsyncClient(transport=transport, base_url="http://casem") as http:
            for method, url in (("GET", "/api/v2/cases/projects"), ("POST", "/api/v2/cases")):
                response = await http.request(method, url, headers=KEYS, json={})
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"] == "2"
                error = response.json()["errors"][0]
                assert error["status"] == "503" and "unavailable" in error["detail"]
            assert (await http.get("/readyz")).status_code == 503
    finally:
        await ctx.close()


async def test_grpc_says_unavailable_with_retry_info() -> None:
    ctx = AppContext.open({t.name: DatabaseEndpoints(master=_nowhere()) for t in TENANTS}, migrate=False)
    try:
        async with ctx.uow(read_only=True) as uow:
            await uow.scalar(sa.text("SELECT 1"))
    except Exception as exc:  # the real error of the real driver
        status = to_status(exc, conflict=grpc.StatusCode.ALREADY_EXISTS)
    else:
        raise AssertionError("a database nobody listens for answered")
    finally:
        await ctx.close()
    assert status.code == grpc.StatusCode.UNAVAILABLE
    proto = status_pb2.Status.FromString(dict(status.trailing_metadata)["grpc-status-details-bin"])
    assert [d.Is(error_details_pb2.RetryInfo.DESCRIPTOR) for d in proto.details] == [True]
