"""Idle means idle: an embedded-log member that found nothing looks less and less often, yet an append made in
the same process reaches it at once (casem.adapters.wakeup), one made by another process within milliseconds (the
log's doorbells, casem.adapters.doorbell; within about a second through the append marker where FIFOs cannot be
made), and a change of its share of the partitions at its next heartbeat: none waits for its next look. A
consumer loop over such a member starts one long poll instead of one every half second."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from casem.adapters import doorbell, wakeup
from casem.adapters.bus import embedded
from casem.adapters.bus.embedded import EmbeddedBus, EmbeddedConsumer
from casem.adapters.bus.port import ConsumerOptions, Message, OutgoingMessage, TopicPartition
from casem.adapters.bus.strategies import CommitOffsets, RunTask, StreamProcessor
from tests.bus.test_embedded import _run_worker


async def test_a_waiter_is_woken_by_a_notice_on_its_channel_only() -> None:
    mine, other = wakeup.waiter("test:a"), wakeup.waiter("test:b")
    try:
        assert not await mine.wait(0.01)  # nothing yet: the timeout passes
        wakeup.notify("test:a")
        assert await mine.wait(5) and mine.is_set()
        assert not other.is_set()
        mine.clear()
        # A notice from another thread (another loop's writer) wakes it too.
        await asyncio.to_thread(wakeup.notify, "test:a")
        assert await mine.wait(5)
    finally:
        mine.close()
        other.close()
    wakeup.notify("test:a")  # closed: nobody is registered, nothing fails


async def test_an_idle_member_backs_off_and_an_append_here_still_reaches_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Longest wait far beyond the poll's timeout: without the wake-up, the append would not be fetched in time.
    monkeypatch.setattr(embedded, "IDLE_WAIT_MAX_S", 600.0)
    monkeypatch.setattr(embedded, "FIRST_IDLE_WAIT_S", 600.0)
    bus = EmbeddedBus(tmp_path / "bus.db")
    await bus.ensure_topic("wake", 2)
    consumer = bus.consumer("g", ["wake"], ConsumerOptions("earliest"))
    producer = bus.producer()
    try:
        assert await consumer.poll(10, timeout=0.2) == []  # looked once, next look in 600 s
        polling = asyncio.create_task(consumer.poll(10, timeout=30))
        await asyncio.sleep(0.2)
        assert not polling.done()
        await producer.publish("wake", b"k", b"v")
        messages = await asyncio.wait_for(polling, 20)
        assert [m.value for m in messages] == [b"v"]
        # And a caller that asks not to wait always gets a look, whatever the back-off.
        await producer.publish("wake", b"k", b"w")
        await asyncio.sleep(0)
        assert [m.value for m in await consumer.poll(10, timeout=0)] == [b"w"]
    finally:
        await consumer.close()
        await producer.close()
        await bus.close()


async def test_an_idle_member_looks_less_and_less_often(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Waits of 1, 2, 4 s...: three looks in 4.5 s (a member looking every second, as before, made five).
    monkeypatch.setattr(embedded, "FIRST_IDLE_WAIT_S", 1.0)
    bus = EmbeddedBus(tmp_path / "bus.db")
    await bus.ensure_topic("quiet", 2)
    consumer = bus.consumer("g", ["quiet"])
    try:
        loop = asyncio.get_running_loop()
        until = loop.time() + 4.5
        while loop.time() < until:
            assert await consumer.poll(10, timeout=min(0.25, max(0.0, until - loop.time())) or 0.01) == []
        assert consumer.polls >= 10
        assert 1 <= consumer.fetches <= 3
    finally:
        await consumer.close()
        await bus.close()


@asynccontextmanager
async def idle_member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Path, EmbeddedConsumer]]:
    """The embedded log at tmp_path/bus.db, and a member of group g over its one-partition topic `elsewhere` that has
    looked once, found nothing, and would not look again for 600 s unless woken (every empty look puts the next
    one 600 s away)."""
    monkeypatch.setattr(embedded, "IDLE_WAIT_MAX_S", 600.0)
    monkeypatch.setattr(embedded, "FIRST_IDLE_WAIT_S", 600.0)
    db = tmp_path / "bus.db"
    bus = EmbeddedBus(db)
    await bus.ensure_topic("elsewhere", 1)
    consumer = bus.consumer("g", ["elsewhere"], ConsumerOptions("earliest"))
    try:
        assert await consumer.poll(10, timeout=0.2) == []
        yield db, consumer
    finally:
        await consumer.close()
        await bus.close()


async def test_an_append_made_by_another_process_wakes_an_idle_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with idle_member(tmp_path, monkeypatch) as (db, consumer):
        assert consumer._doorbell is not None and consumer._doorbell.active  # listening at its FIFO
        polling = asyncio.create_task(consumer.poll(10, timeout=45))
        await _run_worker(str(db), "produce", "elsewhere", "other", "1")
        messages = await asyncio.wait_for(polling, 60)
        assert [m.value for m in messages] == [b"other:0"]


# Far below the append marker's one-second look, which a member woken only by it misses for two appends in three
# (see below), yet generous for a loaded two-core machine: a doorbell takes well under a millisecond.
DOORBELL_BOUND_S = 0.25


async def test_appends_made_by_another_process_reach_an_idle_member_within_milliseconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[float] = []
    async with idle_member(tmp_path, monkeypatch) as (db, consumer):

        async def consume() -> None:
            while len(received) < 3:
                for _ in await consumer.poll(10, timeout=45):
                    received.append(time.time())

        consuming = asyncio.create_task(consume())
        # Three appends 0.35 s apart span 0.7 s of the marker's one-second cycle: however its looks fall, one of
        # them waits longer than the bound for the next look. Only a wake-up per append keeps all three within it.
        out = await _run_worker(str(db), "produce-spaced", "elsewhere", "3", "0.35")
        await asyncio.wait_for(consuming, 60)
        began = [float(line) for line in out.split()]
        latencies = [got - at for got, at in zip(received, began, strict=True)]
        assert max(latencies) < DOORBELL_BOUND_S, latencies
    assert os.listdir(doorbell.doorbell_directory(db)) == []  # the member's FIFO went with it


async def test_without_fifos_an_append_made_by_another_process_still_reaches_an_idle_member(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fifos_refused: None
) -> None:
    async with idle_member(tmp_path, monkeypatch) as (db, consumer):
        assert consumer._doorbell is not None and not consumer._doorbell.active  # no FIFO to listen at
        polling = asyncio.create_task(consumer.poll(10, timeout=45))
        await _run_worker(str(db), "produce", "elsewhere", "other", "1")
        messages = await asyncio.wait_for(polling, 60)  # woken by the append marker's look
        assert [m.value for m in messages] == [b"other:0"]


async def test_an_idle_member_takes_over_the_partitions_of_one_that_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every empty look puts the next one 600 s away (the looks below that must happen ask not to wait).
    monkeypatch.setattr(embedded, "IDLE_WAIT_MAX_S", 600.0)
    monkeypatch.setattr(embedded, "FIRST_IDLE_WAIT_S", 600.0)
    bus = EmbeddedBus(tmp_path / "bus.db", heartbeat_interval_s=0.1)
    await bus.ensure_topic("shared", 4)
    producer = bus.producer()
    await producer.publish_batch([OutgoingMessage("shared", f"k{i}".encode(), b"%d" % i) for i in range(40)])
    first, second = bus.consumer("g", ["shared"]), bus.consumer("g", ["shared"])
    try:
        for _ in range(200):  # looking without waiting, until they split the partitions
            await first.poll(100, timeout=0)
            await second.poll(100, timeout=0)
            mine, theirs = await first.assignment(), await second.assignment()
            if mine and theirs and not mine & theirs and len(mine | theirs) == 4:
                break
            await asyncio.sleep(0.05)
        assert len(mine) == 2 and len(theirs) == 2
        while await first.poll(100, timeout=0):  # what is left on its own partitions
            pass
        assert await first.poll(100, timeout=0.1) == []  # idle: its next look is in 600 s
        await second.close()  # leaving without committing: its partitions go to `first`, from the start
        got = await first.poll(100, timeout=45)  # woken by its heartbeat, which saw its share grow
        assert got and {m.topic_partition for m in got} <= theirs
    finally:
        await first.close()
        await producer.close()
        await bus.close()


async def test_a_consumer_loop_over_the_embedded_log_polls_once_while_idle(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path / "bus.db")
    await bus.ensure_topic("loop", 2)
    consumer = bus.consumer("g", ["loop"])
    producer = bus.producer()
    handled: list[bytes] = []
    done = asyncio.Event()

    async def handle(message: Message) -> None:
        handled.append(message.value)
        done.set()

    processor = StreamProcessor(consumer, RunTask(handle, CommitOffsets(consumer)))
    running = asyncio.create_task(processor.run())
    try:
        await asyncio.sleep(2.0)  # with half-second poll timeouts, four polls or more
        assert 1 <= consumer.polls <= 2
        await producer.publish("loop", b"k", b"after a quiet spell")
        await asyncio.wait_for(done.wait(), 20)  # woken by the append, not by the end of the long poll
        assert handled == [b"after a quiet spell"]
        processor.stop()
        await asyncio.wait_for(running, 20)  # the long poll is cancelled, not waited out
        committed = await consumer.committed([TopicPartition("loop", p) for p in range(2)])
        assert sum(v or 0 for v in committed.values()) == 1
    finally:
        if not running.done():
            processor.stop()
            await running
        await consumer.close()
        await producer.close()
        await bus.close()
