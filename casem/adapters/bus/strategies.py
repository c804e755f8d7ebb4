"""Consumer processing strategies: small steps composed into a pipeline (after Sentry's Arroyo).

A consumer loop (`StreamProcessor`) polls batches from a `Consumer` and submits each
message to the first step; each step hands messages on to the next once it is done with
them. The last step, `CommitOffsets`, commits offsets under an explicit `CommitPolicy`.
Two rules make the pipeline at-least-once and order-preserving:

* A step forwards messages in the order it received them, and only after their effect is
  complete, so a committed offset never passes a message whose effect is not durable.
* A step that is full raises `MessageRejected` from `submit`; the loop keeps the message
  and stops fetching until the step has room (back-pressure instead of unbounded buffers).

The steps: `Filter` (skip messages, still commit them), `RunTask` (an effect per message, with
an optional `Retry` and `DeadLetterPolicy`), `Batch` (an effect per batch) and `CommitOffsets`.
`RetryPolicy` is the one shape of retry/back-off settings in casem, consumers or not.

Example, a case-event-handler flavor::

    dead_letters = DeadLetterPolicy(producer, lambda m: "flavor.dlq", {"flavor": "audit-trail"}, poison=(Poison,))
    strategy = RunTask(
        handle_event,
        CommitOffsets(consumer, CommitPolicy(100, 1.0)),
        max_in_flight=64,
        retry=RetryPolicy(max_attempts=5),
        dead_letter=dead_letters,
    )
    await StreamProcessor(consumer, strategy).run()
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from casem.adapters.bus.port import (
    BusUnavailable,
    Consumer,
    Delivery,
    Headers,
    Message,
    Producer,
    TopicPartition,
    polls_in_loop,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
MessageFn = Callable[[Message], Awaitable[None]]
# Which errors a policy means: exception classes, or a predicate on the error.
ErrorMatcher = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]


def _matches(matcher: ErrorMatcher, error: BaseException) -> bool:
    if isinstance(matcher, type | tuple):
        return isinstance(error, matcher)
    return matcher(error)


class MessageRejected(Exception):  # noqa: N818 - Arroyo's name for the back-pressure signal
    """The step is full; submit the same message again after `poll`."""


@dataclass(frozen=True)
class FilteredMessage(Message):
    """A message a `Filter` rejected. Later steps pass it on unprocessed, in its place among the
    others, so its offset is committed once everything before it is done."""

    @classmethod
    def of(cls, message: Message) -> FilteredMessage:
        return cls(**{f.name: getattr(message, f.name) for f in dataclasses.fields(Message)})


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


# Optional on a step: `bind_wake(wake)`. The step calls `wake()` when `poll` has something to do (a task
# finished, a linger or commit interval ran out), so the consumer loop polls it at once instead of after
# its next fetch; steps pass it on to the next one.
Wake = Callable[[], None]


def _bind_next(step: object, wake: Wake) -> None:
    bind = getattr(step, "bind_wake", None)
    if bind is not None:
        bind(wake)


def _no_wake() -> None:
    return None


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
        self.commit_waiting = False  # the last commit found the bus away; its offsets are kept for the next
        self._wake: Wake = _no_wake
        self._timer: asyncio.TimerHandle | None = None

    def bind_wake(self, wake: Wake) -> None:
        self._wake = wake

    async def submit(self, message: Message) -> None:
        tp = message.topic_partition
        # Offsets only grow within a partition, except after a seek back (replay): then the
        # replayed position wins, as the latest thing the pipeline finished.
        self._offsets[tp] = message.next_offset
        self._pending += 1
        await self._commit_if_due()
        if self._pending and self._timer is None and self._policy.every_seconds is not None:
            # The interval commit is due even if nothing else happens: be polled then.
            delay = max(0.0, self._policy.every_seconds - (self._clock() - self._last_commit))
            self._timer = asyncio.get_running_loop().call_later(delay, self._interval_due)

    def _interval_due(self) -> None:
        self._timer = None
        if self._pending and self._policy.every_seconds is not None:
            left = self._policy.every_seconds - (self._clock() - self._last_commit)
            if left > 0:  # fired early (see Batch._linger_due): the commit would not be due yet when polled
                self._timer = asyncio.get_running_loop().call_later(left, self._interval_due)
                return
        self._wake()

    async def poll(self) -> None:
        await self._commit_if_due()

    async def _commit_if_due(self) -> None:
        if self._policy.due(self._pending, self._clock() - self._last_commit):
            await self._commit()

    async def _commit(self) -> None:
        if self._offsets:
            offsets, self._offsets = self._offsets, {}
            pending, self._pending = self._pending, 0
            try:
                await self._consumer.commit(offsets)
            except BusUnavailable as error:
                # The work is done; only its offsets wait for the bus, and the next commit carries them (an
                # offset recorded meanwhile is newer and wins). A crash meanwhile redelivers (at-least-once).
                self._offsets = {**offsets, **self._offsets}
                self._pending += pending
                if not self.commit_waiting:
                    log.warning("offset commit waits for the bus: %s", error)
                self.commit_waiting = True
                self._last_commit = self._clock()
                return
            if self.commit_waiting:
                log.info("offset commit: the bus answers again")
            self.commit_waiting = False
            self.commits += 1
        self._last_commit = self._clock()

    async def join(self, timeout: float | None = None) -> None:
        await self._commit()

    async def close(self) -> None:
        # Everything recorded here finished its effect: committing it is still correct.
        await self._commit()


@dataclass(frozen=True)
class RetryPolicy:
    """How to retry a failing operation; the one shape of retry/back-off settings in casem.

    Up to `max_attempts` tries in all (None: until the `Retry` is stopped). After the n-th
    consecutive failure the wait is `initial_backoff_s * multiplier ** (n - 1)`, at most
    `max_backoff_s`. Only errors `retry_on` matches (exception classes or a predicate) are retried;
    any other error is raised at once. Errors `wait_on` matches (an engine being away, say) are not the
    work's fault: they are waited out with the same back-off, however long it takes, without using up an
    attempt, until the `Retry` is stopped.
    """

    max_attempts: int | None = 5
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 10.0
    multiplier: float = 2.0
    retry_on: ErrorMatcher = (Exception,)
    wait_on: ErrorMatcher = ()

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (or None: until stopped)")
        if not 0 <= self.initial_backoff_s <= self.max_backoff_s:
            raise ValueError("back-off must satisfy 0 <= initial_backoff_s <= max_backoff_s")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1: back-off never shrinks")

    def retryable(self, error: BaseException) -> bool:
        return _matches(self.retry_on, error)

    def waits_for(self, error: BaseException) -> bool:
        return _matches(self.wait_on, error)

    def backoff_s(self, failures: int) -> float:
        """The wait after the `failures`-th consecutive failure (1 for the first)."""
        if failures < 1:
            raise ValueError("failures counts from 1")
        try:
            delay = self.initial_backoff_s * self.multiplier ** (failures - 1)
        except OverflowError:  # retrying forever: the exponent outgrows a float long after the cap
            return self.max_backoff_s
        return min(delay, self.max_backoff_s)

    def delay_s(self, failures: int, error: BaseException) -> float:
        """The back-off, or longer when the error carries a receiver's Retry-After (`retry_after`, seconds),
        capped by `max_backoff_s`."""
        backoff = self.backoff_s(failures)
        asked = getattr(error, "retry_after", None)
        if isinstance(asked, int | float) and asked > backoff:
            return min(float(asked), self.max_backoff_s)
        return backoff

    def exhausted(self, attempts: int) -> bool:
        """Whether `attempts` tries are all this policy allows."""
        return self.max_attempts is not None and attempts >= self.max_attempts


# Called before each wait: (the error, the number of the attempt that failed, the wait in seconds,
# then the arguments of the call: the message, for a wrapped RunTask function).
RetryHook = Callable[..., None]


@dataclass
class _Attempts:
    count: int = 0
    gave_up: bool = False  # a retryable error outlasted the policy's attempts


class Retry:
    """Runs an async function under a `RetryPolicy`: retryable failures are retried after the
    policy's back-off; the last error is raised when it is not retryable, when the attempts are
    used up, or once `stop()` was called (a back-off in progress ends at once). `stop()` is how a
    policy without `max_attempts` ends: at shutdown, the work stays undone rather than failed.
    """

    def __init__(
        self, policy: RetryPolicy, *, on_retry: RetryHook | None = None, on_resumed: RetryHook | None = None
    ) -> None:
        self.policy = policy
        self._on_retry = on_retry
        # Called (with the last error waited out, then the call's arguments) when an attempt after waits for an
        # engine did not meet the outage again: the engine answers (a log line for when it is back).
        self._on_resumed = on_resumed
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopped(self) -> bool:
        return self._stopping.is_set()

    async def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """`await fn(*args)` until it succeeds or the policy gives up (then its last error is raised)."""
        return await self._call(fn, args, self.policy.retryable, _Attempts())

    def wrap(self, fn: MessageFn, dead_letter: DeadLetterPolicy | None = None) -> MessageFn:
        """A RunTask function that retries `fn`. With a dead-letter policy, a message whose error is
        poison (at once) or outlasted the retries is published to its dead-letter topic and counts as
        done, so it is committed after the dead letter is acknowledged; a failed dead-letter publish,
        an error neither retryable nor poison, and a retry cut short by `stop()` raise, leaving the
        message uncommitted."""

        def retryable(error: BaseException) -> bool:
            return self.policy.retryable(error) and not (dead_letter is not None and dead_letter.is_poison(error))

        async def with_retries(message: Message) -> None:
            attempts = _Attempts()
            try:
                await self._call(fn, (message,), retryable, attempts)
            except Exception as error:
                if dead_letter is None or not (attempts.gave_up or dead_letter.is_poison(error)):
                    raise
                await dead_letter.publish(message, error, attempts.count)

        return with_retries

    async def _call(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        retryable: Callable[[BaseException], bool],
        attempts: _Attempts,
    ) -> T:
        waits = 0
        waited_for: BaseException | None = None
        while True:
            attempts.count += 1
            try:
                result = await fn(*args)
            except Exception as error:
                if waited_for is not None and not self.policy.waits_for(error):
                    self._resumed(waited_for, args)
                    waited_for = None
                if self.policy.waits_for(error) and not self.stopped:
                    waited_for = error
                    attempts.count -= 1  # waiting for an engine to come back uses up no attempt
                    waits += 1
                    delay = self.policy.backoff_s(waits)
                    if self._on_retry is not None:
                        self._on_retry(error, attempts.count, delay, *args)
                    if await self._stopped_within(delay):
                        raise
                    continue
                waits = 0
                if not retryable(error) or self.stopped:
                    raise
                if self.policy.exhausted(attempts.count):
                    attempts.gave_up = True
                    raise
                delay = self.policy.delay_s(attempts.count, error)
                if self._on_retry is not None:
                    self._on_retry(error, attempts.count, delay, *args)
                if await self._stopped_within(delay):
                    raise
            else:
                if waited_for is not None:
                    self._resumed(waited_for, args)
                return result

    def _resumed(self, waited_for: BaseException, args: tuple[Any, ...]) -> None:
        if self._on_resumed is not None:
            self._on_resumed(waited_for, *args)

    async def _stopped_within(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        return self.stopped


# Dead letters carry the original key, value and headers, plus these headers (built only by
# `dead_letter_headers`, read back by `DeadLetterInfo.of`). Extra headers are named DLQ_PREFIX + name.
DLQ_PREFIX = "dlq_"
DLQ_ERROR = "dlq_error"  # what went wrong, at most MAX_DLQ_ERROR_CHARS characters
DLQ_ATTEMPTS = "dlq_attempts"  # how many times the message was tried
DLQ_SOURCE = "dlq_source"  # "topic/partition/offset" of the original message
DLQ_AT = "dlq_at"  # when it was dead-lettered (ISO 8601, UTC)
MAX_DLQ_ERROR_CHARS = 2000
_DLQ_OWN = frozenset({DLQ_ERROR, DLQ_ATTEMPTS, DLQ_SOURCE, DLQ_AT})


def dead_letter_headers(
    message: Message, error: str, attempts: int, extra: Mapping[str, str] | None = None, at: datetime | None = None
) -> Headers:
    """The headers of the dead letter of `message`: its own, then the dead-letter ones."""
    kept = tuple((name, value) for name, value in message.headers if not name.startswith(DLQ_PREFIX))
    added = {
        DLQ_ERROR: error[:MAX_DLQ_ERROR_CHARS],
        DLQ_ATTEMPTS: str(attempts),
        DLQ_SOURCE: f"{message.topic}/{message.partition}/{message.offset}",
        DLQ_AT: (at or datetime.now(UTC)).isoformat(),
    }
    for name, value in (extra or {}).items():
        if DLQ_PREFIX + name in _DLQ_OWN:
            raise ValueError(f"extra dead-letter header {name!r} would hide a standard one")
        added[DLQ_PREFIX + name] = value
    return kept + tuple((name, value.encode()) for name, value in added.items())


@dataclass(frozen=True)
class DeadLetterInfo:
    """The dead-letter headers of a dead letter, read back."""

    error: str
    attempts: int
    source: str
    at: str
    extra: Mapping[str, str]

    @classmethod
    def of(cls, headers: Headers) -> DeadLetterInfo:
        found = {name: value.decode(errors="replace") for name, value in headers if name.startswith(DLQ_PREFIX)}
        try:
            attempts = int(found.get(DLQ_ATTEMPTS) or 0)
        except ValueError:
            attempts = 0
        return cls(
            error=found.get(DLQ_ERROR, ""),
            attempts=attempts,
            source=found.get(DLQ_SOURCE, ""),
            at=found.get(DLQ_AT, ""),
            extra={name[len(DLQ_PREFIX) :]: value for name, value in found.items() if name not in _DLQ_OWN},
        )


class DeadLetterPolicy:
    """Where a message that cannot be processed goes: `topic_for(message)` through `producer`, with
    the original key, value and headers plus `dead_letter_headers` (`headers`: extra ones, such as
    {"flavor": name}). `poison` errors (classes or a predicate) are dead-lettered at once, without
    retries. `describe` turns the error into the header's text (default: a poison error's own
    message, "Type: message" for others). `on_dead_letter(message, error_text, attempts)` is called
    before publishing (metrics, logs)."""

    def __init__(
        self,
        producer: Producer,
        topic_for: Callable[[Message], str],
        headers: Mapping[str, str] | None = None,
        *,
        poison: ErrorMatcher = (),
        describe: Callable[[BaseException], str] | None = None,
        on_dead_letter: Callable[[Message, str, int], None] | None = None,
    ) -> None:
        self.producer = producer
        self.topic_for = topic_for
        self.headers = dict(headers or {})
        clash = {DLQ_PREFIX + name for name in self.headers} & _DLQ_OWN
        if clash:
            raise ValueError(f"extra dead-letter headers would hide standard ones: {sorted(clash)}")
        self._poison = poison
        self._describe = describe
        self._on_dead_letter = on_dead_letter

    def is_poison(self, error: BaseException) -> bool:
        return _matches(self._poison, error)

    def describe(self, error: BaseException) -> str:
        if self._describe is not None:
            return self._describe(error)
        if self.is_poison(error):
            return str(error) or type(error).__name__
        return f"{type(error).__name__}: {error}"

    async def publish(self, message: Message, error: BaseException, attempts: int) -> Delivery:
        """Publish the dead letter; returns once the bus acknowledged it, raises when it did not."""
        text = self.describe(error)
        if self._on_dead_letter is not None:
            self._on_dead_letter(message, text, attempts)
        headers = dead_letter_headers(message, text, attempts, self.headers)
        return await self.producer.publish(self.topic_for(message), message.key, message.value, headers)


async def _wait_for_room(step: ProcessingStrategy, timeout: float) -> None:
    wait = getattr(step, "wait_for_room", None)
    if wait is not None:
        await wait(timeout)
    else:
        await asyncio.sleep(0.01)


class Filter:
    """Passes on the messages `predicate` accepts; the others are not processed by later steps but
    still forwarded (as `FilteredMessage`) in their place, so offsets advance past them in order."""

    def __init__(self, predicate: Callable[[Message], bool], next_step: ProcessingStrategy) -> None:
        self._predicate = predicate
        self._next = next_step
        self.filtered = 0  # messages rejected so far (observability, tests)

    async def submit(self, message: Message) -> None:
        if isinstance(message, FilteredMessage) or self._predicate(message):
            await self._next.submit(message)
            return
        await self._next.submit(FilteredMessage.of(message))  # MessageRejected: counted when resubmitted
        self.filtered += 1

    async def poll(self) -> None:
        await self._next.poll()

    def bind_wake(self, wake: Wake) -> None:
        _bind_next(self._next, wake)

    async def wait_for_room(self, timeout: float) -> None:
        await _wait_for_room(self._next, timeout)

    async def join(self, timeout: float | None = None) -> None:
        await self._next.join(timeout)

    async def close(self) -> None:
        await self._next.close()


class RunTask:
    """Runs `fn` on each message, up to `max_in_flight` at once, then forwards it to `next_step`.

    Messages of one partition run one after another (per-key order holds because a key
    lives in one partition); different partitions run concurrently. Finished messages are
    forwarded in submission order. If `fn` fails, later messages of that partition do not
    run, and the failure is raised from `poll`/`join`: nothing at or after the failed
    message is forwarded, so its offset is never committed and it is redelivered.

    `retry` retries `fn` (see `Retry.wrap`); `dead_letter` sends poison messages, and those
    whose retries ran out, to their dead-letter topic, then forwards them once the dead letter
    is acknowledged. Without `retry`, only poison errors are dead-lettered; others fail as above.
    A `FilteredMessage` is forwarded in its place without running `fn`.
    """

    def __init__(
        self,
        fn: MessageFn,
        next_step: ProcessingStrategy,
        *,
        max_in_flight: int = 1,
        retry: Retry | RetryPolicy | None = None,
        dead_letter: DeadLetterPolicy | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if retry is not None or dead_letter is not None:
            if not isinstance(retry, Retry):
                retry = Retry(retry or RetryPolicy(max_attempts=1, retry_on=()))
            fn = retry.wrap(fn, dead_letter)
        self._fn = fn
        self._next = next_step
        self._max_in_flight = max_in_flight
        self._in_flight: deque[tuple[Message, asyncio.Future[None]]] = deque()
        self._last_task: dict[TopicPartition, asyncio.Future[None]] = {}
        self._wake: Wake = _no_wake

    def bind_wake(self, wake: Wake) -> None:
        self._wake = wake
        _bind_next(self._next, wake)

    async def submit(self, message: Message) -> None:
        if len(self._in_flight) >= self._max_in_flight:
            raise MessageRejected
        if isinstance(message, FilteredMessage):
            self._in_flight.append((message, _done()))
            self._wake()
            return
        previous = self._last_task.get(message.topic_partition)
        task = asyncio.create_task(self._run_after(previous, message))
        task.add_done_callback(lambda _task: self._wake())
        self._last_task[message.topic_partition] = task
        self._in_flight.append((message, task))

    async def _run_after(self, previous: asyncio.Future[None] | None, message: Message) -> None:
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


def _done() -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


class Batch:
    """Collects messages into batches of up to `max_batch` (or what arrived within `linger_s`), runs
    `fn(batch)` on each in the background, then forwards the batch's messages in order.

    Up to `max_pending` batches run at once, so a slow one (an index write waiting for the engine's
    refresh) does not stall the steps before; batches are forwarded (and so committed) strictly in
    order, and a failed one stops forwarding there, raising its failure from `poll`/`join`. When the
    buffer is full and every slot busy, `submit` waits for the oldest batch (back-pressure by blocking,
    never unbounded buffering). `FilteredMessage`s keep their place but are not given to `fn`.
    """

    def __init__(
        self,
        fn: Callable[[list[Message]], Awaitable[None]],
        next_step: ProcessingStrategy,
        *,
        max_batch: int,
        linger_s: float,
        max_pending: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_batch < 1 or max_pending < 1:
            raise ValueError("max_batch and max_pending must be at least 1")
        self._fn = fn
        self._next = next_step
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._max_pending = max_pending
        self._clock = clock
        self._buffer: list[Message] = []
        self._since = 0.0
        self._pending: deque[tuple[list[Message], asyncio.Future[None]]] = deque()
        self._wake: Wake = _no_wake
        self._linger_timer: asyncio.TimerHandle | None = None

    def bind_wake(self, wake: Wake) -> None:
        self._wake = wake
        _bind_next(self._next, wake)

    async def submit(self, message: Message) -> None:
        # Never refuse: the previous step has already handed the message over. When every slot is
        # busy and the buffer is full, wait for the oldest batch instead.
        while len(self._buffer) >= self._max_batch and len(self._pending) >= self._max_pending:
            await asyncio.wait({self._pending[0][1]})
            await self._forward_done()
        if not self._buffer:
            self._since = self._clock()
            self._arm_linger(self._linger_s)  # poll me when it is time to go
        self._buffer.append(message)
        if len(self._buffer) >= self._max_batch and len(self._pending) < self._max_pending:
            self._start()

    def _arm_linger(self, delay: float) -> None:
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        self._linger_timer = asyncio.get_running_loop().call_later(delay, self._linger_due)

    def _linger_due(self) -> None:
        """The buffer's linger timer: have the loop poll this step once its oldest message has waited `linger_s` by
        this step's clock. An event loop may fire a timer a little early (uvloop's runs on libuv's millisecond
        clock): then `poll` would find the batch not due yet, and nothing else might wake the loop for as long as
        the consumer's fetch waits (a minute, idle). So an early timer sets another for the rest."""
        self._linger_timer = None
        if not self._buffer:
            return  # started already, full
        left = self._linger_s - (self._clock() - self._since)
        if left > 0:
            self._arm_linger(left)
            return
        self._wake()

    def _start(self) -> None:
        batch, self._buffer = self._buffer, []
        work = [m for m in batch if not isinstance(m, FilteredMessage)]
        task = asyncio.ensure_future(self._fn(work)) if work else _done()
        task.add_done_callback(lambda _task: self._wake())
        self._pending.append((batch, task))

    async def _forward_done(self) -> None:
        while self._pending and self._pending[0][1].done():
            batch, task = self._pending[0]
            task.result()  # raises fn's failure: nothing of this batch (or later) is forwarded
            self._pending.popleft()
            for message in batch:
                await self._next.submit(message)

    async def poll(self) -> None:
        await self._forward_done()
        if (
            self._buffer
            and len(self._pending) < self._max_pending
            and (len(self._buffer) >= self._max_batch or self._clock() - self._since >= self._linger_s)
        ):
            self._start()
        await self._next.poll()

    async def wait_for_room(self, timeout: float) -> None:
        if self._pending:
            await asyncio.wait({self._pending[0][1]}, timeout=timeout)

    async def join(self, timeout: float | None = None) -> None:
        if self._buffer:
            self._start()
        if self._pending:
            await asyncio.wait([t for _, t in self._pending], timeout=timeout)
        await self._forward_done()
        await self._next.join(timeout)

    async def close(self) -> None:
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        self._buffer.clear()  # not processed, so not committed: redelivered
        with contextlib.suppress(Exception):
            await self._forward_done()  # keep what finished before the failure
        for _, task in self._pending:
            task.cancel()
        await asyncio.gather(*(t for _, t in self._pending), return_exceptions=True)
        self._pending.clear()
        await self._next.close()


class StreamProcessor:
    """The consumer loop: poll, submit, honour back-pressure, shut down gracefully on `stop`.

    While a fetch waits for messages (up to `poll_timeout_s`), the loop also wakes when a step asks to be
    polled (`bind_wake`), so finished work moves on and lingering batches go at once, not after the fetch.
    A consumer whose poll waits on the event loop (`polls_in_loop`: the embedded log) is polled with
    `loop_poll_timeout_s` instead: an idle loop then sleeps until a message, a step's wake or `stop`, rather
    than starting a fetch twice a second; on `stop` that fetch is cancelled, not waited for."""

    def __init__(
        self,
        consumer: Consumer,
        strategy: ProcessingStrategy,
        *,
        max_batch: int = 500,
        poll_timeout_s: float = 0.5,
        loop_poll_timeout_s: float = 60.0,
        join_timeout_s: float | None = 30.0,
    ) -> None:
        self._consumer = consumer
        self._strategy = strategy
        self._max_batch = max_batch
        self._polls_in_loop = polls_in_loop(consumer)
        self._poll_timeout_s = loop_poll_timeout_s if self._polls_in_loop else poll_timeout_s
        self._join_timeout_s = join_timeout_s
        self._stopping = asyncio.Event()
        self._woken = asyncio.Event()
        # Resolved by a wake or `stop` while the loop waits: one future, not a task per event per wait (idle cost).
        self._attention: asyncio.Future[None] | None = None
        _bind_next(strategy, self._wake)
        self.processed = 0  # messages accepted by the first step

    def stop(self) -> None:
        self._stopping.set()
        self._nudge()

    def _wake(self) -> None:
        self._woken.set()
        self._nudge()

    def _nudge(self) -> None:
        if self._attention is not None and not self._attention.done():
            self._attention.set_result(None)

    async def run(self) -> None:
        carried: deque[Message] = deque()
        fetch: asyncio.Future[list[Message]] | None = None
        try:
            while not self._stopping.is_set():
                self._woken.clear()
                await self._strategy.poll()
                while carried:
                    try:
                        await self._strategy.submit(carried[0])
                    except MessageRejected:
                        break
                    carried.popleft()
                    self.processed += 1
                if carried:
                    # Full: stop fetching until the pipeline drains a little.
                    await self._wait_for_room()
                    continue
                if fetch is None:
                    fetch = asyncio.ensure_future(self._consumer.poll(self._max_batch, self._poll_timeout_s))
                await self._wait_for(fetch)
                if fetch.done():
                    carried.extend(fetch.result())
                    fetch = None
        except BaseException:
            await self._abandon(fetch)
            await self._strategy.close()
            raise
        # Messages fetched or carried but never submitted are not committed, so redelivered later.
        await self._abandon(fetch)
        await self._strategy.join(self._join_timeout_s)

    async def _wait_for(self, fetch: asyncio.Future[list[Message]]) -> None:
        """Until the fetch returns, a step asks to be polled, or `stop`."""
        if self._woken.is_set() or self._stopping.is_set():
            return
        attention = asyncio.get_running_loop().create_future()
        self._attention = attention
        try:
            await asyncio.wait({fetch, attention}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._attention = None
            attention.cancel()

    async def _abandon(self, fetch: asyncio.Future[list[Message]] | None) -> None:
        if fetch is not None:
            if self._polls_in_loop:
                fetch.cancel()  # a long idle wait: nothing it fetched was submitted, so nothing is lost
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await fetch  # the consumer's own call finishes within its timeout; its messages are dropped

    async def _wait_for_room(self) -> None:
        await _wait_for_room(self._strategy, self._poll_timeout_s)
