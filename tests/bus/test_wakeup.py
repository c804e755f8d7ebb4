"""Idle means idle: an embedded-log member that found nothing looks less and less often, yet an append made in
the same process reaches it at once (casem.adapters.wakeup), not at its next look."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from casem.adapters import wakeup
from casem.adapters.bus import embedded
from casem.adapters.bus.embedded import EmbeddedBus
from casem.adapters.bus.port import ConsumerOptions


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
