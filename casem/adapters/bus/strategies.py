"""Consumer processing strategies: small steps composed into a pipeline (after Sentry's Arroyo).

A consumer loop (`StreamProcessor`) polls batches from a `Consumer` and submits each
message to the first step; each step hands messages on to the next once it is done with
them. The last step, `CommitOffsets`, commits offsets under an explicit `CommitPolicy`.
Two rules make the pipeline at-least-once and order-preserving:

* A step forwards messages in the order it received them, and only after their effect is
  complete, so a committed offset never passes a message whose effect is not durable.
* A step that is full raises `MessageRejected` from `submit`; the loop keeps the message
  and stops fetching until the step has room (back-pressure instead of unbounded buffers).

Example, a case-event-handler flavor::

    strategy = RunTask(handle_event, CommitOffsets(consumer, CommitPolicy(100, 1.0)), max_in_flight=64)
    await StreamProcessor(consumer, strategy).run()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from casem.adapters.bus.port import Consumer, Message, TopicPartition

log = logging.getLogger(__name__)


class MessageRejected(Exception):  # noqa: N818 - Arroyo's name for the back-pressure signal
    """The step is full; submit the same message again after `poll`."""


class ProcessingStrategy(Protocol):
    async def submit(self, message: Message) -> None:
        """Take a message, or raise MessageRejected."""
        ...

    async def poll(self) -> None:
        """Do due work (forward finished messages, time-based commits); raise a step's failure."""
        ...

    async def join(self, timeout: float | None = None) -> None:
        """Finish everything submitted and flush it downstream (graceful shutdown)."""
        ...

    async def close(self) -> None:
        """Abandon unfinished work (after a failure); finished work is still flushed."""
        ...


@dataclass(frozen=True)
class CommitPolicy:
    """Commit after `every_messages` messages or `every_seconds` seconds, whichever comes first.
    Fewer commits cost more redelivery after a crash; more commits cost broker round trips."""

    every_messages: int | None = 500
    every_seconds: float | None = 1.0

    def __post_init__(self) -> None:
        if self.every_messages is None and self.every_seconds is None:
            raise ValueError("a commit policy needs a message count or an interval")

    def due(self, pending_messages: int, since_last_commit_s: float) -> bool:
        if pending_messages == 0:
            return False
        if self.every_messages is not None and pending_messages >= self.every_messages:
            return True
        return self.every_seconds is not None and since_last_commit_s >= self.every_seconds


class CommitOffsets:
    """Terminal step: remembers the next offset of each partition and commits by policy."""

    def __init__(
        self, consumer: Consumer, policy: CommitPolicy | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._consumer = consumer
        self._policy = policy or CommitPolicy()
        self._clock = clock
        self._offsets: dict[TopicPartition, int] = {}
        self._pending = 0
        self._last_commit = clock()
        self.commits = 0  # how many commits reached the bus (observability, tests)

    async def submit(self, message: Message) -> None:
        tp = message.topic_partition
        # Offsets only grow within a partition, except after a seek back (replay): then the
        # replayed position wins, as the latest thing the pipeline finished.
        self._offsets[tp] = message.next_offset
        self._pending += 1
        await self._commit_if_due()

    async def poll(self) -> None:
        await self._commit_if_due()

    async def _commit_if_due(self) -> None:
        if self._policy.due(self._pending, self._clock() - self._last_commit):
            await self._commit()

    async def _commit(self) -> None:
        if self._offsets:
            offsets, self._offsets = self._offsets, {}
            self._pending = 0
            await self._consumer.commit(offsets)
            self.commits += 1
        self._last_commit = self._clock()

    async def join(self, timeout: float | None = None) -> None:
        await self._commit()

    async def close(self) -> None:
        # Everything recorded here finished its effect: committing it is still correct.
        await self._commit()


class RunTask:
    """Runs `fn` on each message, up to `max_in_flight` at once, then forwards it to `next_step`.

    Messages of one partition run one after another (per-key order holds because a key
    lives in one partition); different partitions run concurrently. Finished messages are
    forwarded in submission order. If `fn` fails, later messages of that partition do not
    run, and the failure is raised from `poll`/`join`: nothing at or after the failed
    message is forwarded, so its offset is never committed and it is redelivered.
    """

    def __init__(
        self,
        fn: Callable[[Message], Awaitable[None]],
        next_step: ProcessingStrategy,
        *,
        max_in_flight: int = 1,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._fn = fn
        self._next = next_step
        self._max_in_flight = max_in_flight
        self._in_flight: deque[tuple[Message, asyncio.Task[None]]] = deque()
        self._last_task: dict[TopicPartition, asyncio.Task[None]] = {}

    async def submit(self, message: Message) -> None:
        if len(self._in_flight) >= self._max_in_flight:
            raise MessageRejected
        previous = self._last_task.get(message.topic_partition)
        task = asyncio.create_task(self._run_after(previous, message))
        self._last_task[message.topic_partition] = task
        self._in_flight.append((message, task))

    async def _run_after(self, previous: asyncio.Task[None] | None, message: Message) -> None:
        if previous is not None:
            await previous  # re-raises the predecessor's failure: this message must not run
        await self._fn(message)

    async def poll(self) -> None:
        await self._forward_done()
        await self._next.poll()

    async def _forward_done(self) -> None:
        while self._in_flight and self._in_flight[0][1].done():
            message, task = self._in_flight[0]
            task.result()  # raises fn's failure; the message stays in flight, unforwarded
            self._in_flight.popleft()
            if self._last_task.get(message.topic_partition) is task:
                del self._last_task[message.topic_partition]
            await self._next.submit(message)

    async def wait_for_room(self, timeout: float) -> None:
        """Wait until the oldest in-flight message finishes (or timeout): back-pressure."""
        if self._in_flight:
            await asyncio.wait({self._in_flight[0][1]}, timeout=timeout)

    async def join(self, timeout: float | None = None) -> None:
        if self._in_flight:
            await asyncio.wait([t for _, t in self._in_flight], timeout=timeout)
        await self._forward_done()
        await self._next.join(timeout)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._forward_done()  # keep what finished before the failure
        for _, task in self._in_flight:
            task.cancel()
        await asyncio.gather(*(t for _, t in self._in_flight), return_exceptions=True)
        self._in_flight.clear()
        self._last_task.clear()
        await self._next.close()


class StreamProcessor:
    """The consumer loop: poll, submit, honour back-pressure, shut down gracefully on `stop`."""

    def __init__(
        self,
        consumer: Consumer,
        strategy: ProcessingStrategy,
        *,
        max_batch: int = 500,
        poll_timeout_s: float = 0.5,
        join_timeout_s: float | None = 30.0,
    ) -> None:
        self._consumer = consumer
        self._strategy = strategy
        self._max_batch = max_batch
        self._poll_timeout_s = poll_timeout_s
        self._join_timeout_s = join_timeout_s
        self._stopping = asyncio.Event()
        self.processed = 0  # messages accepted by the first step

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        carried: deque[Message] = deque()
        try:
            while not self._stopping.is_set():
                await self._strategy.poll()
                if not carried:
                    carried.extend(await self._consumer.poll(self._max_batch, self._poll_timeout_s))
                while carried:
                    try:
                        await self._strategy.submit(carried[0])
                    except MessageRejected:
                        # Full: stop fetching until the pipeline drains a little.
                        await self._wait_for_room()
                        break
                    carried.popleft()
                    self.processed += 1
        except BaseException:
            await self._strategy.close()
            raise
        # Messages still carried were never submitted: not committed, so redelivered later.
        await self._strategy.join(self._join_timeout_s)

    async def _wait_for_room(self) -> None:
        wait = getattr(self._strategy, "wait_for_room", None)
        if wait is not None:
            await wait(self._poll_timeout_s)
        else:
            await asyncio.sleep(0.01)
