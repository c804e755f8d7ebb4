"""An outbound HTTP request (OpenSearch, webhooks, Jira, ServiceNow: all httpx) imports nothing once warm.

httpcore imports sniffio inside the calls it makes at every lock and stream close; without sniffio installed each
of those imports fails, and a failed import is not cached: Python searches sys.path again, several times a request
(encode/httpcore#1103). pyproject.toml installs sniffio for that reason; this catches it going missing, or any other
per-request import."""

from __future__ import annotations

import asyncio
import importlib.abc
import sys
import threading
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import httpx

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class _Lookups(importlib.abc.MetaPathFinder):
    """Records every module name this thread's imports go looking for (it finds none itself); other threads of the
    test process (exporters, pools) may import what they like meanwhile."""

    def __init__(self) -> None:
        self.thread: int | None = None  # set by the thread that makes the requests
        self.names: list[str] = []

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if threading.get_ident() == self.thread:
            self.names.append(fullname)
        return None


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while await reader.readuntil(b"\r\n\r\n"):
            writer.write(RESPONSE)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionResetError):
        pass
    writer.close()


async def _requests(lookups: _Lookups) -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(3):  # warm: the connection, and whatever httpx imports lazily on its first requests
                assert (await client.get("/")).json() == {}
                assert (await client.post("/_bulk", content=b'{"index": {}}\n{}\n')).status_code == 200
            lookups.thread = threading.get_ident()
            sys.meta_path.insert(0, lookups)
            try:
                for _ in range(20):
                    assert (await client.post("/_bulk", content=b'{"index": {}}\n{}\n')).status_code == 200
            finally:
                sys.meta_path.remove(lookups)
    finally:
        server.close()
        await server.wait_closed()


def test_a_warm_http_client_looks_up_no_module_per_request() -> None:
    # On a thread and an event loop of its own: the test session's loop runs other tests' background tasks, which
    # may import what they like meanwhile.
    lookups = _Lookups()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(_requests(lookups))
        except BaseException as error:  # reported below, on the test's thread
            failures.append(error)

    thread = threading.Thread(target=run, name="http-imports")
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the requests did not finish in 60 s"
    if failures:
        raise failures[0]
    assert lookups.names == [], f"modules looked up per request: {sorted(set(lookups.names))}"
