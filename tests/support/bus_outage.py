"""Staging a start-up outage of the real Kafka broker without stopping it (other suites share it).

A service is given a bootstrap address on a loopback port where nothing listens at first (a refused connection, what
a stopped broker gives); `StagedBootstrap.answer()` then starts a forwarder there to the real broker. Once
bootstrapped, a client talks to the broker's advertised address directly, so only a start-up outage can be staged
this way."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial

from casem.adapters.bus.kafka import KafkaBus
from casem.adapters.bus.namespace import NamespacedBus
from tests.backends import engine_address
from tests.support.bus_harness import closed_port


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except ConnectionError:
        pass
    finally:
        sink.close()


async def _forward(target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    host, port = target.rsplit(":", 1)
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
    except OSError:
        writer.close()
        return
    await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))


class StagedBootstrap:
    """A bootstrap port that refuses until `answer()`, then forwards to the real broker. `close()` at teardown."""

    def __init__(self) -> None:
        self.broker = engine_address("kafka").split(",")[0]
        self.port = closed_port()
        self._forwarder: asyncio.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def bus(self, **kwargs: object) -> NamespacedBus:
        """A Kafka bus bootstrapping here, in a namespace of its own (xdist workers share the broker)."""
        kwargs.setdefault("admin_timeout_s", 1.0)
        return NamespacedBus(KafkaBus(self.address, **kwargs), f"t{uuid.uuid4().hex[:10]}")  # type: ignore[arg-type]

    async def answer(self) -> None:
        self._forwarder = await asyncio.start_server(partial(_forward, self.broker), "127.0.0.1", self.port)

    def close(self) -> None:
        if self._forwarder is not None:
            self._forwarder.close()


async def until(predicate: Callable[[], Awaitable[bool]], timeout: float) -> None:
    """Poll `predicate` until it holds; fail the test when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def holds(condition: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """A synchronous condition as a predicate for `until`."""

    async def check() -> bool:
        return condition()

    return check


async def readyz(ops_port: int) -> tuple[int, dict]:  # type: ignore[type-arg]
    """The ops endpoint's /readyz answer (status, body); (0, {}) while nothing answers yet."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=5.0) as http:
            response = await http.get(f"http://127.0.0.1:{ops_port}/readyz")
    except httpx.TransportError:
        return 0, {}
    return response.status_code, response.json()


def waiting_for_bus(ops_port: int) -> Callable[[], Awaitable[bool]]:
    """A predicate for `until`: /readyz answers not ready, naming the bus."""

    async def check() -> bool:
        status, body = await readyz(ops_port)
        return status == 503 and "bus (waiting)" in body.get("failures", {})

    return check


def ready(ops_port: int) -> Callable[[], Awaitable[bool]]:
    """A predicate for `until`: /readyz answers ready."""

    async def check() -> bool:
        return (await readyz(ops_port))[0] == 200

    return check


def engine_lines(logs: list[dict]) -> list[tuple[str, object]]:  # type: ignore[type-arg]
    """The engine waits' log lines (what went away, what came back), in order."""
    events = ("engine unavailable; waiting", "engine back; resuming")
    return [(e["event"], e.get("engine")) for e in logs if e["event"] in events]
