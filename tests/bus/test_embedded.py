"""What only the embedded log must show: durability across processes on one machine."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from casem.adapters.bus import ConsumerOptions, OutgoingMessage, TopicPartition, open_bus
from casem.adapters.bus.embedded import EmbeddedBus
from tests.support.bus_harness import drain

REPO = Path(__file__).resolve().parents[2]


async def _run_worker(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.bus.embedded_worker",
        *args,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_log_and_offsets_survive_a_crashed_process(tmp_path: Path) -> None:
    db = tmp_path / "bus.db"
    bus = EmbeddedBus(db)
    await bus.ensure_topic("events", 1)
    producer = bus.producer()
    await producer.publish_batch([OutgoingMessage("events", b"k", b"%d" % i) for i in range(10)])
    await producer.close()
    await bus.close()

    # Another process consumes 4, commits, and dies without leaving the group.
    assert (await _run_worker(str(db), "consume-and-crash", "events", "handlers", "4")).strip() == "4"

    reopened = EmbeddedBus(db, heartbeat_interval_s=0.1)
    consumer = reopened.consumer("handlers", ["events"], ConsumerOptions(session_timeout_s=1.0))
    started = time.monotonic()
    # The dead member's lease expires after its 1 s session; then the partition resumes at 4.
    resumed = await drain(consumer, 6, timeout=15)
    assert [int(m.value) for m in resumed] == [4, 5, 6, 7, 8, 9]
    assert time.monotonic() - started < 10
    assert await consumer.committed([TopicPartition("events", 0)]) == {TopicPartition("events", 0): 4}
    await consumer.close()
    await reopened.close()


async def test_producers_in_several_processes_share_one_log(tmp_path: Path) -> None:
    db = tmp_path / "bus.db"
    bus = EmbeddedBus(db)
    await bus.ensure_topic("events", 1)
    await asyncio.gather(
        _run_worker(str(db), "produce", "events", "a", "200"),
        _run_worker(str(db), "produce", "events", "b", "200"),
    )
    got = await drain(bus.consumer("g", ["events"]), 400)
    assert [m.offset for m in got] == list(range(400))  # no offset given twice or skipped
    for tag in ("a", "b"):
        mine = [int(m.value.split(b":")[1]) for m in got if m.value.startswith(tag.encode())]
        assert mine == list(range(200))  # each producer's order is kept
    await bus.close()


async def test_open_bus_defaults_to_the_embedded_log_in_the_data_dir(tmp_path: Path) -> None:
    bus = open_bus({"CASEM_DATA_DIR": str(tmp_path)})
    assert isinstance(bus, EmbeddedBus)
    assert bus.path == tmp_path / "bus.db"
    await bus.close()
