"""Publishing intakes: concurrent requests share bus batches, and a bound on what is in flight.

Each Submit waits for its own acknowledgement, but requests arriving together are written in one
`publish_batch` (one SQLite transaction on the embedded bus, one round of produce calls on Kafka):
per-message transactions would cap throughput at the disk's fsync rate. Nothing is acknowledged to a
client before the bus acknowledged its message, and a message the bus did not take fails its request.

Back-pressure: at most `max_pending` messages wait or fly at once. Beyond that a request is refused at
once (`Backpressure` -> RESOURCE_EXHAUSTED with a retry delay) instead of queueing without bound while
the bus is slow.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass

import structlog

from casem.adapters.bus import Delivery, OutgoingMessage, Producer, PublishError

log = structlog.get_logger("case-intake.publisher")


class Backpressure(Exception):  # noqa: N818 - reads as "raise Backpressure(...)"
    """Too many intakes in flight: the caller should retry after a delay."""


@dataclass(frozen=True)
class PublisherSettings:
    max_pending: int = 20_000
    max_batch: int = 1_000
    linger_s: float = 0.002  # how long a lone message waits for company before it is sent
    max_batches_in_flight: int = 4


class IntakePublisher:
    def __init__(self, producer: Producer, settings: PublisherSettings | None = None) -> None:
        self._producer = producer
        self.settings = settings or PublisherSettings()
        self._queue: deque[tuple[OutgoingMessage, asyncio.Future[Delivery]]] = deque()
        self._pending = 0
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(self.settings.max_batches_in_flight)
        self._sending: set[asyncio.Task[None]] = set()
        self._flusher: asyncio.Task[None] | None = None
        self.available = True  # False after the bus failed a batch, until one succeeds (health)

    @property
    def pending(self) -> int:
        return self._pending

    async def publish(self, messages: list[OutgoingMessage]) -> list[Delivery]:
        """Deliveries in order once the bus acknowledged every message; raises the bus's error otherwise."""
        if self._pending + len(messages) > self.settings.max_pending:
            raise Backpressure(f"{self._pending} intakes already in flight (limit {self.settings.max_pending})")
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop())
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in messages]
        self._pending += len(messages)
        try:
            self._queue.extend(zip(messages, futures, strict=True))
            self._wake.set()
            results = await asyncio.gather(*futures, return_exceptions=True)
        finally:
            self._pending -= len(messages)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results  # type: ignore[return-value]

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if len(self._queue) < self.settings.max_batch:
                await asyncio.sleep(self.settings.linger_s)
            while self._queue:
                await self._slots.acquire()
                size = min(len(self._queue), self.settings.max_batch)
                batch = [self._queue.popleft() for _ in range(size)]
                task = asyncio.create_task(self._send(batch))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[OutgoingMessage, asyncio.Future[Delivery]]]) -> None:
        try:
            messages = [m for m, _ in batch]
            try:
                deliveries = await self._producer.publish_batch(messages)
            except PublishError as exc:
                self.available = False
                failed = {id(m) for m in exc.failed}
                delivered = iter(exc.delivered)
                for message, future in batch:
                    if future.done():
                        continue
                    if id(message) in failed:
                        future.set_exception(exc)
                    else:  # acknowledged although the batch as a whole failed
                        future.set_result(next(delivered))
                log.warning("bus refused intakes", failed=len(failed), error=str(exc))
                return
            except Exception as exc:  # anything else: no message of the batch may be assumed written
                self.available = False
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                log.warning("publishing intakes failed", error=repr(exc))
                return
            self.available = True
            for (_, future), delivery in zip(batch, deliveries, strict=True):
                if not future.done():
                    future.set_result(delivery)
        finally:
            self._slots.release()

    async def close(self) -> None:
        """Wait for batches being sent, then stop (callers stopped submitting: the server is stopped)."""
        while self._queue:
            self._wake.set()
            await asyncio.sleep(self.settings.linger_s)
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
