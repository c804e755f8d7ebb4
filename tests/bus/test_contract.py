"""The bus port's contract, run against every adapter (the `harness` fixture)."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict

import pytest

from casem.adapters.bus import (
    BusUnavailable,
    ConsumerOptions,
    NotAssigned,
    OutgoingMessage,
    PublishError,
    TopicNotFound,
    TopicPartition,
    partition_for,
    publish_acknowledged,
)
from tests.support.bus_harness import Harness, drain, until


def _messages(topic: str, count: int, key: bytes | None = b"k") -> list[OutgoingMessage]:
    return [OutgoingMessage(topic, key, f"m{i}".encode()) for i in range(count)]


async def test_round_trip_keeps_key_value_headers_and_positions(harness: Harness) -> None:
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=3)
    sent = [
        OutgoingMessage(topic, f"case-{i}".encode(), f"payload-{i}".encode(), (("event", b"created"), ("n", b"%d" % i)))
        for i in range(30)
    ]
    deliveries = await harness.producer(bus).publish_batch(sent)

    assert [d.topic for d in deliveries] == [topic] * 30
    # Keys land where the shared partitioner says, whichever adapter wrote them.
    assert [d.partition for d in deliveries] == [partition_for(m.key, 3) for m in sent]
    consumer = harness.consumer(bus, harness.name("group"), [topic])
    got = await drain(consumer, 30)
    by_value = {m.value: m for m in got}
    assert len(got) == 30 and len(by_value) == 30
    for message, delivery in zip(sent, deliveries, strict=True):
        received = by_value[message.value]
        assert (received.key, received.headers) == (message.key, message.headers)
        assert (received.partition, received.offset) == (delivery.partition, delivery.offset)
        assert received.timestamp_ms is not None and received.timestamp_ms > 0


async def test_messages_of_one_key_arrive_in_publish_order(harness: Harness) -> None:
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=4)
    producer = harness.producer(bus)
    keys = [f"case-{k}".encode() for k in range(12)]
    sent: dict[bytes, list[bytes]] = defaultdict(list)
    for batch in range(10):  # interleave keys within and across batches
        out = []
        for i in range(40):
            key = keys[(i * 7 + batch) % len(keys)]
            value = f"{key.decode()}#{len(sent[key])}".encode()
            sent[key].append(value)
            out.append(OutgoingMessage(topic, key, value))
        await producer.publish_batch(out)

    got = await drain(harness.consumer(bus, harness.name("group"), [topic]), 400)
    received: dict[bytes, list[bytes]] = defaultdict(list)
    last_offset: dict[int, int] = {}
    for m in got:
        assert m.key is not None
        received[m.key].append(m.value)
        assert m.offset > last_offset.get(m.partition, -1)  # offsets grow within a partition
        last_offset[m.partition] = m.offset
    assert received == sent
    assert len({partition_for(k, 4) for k in keys}) > 1  # the keys really were spread


async def test_consumer_groups_are_isolated(harness: Harness) -> None:
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=2)
    await harness.producer(bus).publish_batch(
        [OutgoingMessage(topic, f"k{i}".encode(), f"v{i}".encode()) for i in range(20)]
    )
    first = harness.consumer(bus, harness.name("group-a"), [topic])
    second = harness.consumer(bus, harness.name("group-b"), [topic])
    got_first = await drain(first, 20)
    await first.commit({m.topic_partition: m.next_offset for m in got_first})
    got_second = await drain(second, 20)

    assert sorted(m.value for m in got_first) == sorted(m.value for m in got_second)
    assert len(got_first) == 20
    partitions = [TopicPartition(topic, p) for p in range(2)]
    assert set((await second.committed(partitions)).values()) == {None}  # A's commit is A's only


async def test_committed_offsets_survive_a_consumer_restart(harness: Harness) -> None:
    bus = harness.bus()
    topic = await harness.topic(bus)
    await harness.producer(bus).publish_batch(_messages(topic, 10))
    group = harness.name("group")
    consumer = harness.consumer(bus, group, [topic])
    got = await drain(consumer, 10)
    assert [m.value for m in got] == [f"m{i}".encode() for i in range(10)]
    await consumer.commit({TopicPartition(topic, 0): got[5].next_offset})
    await consumer.close()

    restarted = harness.consumer(harness.bus(), group, [topic])
    resumed = await drain(restarted, 4)
    assert [m.offset for m in resumed] == [6, 7, 8, 9]
    assert (await restarted.committed([TopicPartition(topic, 0)])) == {TopicPartition(topic, 0): 6}


async def test_uncommitted_messages_are_delivered_again(harness: Harness) -> None:
    bus = harness.bus()
    topic = await harness.topic(bus)
    await harness.producer(bus).publish_batch(_messages(topic, 5))
    group = harness.name("group")
    consumer = harness.consumer(bus, group, [topic])
    assert len(await drain(consumer, 5)) == 5
    await consumer.close()  # no commit: the effect of these messages is not durable

    again = await drain(harness.consumer(bus, group, [topic]), 5)
    assert [m.offset for m in again] == [0, 1, 2, 3, 4]


async def test_replay_from_an_offset(harness: Harness) -> None:
    bus = harness.bus()
    topic = await harness.topic(bus)
    await harness.producer(bus).publish_batch(_messages(topic, 8))
    tp = TopicPartition(topic, 0)
    consumer = harness.consumer(bus, harness.name("group"), [topic])
    assert len(await drain(consumer, 8)) == 8
    await consumer.commit({tp: 8})

    await consumer.seek(tp, 3)
    replayed = await drain(consumer, 5)
    assert [m.offset for m in replayed] == [3, 4, 5, 6, 7]
    assert [m.value for m in replayed] == [b"m3", b"m4", b"m5", b"m6", b"m7"]
    assert await consumer.committed([tp]) == {tp: 8}  # seeking does not move the group

    with pytest.raises(NotAssigned):
        await consumer.seek(TopicPartition(harness.name("not-subscribed"), 0), 0)


async def test_latest_initial_position_skips_the_backlog(harness: Harness) -> None:
    bus = harness.bus()
    topic = await harness.topic(bus)
    producer = harness.producer(bus)
    await producer.publish_batch(_messages(topic, 3))
    consumer = harness.consumer(bus, harness.name("group"), [topic], ConsumerOptions(initial_position="latest"))
    # "latest" is resolved when the member starts fetching, which on Kafka happens some time
    # after joining: keep publishing fresh messages until they flow, then check the backlog
    # never showed up.
    got: list = []
    deadline = time.monotonic() + 30
    while not got and time.monotonic() < deadline:
        await producer.publish(topic, b"k", b"fresh")
        got = await consumer.poll(timeout=0.5)
    assert got, "no fresh message arrived"
    assert {m.value for m in got} == {b"fresh"}


async def test_members_of_one_group_split_partitions_and_take_over_on_leave(harness: Harness) -> None:
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=4)
    group = harness.name("group")
    first = harness.consumer(bus, group, [topic])
    second = harness.consumer(bus, group, [topic])

    async def split() -> bool:
        await first.poll(timeout=0.1)
        await second.poll(timeout=0.1)
        a, b = await first.assignment(), await second.assignment()
        return bool(a) and bool(b) and not (a & b) and len(a | b) == 4

    assert await until(split, timeout=45), "the two members never split the partitions"
    owned_first, owned_second = await first.assignment(), await second.assignment()
    producer = harness.producer(bus)
    await producer.publish_batch([OutgoingMessage(topic, f"k{i}".encode(), b"%d" % i) for i in range(40)])

    got_first: list = []
    got_second: list = []
    deadline = time.monotonic() + 30
    while len(got_first) + len(got_second) < 40 and time.monotonic() < deadline:
        got_first += await first.poll(timeout=0.2)
        got_second += await second.poll(timeout=0.2)
    assert {m.topic_partition for m in got_first} <= owned_first
    assert {m.topic_partition for m in got_second} <= owned_second
    values = sorted(int(m.value) for m in got_first + got_second)
    assert values == list(range(40))  # each message once, to exactly one member
    await first.commit({m.topic_partition: m.next_offset for m in got_first})
    await second.commit({m.topic_partition: m.next_offset for m in got_second})

    await second.close()  # leaving hands its partitions over

    async def took_over() -> bool:
        await first.poll(timeout=0.1)
        return len(await first.assignment()) == 4

    assert await until(took_over, timeout=45), "the remaining member never took the partitions over"
    # Two messages per partition, so some land on the partitions that changed hands.
    await producer.publish_batch(
        [OutgoingMessage(topic, _key_for(p, 4, n), b"late") for p in range(4) for n in range(2)]
    )
    late = await drain(first, 8)
    assert [m.value for m in late] == [b"late"] * 8  # committed work is not redelivered
    assert {m.topic_partition for m in late} == {TopicPartition(topic, p) for p in range(4)}


def _key_for(partition: int, partitions: int, nth: int) -> bytes:
    """The nth key (in a fixed sequence) that lands on `partition`."""
    found = 0
    for i in range(10_000):
        key = f"key-{i}".encode()
        if partition_for(key, partitions) == partition:
            if found == nth:
                return key
            found += 1
    raise AssertionError("no key found")


async def test_ensure_topic_is_idempotent_and_keeps_the_partition_count(harness: Harness) -> None:
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=3)
    assert await bus.ensure_topic(topic, 3) == 3
    assert await bus.ensure_topic(topic, 5) == 3  # repartitioning would move keys
    assert await bus.partitions(topic) == 3
    with pytest.raises(TopicNotFound):
        await bus.partitions(harness.name("missing"))


async def test_publishing_to_a_missing_topic_fails_without_creating_it(harness: Harness) -> None:
    bus = harness.bus(delivery_timeout_s=5.0) if harness.kind == "kafka" else harness.bus()
    missing = harness.name("missing")
    with pytest.raises(PublishError) as caught:
        await harness.producer(bus).publish_batch(_messages(missing, 2))
    assert not isinstance(caught.value, BusUnavailable)  # a refusal, not an outage: don't retry
    assert caught.value.delivered == ()
    assert len(caught.value.failed) == 2
    with pytest.raises(TopicNotFound):
        await bus.partitions(missing)  # auto-creation is off everywhere


@pytest.mark.parametrize("through", ["publish_batch", "publish_acknowledged"])
async def test_unreachable_bus_raises_bus_unavailable_and_reports_nothing_published(
    harness: Harness, through: str
) -> None:
    """Either way of publishing (the relay's `publish_acknowledged` too) reports every message failed."""
    topic = harness.name("topic")
    if harness.kind == "embedded":
        await harness.bus().ensure_topic(topic, 1)
    sent = _messages(topic, 3)
    started = time.monotonic()
    with harness.unreachable() as settings:
        if harness.kind == "kafka":
            from casem.adapters.bus.kafka import KafkaBus

            bus = KafkaBus(str(settings.pop("bootstrap")), **settings)  # type: ignore[arg-type]
        else:
            bus = harness.bus(**settings)
        producer = bus.producer()
        with pytest.raises(BusUnavailable) as caught:
            if through == "publish_batch":
                await producer.publish_batch(sent)
            else:
                await publish_acknowledged(producer, sent)
        elapsed = time.monotonic() - started
        await producer.close()
        if harness.kind == "kafka":
            await bus.close()
    assert elapsed < 20, f"took {elapsed:.1f}s to report the bus unavailable"
    assert caught.value.delivered == ()
    assert list(caught.value.failed) == sent
    if harness.kind == "embedded":
        # Nothing was written behind the caller's back: the log is still empty.
        marker = uuid.uuid4().hex.encode()
        healthy = harness.bus()
        await harness.producer(healthy).publish(topic, b"k", marker)
        first = await drain(harness.consumer(healthy, harness.name("group"), [topic]), 1)
        assert [(m.offset, m.value) for m in first] == [(0, marker)]


async def test_poll_returns_as_soon_as_a_message_is_there(harness: Harness) -> None:
    """`poll(max, timeout)` waits for the first message only, not for `max` of them."""
    import time as _time

    bus = harness.bus()
    topic = await harness.topic(bus)
    consumer = harness.consumer(bus, harness.name("group"), [topic])
    await consumer.poll(timeout=2.0)  # join and get the partition before measuring
    await harness.producer(bus).publish(topic, b"k", b"one")
    started = _time.monotonic()
    got = []
    while not got and _time.monotonic() - started < 10:
        got = await consumer.poll(max_messages=500, timeout=5.0)
    assert [m.value for m in got] == [b"one"]
    assert _time.monotonic() - started < 2.5, "poll waited for a full batch instead of the first message"


async def test_publish_acknowledged_returns_the_count_once_every_message_is_written(harness: Harness) -> None:
    """`publish_acknowledged` (no Delivery per message) writes what `publish_batch` writes, in the same order."""
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=2)
    sent = [OutgoingMessage(topic, f"case-{i % 3}".encode(), b"%d" % i, (("n", b"%d" % i),)) for i in range(25)]
    assert await publish_acknowledged(harness.producer(bus), sent) == 25
    assert await publish_acknowledged(harness.producer(bus), []) == 0
    got = await drain(harness.consumer(bus, harness.name("group"), [topic]), 25)
    assert sorted(m.value for m in got) == sorted(m.value for m in sent)
    for key in {m.key for m in sent}:
        assert [m.value for m in got if m.key == key] == [m.value for m in sent if m.key == key]
        assert all(m.partition == partition_for(key, 2) for m in got if m.key == key)  # type: ignore[arg-type]
    assert {m.value: m.headers for m in got} == {m.value: m.headers for m in sent}


@pytest.mark.parametrize("method", ["publish_batch", "publish_acknowledged"])
async def test_a_batch_partly_refused_lists_what_was_delivered_and_what_failed(harness: Harness, method: str) -> None:
    """Messages to a topic that exists are written and listed as delivered, in batch order; those to a missing topic
    fail, listed as failed: whether or not the caller asked for a Delivery per message."""
    bus = harness.bus(delivery_timeout_s=5.0) if harness.kind == "kafka" else harness.bus()
    topic = await harness.topic(bus)
    missing = harness.name("missing")
    sent = [OutgoingMessage(topic if i % 2 == 0 else missing, b"k", b"%d" % i) for i in range(6)]
    producer = harness.producer(bus)
    with pytest.raises(PublishError) as caught:
        if method == "publish_batch":
            await producer.publish_batch(sent)
        else:
            await publish_acknowledged(producer, sent)
    failed = [m for m in sent if m.topic == missing]
    if harness.kind == "kafka":  # librdkafka writes the others; the embedded log takes a batch whole or not at all
        assert not isinstance(caught.value, BusUnavailable)  # a refusal, not an outage
        assert list(caught.value.failed) == failed
        assert [d.topic for d in caught.value.delivered] == [topic] * 3
        assert [d.offset for d in caught.value.delivered] == [0, 1, 2]
        got = await drain(harness.consumer(bus, harness.name("group"), [topic]), 3)
        assert [m.value for m in got] == [b"0", b"2", b"4"]
    else:
        assert caught.value.delivered == ()
        assert set(caught.value.failed) >= set(failed)
