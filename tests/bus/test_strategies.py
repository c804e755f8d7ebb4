"""The consumer strategy layer (RunTask -> CommitOffsets, StreamProcessor) on the embedded log."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from casem.adapters.bus import Message, OutgoingMessage, TopicPartition, partition_for
from casem.adapters.bus.embedded import EmbeddedBus
from casem.adapters.bus.strategies import (
    CommitOffsets,
    CommitPolicy,
    MessageRejected,
    RunTask,
    StreamProcessor,
)


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedBus]:
    bus = EmbeddedBus(tmp_path / "bus.db", heartbeat_interval_s=0.1)
    yield bus
    await bus.close()


async def _publish(bus: EmbeddedBus, topic: str, partitions: int, keys: int, per_key: int) -> None:
    await bus.ensure_topic(topic, partitions)
    producer = bus.producer()
    await producer.publish_batch(
        [OutgoingMessage(topic, b"key-%d" % k, b"%d" % n) for n in range(per_key) for k in range(keys)]
    )
    await producer.close()


async def _run_until(processor: StreamProcessor, done: asyncio.Event, timeout: float = 20) -> None:
    task = asyncio.create_task(processor.run())
    waiter = asyncio.create_task(done.wait())
    finished, _ = await asyncio.wait({task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    processor.stop()
    waiter.cancel()
    await asyncio.wait_for(task, timeout=timeout)  # re-raises the processor's failure


def test_commit_policy_counts_and_time() -> None:
    policy = CommitPolicy(every_messages=3, every_seconds=2.0)
    assert not policy.due(0, 100.0)  # nothing to commit is never due
    assert not policy.due(2, 1.0)
    assert policy.due(3, 0.0)
    assert policy.due(1, 2.0)
    assert not CommitPolicy(every_messages=None, every_seconds=5).due(1000, 1.0)
    with pytest.raises(ValueError):
        CommitPolicy(every_messages=None, every_seconds=None)


async def test_commit_offsets_commits_every_n_messages_and_after_the_interval(bus: EmbeddedBus) -> None:
    await _publish(bus, "t", 1, 1, 10)
    consumer = bus.consumer("g", ["t"])
    now = [0.0]
    step = CommitOffsets(consumer, CommitPolicy(every_messages=4, every_seconds=10), clock=lambda: now[0])
    messages = await consumer.poll(10, timeout=5)
    assert len(messages) == 10
    tp = TopicPartition("t", 0)
    for m in messages[:9]:
        await step.submit(m)
    assert step.commits == 2
    assert await consumer.committed([tp]) == {tp: 8}
    await step.poll()
    assert step.commits == 2  # the 9th waits for the count or the clock
    now[0] = 10.0
    await step.poll()
    assert await consumer.committed([tp]) == {tp: 9}
    await step.submit(messages[9])
    await step.join()
    assert await consumer.committed([tp]) == {tp: 10}
    await consumer.close()


async def test_pipeline_processes_every_message_in_key_order_and_commits(bus: EmbeddedBus) -> None:
    await _publish(bus, "events", partitions=4, keys=8, per_key=25)
    seen: dict[bytes, list[int]] = defaultdict(list)
    running = 0
    peak = 0
    done = asyncio.Event()

    async def effect(message: Message) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(random.uniform(0, 0.003))
        running -= 1
        assert message.key is not None
        seen[message.key].append(int(message.value))
        if sum(map(len, seen.values())) == 200:
            done.set()

    consumer = bus.consumer("flavor", ["events"])
    commit = CommitOffsets(consumer, CommitPolicy(every_messages=50, every_seconds=0.5))
    processor = StreamProcessor(consumer, RunTask(effect, commit, max_in_flight=16), max_batch=64)
    await _run_until(processor, done)

    assert dict(seen) == {b"key-%d" % k: list(range(25)) for k in range(8)}
    assert peak > 1  # partitions really ran concurrently
    partitions = [TopicPartition("events", p) for p in range(4)]
    committed = await consumer.committed(partitions)
    ends: dict[int, int] = defaultdict(int)
    for k in range(8):
        ends[partition_for(b"key-%d" % k, 4)] += 25
    assert committed == {TopicPartition("events", p): ends.get(p) for p in range(4)}
    await consumer.close()


async def test_a_failed_effect_stops_the_commit_before_it_and_is_redelivered(bus: EmbeddedBus) -> None:
    await _publish(bus, "events", partitions=1, keys=1, per_key=10)
    effects: list[int] = []

    async def flaky(message: Message) -> None:
        if int(message.value) == 6:
            raise RuntimeError("downstream is down")
        effects.append(int(message.value))

    consumer = bus.consumer("flavor", ["events"])
    processor = StreamProcessor(
        consumer, RunTask(flaky, CommitOffsets(consumer, CommitPolicy(every_messages=1)), max_in_flight=4)
    )
    with pytest.raises(RuntimeError, match="downstream is down"):
        await asyncio.wait_for(processor.run(), timeout=20)
    assert effects == [0, 1, 2, 3, 4, 5]  # nothing after the failure ran
    tp = TopicPartition("events", 0)
    assert await consumer.committed([tp]) == {tp: 6}
    await consumer.close()

    # After the fix, a new member starts exactly at the failed message.
    retried: list[int] = []
    done = asyncio.Event()

    async def fixed(message: Message) -> None:
        retried.append(int(message.value))
        if len(retried) == 4:
            done.set()

    consumer = bus.consumer("flavor", ["events"])
    await _run_until(StreamProcessor(consumer, RunTask(fixed, CommitOffsets(consumer))), done)
    assert retried == [6, 7, 8, 9]
    assert await consumer.committed([tp]) == {tp: 10}
    await consumer.close()


async def test_in_flight_is_bounded_and_stop_finishes_the_work_in_flight(bus: EmbeddedBus) -> None:
    await _publish(bus, "events", partitions=8, keys=64, per_key=1)
    release = asyncio.Event()
    started: list[int] = []
    finished: list[Message] = []

    async def slow(message: Message) -> None:
        started.append(int(message.value))
        await release.wait()
        finished.append(message)

    consumer = bus.consumer("flavor", ["events"])
    run_task = RunTask(
        slow, CommitOffsets(consumer, CommitPolicy(every_messages=1000, every_seconds=None)), max_in_flight=3
    )
    # Batches of one: the embedded consumer rotates partitions between polls, so the three
    # in flight come from three partitions and can run at once.
    processor = StreamProcessor(consumer, run_task, max_batch=1)
    task = asyncio.create_task(processor.run())
    for _ in range(100):
        if len(started) == 3:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # give the loop time to overrun the bound, if it could
    assert len(started) == 3 and processor.processed == 3  # the rest is held back, not buffered
    with pytest.raises(MessageRejected):
        await run_task.submit(Message("events", 0, 999, b"k", b"x"))

    processor.stop()
    release.set()
    await asyncio.wait_for(task, timeout=10)
    # Stopping waited for the three in flight and committed exactly them.
    assert len(finished) == 3
    expected = {m.topic_partition: m.next_offset for m in finished}
    assert await consumer.committed(list(expected)) == expected
    await consumer.close()
