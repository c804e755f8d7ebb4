"""The first message after a quiet spell when another process appends it to the embedded bus (case-intake appends,
case-indexer consumes; the relay appends, each handler flavor consumes).

usage: PYTHONPATH=. .venv/bin/python bench/bus_cross_process_wakeup.py [--quiet 3] [--samples 5]

A consumer (default bus settings) runs in this process. For each sample it is left idle for --quiet seconds (its
back-off has grown past a second), then a separate Python process appends one message; the latency is from that
process's wall clock right before its append to this process's wall clock when the message is returned by poll
(same machine, same clock). Measured twice: with the consumer's process unable to make FIFOs (os.mkfifo refused:
the append marker's once-a-second look wakes it, as before doorbells) and with its doorbell (casem.adapters.doorbell).
Beside them, the raw figures: one non-blocking os.write of a byte into a FIFO another process reads, and one
`Doorbells.ring()` (a stat of the directory and that write) to one listener in another process. Prints one JSON
object with the load average (the machine is shared: figures are noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _support import load_average  # noqa: E402

TOPIC = "bench-wakeup"


async def append_one(db: str) -> None:
    """The other process: one message, then print the wall-clock time its append began."""
    from casem.adapters.bus.embedded import EmbeddedBus

    bus = EmbeddedBus(db)
    producer = bus.producer()
    began = time.time()
    await producer.publish(TOPIC, None, b"after a quiet spell")
    print(began, flush=True)
    await producer.close()
    await bus.close()


def _refused(*_args: object, **_kwargs: object) -> None:
    raise OSError(1, "FIFOs refused for this measurement")


async def first_message_latencies(workdir: Path, doorbell: bool, quiet_s: float, samples: int) -> list[float]:
    from casem.adapters.bus.embedded import EmbeddedBus
    from casem.adapters.bus.port import ConsumerOptions

    db = workdir / f"bus-{'doorbell' if doorbell else 'marker'}.db"
    bus = EmbeddedBus(db)
    await bus.ensure_topic(TOPIC, 1)
    consumer = bus.consumer("bench", [TOPIC], ConsumerOptions("earliest"))
    real_mkfifo = getattr(os, "mkfifo", None)
    if not doorbell:
        os.mkfifo = _refused  # type: ignore[assignment]  # only while the consumer makes its doorbell
    try:
        await consumer.poll(10, timeout=0.05)
    finally:
        if real_mkfifo is not None:
            os.mkfifo = real_mkfifo
    latencies = []
    try:
        for _ in range(samples):
            idle = asyncio.get_running_loop().time() + quiet_s
            while (remaining := idle - asyncio.get_running_loop().time()) > 0:
                assert await consumer.poll(10, timeout=remaining) == []
            appending = asyncio.create_task(
                asyncio.to_thread(
                    subprocess.run,
                    [sys.executable, __file__, "--append-one", str(db)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
            )
            got: list[object] = []
            while not got:
                got = await consumer.poll(10, timeout=60)
            received = time.time()
            began = float((await appending).stdout.split()[-1])
            latencies.append(received - began)
            await consumer.commit({m.topic_partition: m.next_offset for m in got})  # type: ignore[attr-defined]
    finally:
        await consumer.close()
        await bus.close()
    return latencies


def raw_fifo_figures(workdir: Path, count: int) -> dict[str, float]:
    """A reader process holding a FIFO in the doorbell directory; the writes and rings timed in this process."""
    from casem.adapters.doorbell import Doorbells, doorbell_directory

    file = workdir / "raw.db"
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import asyncio, sys\n"
            "from casem.adapters.doorbell import listen\n"
            "async def main():\n"
            f"    print(listen({str(file)!r}, 'bench:raw').fifo, flush=True)\n"
            "    await asyncio.sleep(3600)\n"
            "asyncio.run(main())\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None
        fifo = reader.stdout.readline().strip()
        assert fifo and Path(fifo).parent == doorbell_directory(file)
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        writes = []
        for _ in range(count):
            started = time.perf_counter()
            with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending already
                os.write(fd, b"\0")
            writes.append(time.perf_counter() - started)
            time.sleep(0.001)  # the reader drains between writes, as between commits
        os.close(fd)
        bells = Doorbells(file)
        bells.ring()  # the first lists the directory and opens the FIFO
        rings = []
        for _ in range(count):
            started = time.perf_counter()
            bells.ring()
            rings.append(time.perf_counter() - started)
            time.sleep(0.001)
        bells.close()
    finally:
        reader.kill()
        reader.wait()
    return {
        "fifo_write_median_us": round(statistics.median(writes) * 1e6, 1),
        "fifo_write_max_us": round(max(writes) * 1e6, 1),
        "ring_one_listener_median_us": round(statistics.median(rings) * 1e6, 1),
        "ring_one_listener_max_us": round(max(rings) * 1e6, 1),
    }


def summary(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    return {"median_ms": round(statistics.median(ms), 1), "min_ms": round(ms[0], 1), "max_ms": round(ms[-1], 1)}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quiet", type=float, default=3.0)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--append-one", metavar="DB")
    args = parser.parse_args()
    if args.append_one:
        await append_one(args.append_one)
        return
    with tempfile.TemporaryDirectory(prefix="casem-bench-bus-wakeup-") as tmp:
        workdir = Path(tmp)
        marker = await first_message_latencies(workdir, False, args.quiet, args.samples)
        doorbell = await first_message_latencies(workdir, True, args.quiet, args.samples)
        raw = raw_fifo_figures(workdir, 200)
    result = {
        "quiet_s": args.quiet,
        "samples": args.samples,
        "first_message_cross_process_marker_only": summary(marker),
        "first_message_cross_process_doorbell": summary(doorbell),
        "raw": raw,
        "load_average": load_average(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
