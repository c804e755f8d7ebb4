"""The indexer's Batch step: index writes overlap, but batches are forwarded (and so committed) strictly in order."""

from __future__ import annotations

import asyncio

import pytest

from casem.adapters.bus.port import Message
from casem.adapters.bus.strategies import Batch


class Collect:
    """The next step: records what was forwarded to it."""

    def __init__(self) -> None:
        self.got: list[int] = []

    async def submit(self, message: Message) -> None:
        self.got.append(message.offset)

    async def poll(self) -> None: ...

    async def join(self, timeout: float | None = None) -> None: ...

    async def close(self) -> None: ...


def msg(offset: int) -> Message:
    return Message("case-intake", 0, offset, None, b"")


async def test_a_slow_first_write_does_not_block_later_writes_nor_reorder_them() -> None:
    release_first = asyncio.Event()
    started: list[int] = []

    async def index(batch: list[Message]) -> None:
        started.append(batch[0].offset)
        if batch[0].offset == 0:
            await release_first.wait()  # the engine's refresh wait, say

    collect = Collect()
    step = Batch(index, collect, max_batch=2, linger_s=0.0, max_pending=3)
    for i in range(6):
        await step.submit(msg(i))
    await asyncio.sleep(0.01)
    await step.poll()
    assert started == [0, 2, 4]  # all three writes run at once
    assert collect.got == []  # but nothing passes the unfinished first batch
    release_first.set()
    await asyncio.sleep(0.01)
    await step.poll()
    assert collect.got == [0, 1, 2, 3, 4, 5]


async def test_a_failed_write_forwards_nothing_from_it_onwards() -> None:
    async def index(batch: list[Message]) -> None:
        if batch[0].offset == 2:
            raise RuntimeError("engine down")

    collect = Collect()
    step = Batch(index, collect, max_batch=2, linger_s=0.0, max_pending=3)
    for i in range(6):
        await step.submit(msg(i))
    await asyncio.sleep(0.01)
    with pytest.raises(RuntimeError, match="engine down"):
        await step.poll()
    assert collect.got == [0, 1]  # offsets 2.. stay uncommitted: redelivered after a restart
    await step.close()


async def test_back_pressure_blocks_instead_of_buffering_without_bound() -> None:
    gate = asyncio.Event()

    async def index(batch: list[Message]) -> None:
        await gate.wait()

    step = Batch(index, Collect(), max_batch=1, linger_s=0.0, max_pending=2)
    await step.submit(msg(0))
    await step.submit(msg(1))
    await step.submit(msg(2))  # the buffer may hold one full batch beside the pending writes
    blocked = asyncio.create_task(step.submit(msg(3)))
    await asyncio.sleep(0.05)
    assert not blocked.done()
    gate.set()
    await asyncio.wait_for(blocked, 5)
    await step.join()
