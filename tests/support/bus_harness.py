"""What the bus suites and the suites built on a bus share: `Harness` (buses, producers and consumers of one adapter,
closed at teardown) and the helpers that wait on consumers. The `harness` fixture: tests/support/fixtures/bus.py."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path

from casem.adapters.bus.embedded import EmbeddedBus
from casem.adapters.bus.port import Bus, Consumer, ConsumerOptions, Message, Producer
from tests.backends import engine_address


class Harness:
    """Opens buses, producers and consumers of one adapter, with names unique to the test
    (xdist workers share the Kafka broker), and closes everything at teardown."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.db_path = tmp_path / "bus.db"
        self._closables: list[Bus | Producer | Consumer] = []
        self._suffix = uuid.uuid4().hex[:12]
        self._names = 0

    def bootstrap(self) -> str:
        return engine_address("kafka")

    def bus(self, **kwargs: object) -> Bus:
        bus: Bus
        if self.kind == "kafka":
            from casem.adapters.bus.kafka import KafkaBus

            bus = KafkaBus(self.bootstrap(), **kwargs)  # type: ignore[arg-type]
        else:
            # A short heartbeat so group membership changes show within a test's patience.
            kwargs.setdefault("heartbeat_interval_s", 0.2)
            bus = EmbeddedBus(self.db_path, **kwargs)  # type: ignore[arg-type]
        self._closables.append(bus)
        return bus

    def name(self, what: str) -> str:
        self._names += 1
        return f"test-{what}-{self._suffix}-{self._names}"

    async def topic(self, bus: Bus, partitions: int = 1) -> str:
        name = self.name("topic")
        assert await bus.ensure_topic(name, partitions) == partitions
        return name

    def producer(self, bus: Bus) -> Producer:
        producer = bus.producer()
        self._closables.append(producer)
        return producer

    def consumer(self, bus: Bus, group: str, topics: Sequence[str], options: ConsumerOptions | None = None) -> Consumer:
        consumer = bus.consumer(group, topics, options)
        self._closables.append(consumer)
        return consumer

    @contextlib.contextmanager
    def unreachable(self) -> Iterator[dict[str, object]]:
        """Settings for a bus that cannot be reached: Kafka on a closed port, or the embedded
        file write-locked by another connection with a short busy timeout."""
        if self.kind == "kafka":
            yield {"bootstrap": f"127.0.0.1:{closed_port()}", "delivery_timeout_s": 3.0}
            return
        blocker = sqlite3.connect(self.db_path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            yield {"busy_timeout_s": 0.5}
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()

    async def aclose(self) -> None:
        for item in reversed(self._closables):
            with contextlib.suppress(Exception):
                await item.close()


def closed_port() -> int:
    """A loopback port nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when the block exits: nothing listens


async def drain(consumer: Consumer, count: int, timeout: float = 30.0) -> list[Message]:
    """Poll until `count` messages arrived (or the timeout passed); returns what arrived."""
    got: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got.extend(await consumer.poll(max_messages=count - len(got), timeout=0.5))
    return got


async def quiet(consumer: Consumer, seconds: float) -> list[Message]:
    """Everything that arrives within `seconds` (expected to be nothing)."""
    got: list[Message] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got.extend(await consumer.poll(timeout=0.2))
    return got


async def until(predicate: Callable[[], Awaitable[bool]], timeout: float = 30.0, interval: float = 0.1) -> bool:
    """Whether `predicate` became true within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(interval)
    return False
