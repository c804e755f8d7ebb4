"""Retention of the embedded log: old and oversized partitions are trimmed, never below what a consumer group
has not committed, never the newest message; offsets keep growing after a cleanup."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from casem.adapters.bus.embedded import EmbeddedBus, Retention
from casem.adapters.bus.port import ConsumerOptions, TopicPartition
from tests.support.bus_harness import drain

DAY_MS = 86_400_000


def _age(path: Path, topic: str, below: int, days: float) -> None:
    """Make the messages below offset `below` `days` old."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE bus_messages SET timestamp_ms = ? WHERE topic = ? AND msg_offset < ?",
            (int(time.time() * 1000 - days * DAY_MS), topic, below),
        )


def _offsets(path: Path, topic: str) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [o for (o,) in conn.execute("SELECT msg_offset FROM bus_messages WHERE topic = ? ORDER BY 1", (topic,))]


async def test_age_retention_keeps_what_a_group_has_not_committed(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    bus = EmbeddedBus(path, heartbeat_interval_s=0.2)
    topic = "events"
    await bus.ensure_topic(topic, 1)
    producer = bus.producer()
    await producer.publish_batch([_msg(topic, n) for n in range(100)])
    _age(path, topic, below=90, days=10)  # 90 messages older than a week, 10 recent

    # Group "slow" has read 40; group "fast" all of them.
    for group, upto in (("slow", 40), ("fast", 100)):
        consumer = bus.consumer(group, [topic], ConsumerOptions(initial_position="earliest"))
        assert len(await drain(consumer, upto if upto < 100 else 100, timeout=10)) >= upto
        await consumer.commit({TopicPartition(topic, 0): upto})
        await consumer.close()

    report = await bus.enforce_retention(Retention(max_age_s=7 * 86400))
    assert (report.deleted, report.held) == (40, 50)  # 40 gone; 50 old ones the slow group still needs
    assert _offsets(path, topic)[0] == 40

    # The slow group catches up: now everything old goes, and it reads on from where it was.
    slow = bus.consumer("slow", [topic], ConsumerOptions(initial_position="earliest"))
    rest = await drain(slow, 60, timeout=10)
    assert [m.offset for m in rest] == list(range(40, 100))
    await slow.commit({TopicPartition(topic, 0): 100})
    await slow.close()
    report = await bus.enforce_retention(Retention(max_age_s=7 * 86400))
    assert (report.deleted, report.held) == (50, 0)
    assert _offsets(path, topic) == list(range(90, 100))
    await producer.close()
    await bus.close()


async def test_size_retention_and_the_newest_message_stays(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    bus = EmbeddedBus(path)
    topic = "big"
    await bus.ensure_topic(topic, 1)
    producer = bus.producer()
    await producer.publish_batch([_msg(topic, n, size=1000) for n in range(50)])
    # No group reads the topic: only the policy decides. ~10 messages fit in 10.5 kB.
    report = await bus.enforce_retention(Retention(max_age_s=None, max_bytes=10_500))
    assert report.deleted == 40 and _offsets(path, topic) == list(range(40, 50))

    # Everything is old: all but the newest message go, and the next publish continues the offsets.
    _age(path, topic, below=50, days=30)
    await bus.enforce_retention(Retention(max_age_s=86400))
    assert _offsets(path, topic) == [49]
    [delivery] = await producer.publish_batch([_msg(topic, 50)])
    assert delivery.offset == 50
    # A new group starting at the earliest reads what is left.
    consumer = bus.consumer("late", [topic], ConsumerOptions(initial_position="earliest"))
    assert [m.offset for m in await drain(consumer, 2, timeout=10)] == [49, 50]
    await consumer.close()
    await producer.close()
    await bus.close()


async def test_a_live_member_that_has_committed_nothing_holds_the_partition(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    bus = EmbeddedBus(path, heartbeat_interval_s=0.2)
    topic = "held"
    await bus.ensure_topic(topic, 2)
    producer = bus.producer()
    await producer.publish_batch([_msg(topic, n) for n in range(40)])
    _age(path, topic, below=10_000, days=30)
    member = bus.consumer("new-group", [topic], ConsumerOptions(initial_position="earliest"))
    await member.poll(timeout=0.5)  # joined: registered as a member of the group
    report = await bus.enforce_retention(Retention(max_age_s=86400))
    assert report.deleted == 0 and report.held == 38  # both partitions held, less their newest message
    await member.close()
    await producer.close()
    await bus.close()


async def test_the_bus_applies_its_retention_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "bus.db"
    bus = EmbeddedBus(path, retention=Retention(max_age_s=86400, check_every_s=0.1))
    topic = "auto"
    await bus.ensure_topic(topic, 1)
    producer = bus.producer()
    await producer.publish_batch([_msg(topic, n) for n in range(10)])
    _age(path, topic, below=5, days=3)
    deadline = time.monotonic() + 10
    while _offsets(path, topic)[0] != 5:
        assert time.monotonic() < deadline, _offsets(path, topic)
        time.sleep(0.05)
    await producer.close()
    await bus.close()


def test_retention_settings_from_the_environment() -> None:
    assert Retention.from_env({}) == Retention()
    assert Retention.from_env({"CASEM_BUS_RETENTION_HOURS": "24", "CASEM_BUS_RETENTION_BYTES": "1048576"}) == Retention(
        max_age_s=86400, max_bytes=1_048_576
    )
    assert Retention.from_env({"CASEM_BUS_RETENTION_HOURS": "0"}).max_age_s is None


def _msg(topic: str, n: int, size: int = 10):  # type: ignore[no-untyped-def]
    from casem.adapters.bus.port import OutgoingMessage

    return OutgoingMessage(topic, None, f"{n:0{size}d}".encode(), ())
