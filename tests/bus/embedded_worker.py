"""A separate process using the embedded bus, for tests/bus/test_embedded.py.

usage: python -m tests.bus.embedded_worker DB produce TOPIC TAG COUNT
       python -m tests.bus.embedded_worker DB produce-spaced TOPIC COUNT GAP_S
       python -m tests.bus.embedded_worker DB consume-and-crash TOPIC GROUP COMMIT_AFTER
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from casem.adapters.bus import ConsumerOptions, OutgoingMessage, TopicPartition
from casem.adapters.bus.embedded import EmbeddedBus


async def produce(db: str, topic: str, tag: str, count: int) -> None:
    bus = EmbeddedBus(db)
    producer = bus.producer()
    for i in range(0, count, 10):  # many small batches so two processes interleave
        await producer.publish_batch(
            [OutgoingMessage(topic, b"same-key", f"{tag}:{j}".encode()) for j in range(i, min(i + 10, count))]
        )
    await producer.close()
    await bus.close()


async def produce_spaced(db: str, topic: str, count: int, gap_s: float) -> None:
    """One message at a time, GAP_S apart; prints the wall-clock time each append began, one a line."""
    bus = EmbeddedBus(db)
    producer = bus.producer()
    for i in range(count):
        await asyncio.sleep(gap_s)
        began = time.time()
        await producer.publish(topic, None, str(i).encode())
        print(began, flush=True)
    await producer.close()
    await bus.close()


async def consume_and_crash(db: str, topic: str, group: str, commit_after: int) -> None:
    bus = EmbeddedBus(db)
    consumer = bus.consumer(group, [topic], ConsumerOptions(session_timeout_s=1.0))
    got = []
    while len(got) < commit_after:
        got += await consumer.poll(max_messages=commit_after - len(got), timeout=1.0)
    await consumer.commit({TopicPartition(topic, 0): got[-1].next_offset})
    print(got[-1].next_offset, flush=True)
    os._exit(0)  # a crash: no close, no leaving the group, leases left behind


if __name__ == "__main__":
    db, command, *args = sys.argv[1:]
    if command == "produce":
        asyncio.run(produce(db, args[0], args[1], int(args[2])))
    elif command == "produce-spaced":
        asyncio.run(produce_spaced(db, args[0], int(args[1]), float(args[2])))
    elif command == "consume-and-crash":
        asyncio.run(consume_and_crash(db, args[0], args[1], int(args[2])))
    else:
        raise SystemExit(f"unknown command {command}")
