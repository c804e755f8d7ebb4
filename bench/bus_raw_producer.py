"""Raw producer rate of the bus: N messages of 1 KiB, keyed, acknowledged, as JSON.

usage: .venv/bin/python bench/bus_raw_producer.py [--bootstrap 127.0.0.1:59092 | --embedded PATH]
       [--messages 200000] [--batch 1000] [--concurrency 4] [--partitions 8] [--size 1024]

Several batches are kept in flight (--concurrency) so the producer's pipeline stays full;
the clock stops when the last acknowledgement arrives. The run is bounded by --messages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid

from casem.adapters.bus import Bus, OutgoingMessage


async def run(args: argparse.Namespace) -> dict[str, object]:
    bus: Bus
    if args.embedded:
        from casem.adapters.bus.embedded import EmbeddedBus

        bus = EmbeddedBus(args.embedded)
        target = f"embedded:{args.embedded}"
    else:
        from casem.adapters.bus.kafka import KafkaBus

        bus = KafkaBus(args.bootstrap)
        target = f"kafka:{args.bootstrap}"
    topic = f"bench-raw-producer-{uuid.uuid4().hex[:8]}"
    await bus.ensure_topic(topic, args.partitions)
    producer = bus.producer()
    payload = os.urandom(args.size)
    batches = [
        [
            OutgoingMessage(topic, b"case-%d" % (i % 10_000), payload)
            for i in range(start, min(start + args.batch, args.messages))
        ]
        for start in range(0, args.messages, args.batch)
    ]
    queue: asyncio.Queue[list[OutgoingMessage]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)

    async def lane() -> int:
        sent = 0
        while not queue.empty():
            sent += len(await producer.publish_batch(queue.get_nowait()))
        return sent

    started = time.perf_counter()
    acknowledged = sum(await asyncio.gather(*(lane() for _ in range(args.concurrency))))
    elapsed = time.perf_counter() - started
    await producer.close()
    await bus.close()
    return {
        "bench": "bus_raw_producer",
        "target": target,
        "messages": acknowledged,
        "message_bytes": args.size,
        "batch": args.batch,
        "concurrency": args.concurrency,
        "partitions": args.partitions,
        "seconds": round(elapsed, 3),
        "msgs_per_s": round(acknowledged / elapsed),
        "mib_per_s": round(acknowledged * args.size / elapsed / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("CASEM_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:59092"))
    parser.add_argument("--embedded", help="benchmark the embedded log at this path instead")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--size", type=int, default=1024)
    print(json.dumps(asyncio.run(run(parser.parse_args()))))


if __name__ == "__main__":
    main()
