"""The consumer strategy layer (Filter, RunTask with Retry and DeadLetterPolicy, Batch, CommitOffsets,
StreamProcessor) on the embedded log; the dead-letter policy also on Kafka."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from casem.adapters.bus import (
    BusUnavailable,
    Consumer,
    Message,
    OutgoingMessage,
    PublishError,
    TopicPartition,
    partition_for,
)
from casem.adapters.bus.embedded import EmbeddedBus
from casem.adapters.bus.strategies import (
    MAX_DLQ_ERROR_CHARS,
    Batch,
    CommitOffsets,
    CommitPolicy,
    DeadLetterInfo,
    DeadLetterPolicy,
    Filter,
    FilteredMessage,
    MessageRejected,
    Retry,
    RetryPolicy,
    RunTask,
    StreamProcessor,
    dead_letter_headers,
)
from tests.support.bus_harness import Harness, drain, until


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedBus]:
    bus = EmbeddedBus(tmp_path / "bus.db", heartbeat_interval_s=0.1)
    yield bus
    await bus.close()


async def _publish(bus: EmbeddedBus, topic: str, partitions: int, keys: int, per_key: int) -> None:
    await bus.ensure_topic(topic, partitions)
    producer = bus.producer()
    await producer.publish_batch(
        [OutgoingMessage(topic, b"key-%d" % k, b"%d" % n) for n in range(per_key) for k in range(keys)]
    )
    await producer.close()


async def _run_until(processor: StreamProcessor, done: asyncio.Event, timeout: float = 20) -> None:
    task = asyncio.create_task(processor.run())
    waiter = asyncio.create_task(done.wait())
    finished, _ = await asyncio.wait({task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    processor.stop()
    waiter.cancel()
    await asyncio.wait_for(task, timeout=timeout)  # re-raises the processor's failure


def test_commit_policy_counts_and_time() -> None:
    policy = CommitPolicy(every_messages=3, every_seconds=2.0)
    assert not policy.due(0, 100.0)  # nothing to commit is never due
    assert not policy.due(2, 1.0)
    assert policy.due(3, 0.0)
    assert policy.due(1, 2.0)
    assert not CommitPolicy(every_messages=None, every_seconds=5).due(1000, 1.0)
    with pytest.raises(ValueError):
        CommitPolicy(every_messages=None, every_seconds=None)


async def test_commit_offsets_commits_every_n_messages_and_after_the_interval(bus: EmbeddedBus) -> None:
    await _publish(bus, "t", 1, 1, 10)
    consumer = bus.consumer("g", ["t"])
    now = [0.0]
    step = CommitOffsets(consumer, CommitPolicy(every_messages=4, every_seconds=10), clock=lambda: now[0])
    messages = await consumer.poll(10, timeout=5)
    assert len(messages) == 10
    tp = TopicPartition("t", 0)
    for m in messages[:9]:
        await step.submit(m)
    assert step.commits == 2
    assert await consumer.committed([tp]) == {tp: 8}
    await step.poll()
    assert step.commits == 2  # the 9th waits for the count or the clock
    now[0] = 10.0
    await step.poll()
    assert await consumer.committed([tp]) == {tp: 9}
    await step.submit(messages[9])
    await step.join()
    assert await consumer.committed([tp]) == {tp: 10}
    await consumer.close()


class CommitsAway:
    """A consumer of the embedded log whose offset commits find the bus away while `away` is set: what a Kafka outage
    gives CommitOffsets (the Kafka consumer raises BusUnavailable when the group's coordinator cannot be reached)."""

    def __init__(self, inner: Consumer) -> None:
        self.inner = inner
        self.away = True
        self.refused = 0

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self.away:
            self.refused += 1
            raise BusUnavailable("offset commit: Kafka unreachable: coordinator away")
        await self.inner.commit(offsets)


async def test_commit_offsets_keeps_what_the_bus_could_not_take_and_commits_it_once_back(bus: EmbeddedBus) -> None:
    await _publish(bus, "t", 1, 1, 6)
    consumer = bus.consumer("g", ["t"])
    gate = CommitsAway(consumer)
    step = CommitOffsets(gate, CommitPolicy(every_messages=2, every_seconds=None))  # type: ignore[arg-type]
    messages = await consumer.poll(6, timeout=5)
    tp = TopicPartition("t", 0)
    for m in messages[:4]:
        await step.submit(m)  # commits due at 2, 3 and 4 pending: each finds the bus away, and nothing is raised
    assert (gate.refused, step.commits, step.commit_waiting) == (3, 0, True)
    assert await consumer.committed([tp]) == {tp: None}
    gate.away = False
    await step.submit(messages[4])  # the kept offsets are still due: the newest of the partition goes
    assert (step.commits, step.commit_waiting) == (1, False)
    assert await consumer.committed([tp]) == {tp: 5}
    await step.submit(messages[5])
    await step.join()
    assert await consumer.committed([tp]) == {tp: 6}
    await consumer.close()


async def test_pipeline_processes_every_message_in_key_order_and_commits(bus: EmbeddedBus) -> None:
    await _publish(bus, "events", partitions=4, keys=8, per_key=25)
    seen: dict[bytes, list[int]] = defaultdict(list)
    running = 0
    peak = 0
    done = asyncio.Event()

    async def effect(message: Message) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(random.uniform(0, 0.003))
        running -= 1
        assert message.key is not None
        seen[message.key].append(int(message.value))
        if sum(map(len, seen.values())) == 200:
            done.set()

    consumer = bus.consumer("flavor", ["events"])
    commit = CommitOffsets(consumer, CommitPolicy(every_messages=50, every_seconds=0.5))
    processor = StreamProcessor(consumer, RunTask(effect, commit, max_in_flight=16), max_batch=64)
    await _run_until(processor, done)

    assert dict(seen) == {b"key-%d" % k: list(range(25)) for k in range(8)}
    assert peak > 1  # partitions really ran concurrently
    partitions = [TopicPartition("events", p) for p in range(4)]
    committed = await consumer.committed(partitions)
    ends: dict[int, int] = defaultdict(int)
    for k in range(8):
        ends[partition_for(b"key-%d" % k, 4)] += 25
    assert committed == {TopicPartition("events", p): ends.get(p) for p in range(4)}
    await consumer.close()


async def test_a_failed_effect_stops_the_commit_before_it_and_is_redelivered(bus: EmbeddedBus) -> None:
    await _publish(bus, "events", partitions=1, keys=1, per_key=10)
    effects: list[int] = []

    async def flaky(message: Message) -> None:
        if int(message.value) == 6:
            raise RuntimeError("downstream is down")
        effects.append(int(message.value))

    consumer = bus.consumer("flavor", ["events"])
    processor = StreamProcessor(
        consumer, RunTask(flaky, CommitOffsets(consumer, CommitPolicy(every_messages=1)), max_in_flight=4)
    )
    with pytest.raises(RuntimeError, match="downstream is down"):
        await asyncio.wait_for(processor.run(), timeout=20)
    assert effects == [0, 1, 2, 3, 4, 5]  # nothing after the failure ran
    tp = TopicPartition("events", 0)
    assert await consumer.committed([tp]) == {tp: 6}
    await consumer.close()

    # After the fix, a new member starts exactly at the failed message.
    retried: list[int] = []
    done = asyncio.Event()

    async def fixed(message: Message) -> None:
        retried.append(int(message.value))
        if len(retried) == 4:
            done.set()

    consumer = bus.consumer("flavor", ["events"])
    await _run_until(StreamProcessor(consumer, RunTask(fixed, CommitOffsets(consumer))), done)
    assert retried == [6, 7, 8, 9]
    assert await consumer.committed([tp]) == {tp: 10}
    await consumer.close()


async def test_in_flight_is_bounded_and_stop_finishes_the_work_in_flight(bus: EmbeddedBus) -> None:
    await _publish(bus, "events", partitions=8, keys=64, per_key=1)
    release = asyncio.Event()
    started: list[int] = []
    finished: list[Message] = []

    async def slow(message: Message) -> None:
        started.append(int(message.value))
        await release.wait()
        finished.append(message)

    consumer = bus.consumer("flavor", ["events"])
    run_task = RunTask(
        slow, CommitOffsets(consumer, CommitPolicy(every_messages=1000, every_seconds=None)), max_in_flight=3
    )
    # Batches of one: the embedded consumer rotates partitions between polls, so the three
    # in flight come from three partitions and can run at once.
    processor = StreamProcessor(consumer, run_task, max_batch=1)
    task = asyncio.create_task(processor.run())
    for _ in range(100):
        if len(started) == 3:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # give the loop time to overrun the bound, if it could
    assert len(started) == 3 and processor.processed == 3  # the rest is held back, not buffered
    with pytest.raises(MessageRejected):
        await run_task.submit(Message("events", 0, 999, b"k", b"x"))

    processor.stop()
    release.set()
    await asyncio.wait_for(task, timeout=10)
    # Stopping waited for the three in flight and committed exactly them.
    assert len(finished) == 3
    expected = {m.topic_partition: m.next_offset for m in finished}
    assert await consumer.committed(list(expected)) == expected
    await consumer.close()


class Collect:
    """A last step that records what reached it."""

    def __init__(self) -> None:
        self.got: list[Message] = []

    @property
    def offsets(self) -> list[int]:
        return [m.offset for m in self.got]

    async def submit(self, message: Message) -> None:
        self.got.append(message)

    async def poll(self) -> None: ...

    async def join(self, timeout: float | None = None) -> None: ...

    async def close(self) -> None: ...


def msg(offset: int, partition: int = 0, value: bytes = b"") -> Message:
    return Message("events", partition, offset, b"k", value)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


# --- RetryPolicy and Retry ------------------------------------------------------------------------


def test_retry_policy_backs_off_exponentially_up_to_the_cap_and_counts_attempts() -> None:
    policy = RetryPolicy(max_attempts=4, initial_backoff_s=0.1, max_backoff_s=1.0, multiplier=3.0)
    assert [policy.backoff_s(n) for n in range(1, 6)] == pytest.approx([0.1, 0.3, 0.9, 1.0, 1.0])
    assert not policy.exhausted(3) and policy.exhausted(4)
    forever = RetryPolicy(max_attempts=None, initial_backoff_s=0.5, max_backoff_s=30.0)
    assert not forever.exhausted(10**6)
    assert forever.backoff_s(5000) == 30.0  # no float overflow however long it retries
    with pytest.raises(ValueError):
        policy.backoff_s(0)
    for bad in (
        {"max_attempts": 0},
        {"initial_backoff_s": 2.0, "max_backoff_s": 1.0},
        {"initial_backoff_s": -1.0},
        {"multiplier": 0.5},
    ):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)  # type: ignore[arg-type]


def test_retry_policy_matches_errors_by_class_or_predicate() -> None:
    by_class = RetryPolicy(retry_on=(ConnectionError, TimeoutError))
    assert by_class.retryable(ConnectionResetError()) and by_class.retryable(TimeoutError())
    assert not by_class.retryable(ValueError())
    assert RetryPolicy(retry_on=OSError).retryable(ConnectionError())
    by_predicate = RetryPolicy(retry_on=lambda e: "transient" in str(e))
    assert by_predicate.retryable(RuntimeError("transient glitch")) and not by_predicate.retryable(RuntimeError("no"))
    assert RetryPolicy().retryable(RuntimeError())  # default: any Exception


async def test_retry_retries_transient_failures_with_the_policys_back_off() -> None:
    calls: list[str] = []
    waits: list[tuple[int, float, str]] = []

    async def flaky(name: str) -> str:
        calls.append(name)
        if len(calls) < 4:
            raise ConnectionError(f"down {len(calls)}")
        return f"hello {name}"

    retry = Retry(
        RetryPolicy(max_attempts=5, initial_backoff_s=0.01, max_backoff_s=0.03, retry_on=ConnectionError),
        on_retry=lambda error, attempt, delay, name: waits.append((attempt, delay, f"{name}: {error}")),
    )
    assert await retry.call(flaky, "ann") == "hello ann"
    assert calls == ["ann"] * 4
    assert waits == [(1, 0.01, "ann: down 1"), (2, 0.02, "ann: down 2"), (3, 0.03, "ann: down 3")]


async def test_retry_raises_non_retryable_errors_at_once_and_the_last_error_when_attempts_run_out() -> None:
    calls = 0

    async def fails(error: Exception) -> None:
        nonlocal calls
        calls += 1
        raise error

    retry = Retry(RetryPolicy(max_attempts=3, initial_backoff_s=0.001, max_backoff_s=0.001, retry_on=ConnectionError))
    with pytest.raises(ValueError, match="bad input"):
        await retry.call(fails, ValueError("bad input"))
    assert calls == 1
    calls = 0
    with pytest.raises(ConnectionError, match="still down"):
        await retry.call(fails, ConnectionError("still down"))
    assert calls == 3


async def test_retry_without_a_limit_retries_until_stopped_and_stop_cuts_the_back_off_short() -> None:
    failures: list[int] = []

    async def unavailable() -> None:
        raise ConnectionError("unavailable")

    retry = Retry(
        RetryPolicy(max_attempts=None, initial_backoff_s=0.001, max_backoff_s=60.0, multiplier=10.0),
        on_retry=lambda error, attempt, delay: failures.append(attempt),
    )
    task = asyncio.create_task(retry.call(unavailable))
    assert await until(lambda: _true(len(failures) >= 4), timeout=10, interval=0.01)  # waiting 1s, then 10s...
    assert not task.done()  # a limitless policy never gives up by itself
    started = time.monotonic()
    retry.stop()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(task, 5)
    assert time.monotonic() - started < 5  # the long back-off ended at stop()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(retry.call(unavailable), 1)  # once stopped, no more retries
    assert retry.stopped


async def test_retry_tells_when_an_engine_it_waited_for_answers_again() -> None:
    answers: list[Exception | None] = [ConnectionError("away 1"), ConnectionError("away 2"), None]
    resumed: list[tuple[str, str]] = []

    async def engine(name: str) -> str:
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        return name

    retry = Retry(
        RetryPolicy(max_attempts=1, initial_backoff_s=0.001, max_backoff_s=0.001, retry_on=(), wait_on=ConnectionError),
        on_resumed=lambda waited_for, name: resumed.append((str(waited_for), name)),
    )
    assert await retry.call(engine, "db") == "db"
    assert resumed == [("away 2", "db")]  # once, after the waits, with the last outage seen
    answers[:] = [None]
    assert await retry.call(engine, "db") == "db"
    assert resumed == [("away 2", "db")]  # a call that did not wait resumes nothing

    # The engine answers but the work fails otherwise: the engine is back all the same.
    answers[:] = [ConnectionError("away 3"), ValueError("bad input")]
    with pytest.raises(ValueError):
        await retry.call(engine, "db")
    assert resumed[-1] == ("away 3", "db")


async def _true(value: bool) -> bool:
    return value


# --- Filter ---------------------------------------------------------------------------------------


async def test_filter_skips_rejected_messages_but_forwards_them_in_order() -> None:
    gate = asyncio.Event()
    ran: list[int] = []

    async def effect(message: Message) -> None:
        if message.offset == 0:
            await gate.wait()
        ran.append(message.offset)

    collect = Collect()
    step = Filter(lambda m: m.value != b"skip", RunTask(effect, collect, max_in_flight=8))
    for offset, value in enumerate([b"do", b"skip", b"do", b"skip"]):
        await step.submit(msg(offset, value=value))
    await settle()
    await step.poll()
    assert collect.offsets == []  # the skipped ones wait behind the unfinished first message
    gate.set()
    await settle()
    await step.poll()
    assert ran == [0, 2]  # rejected messages are not processed...
    assert collect.offsets == [0, 1, 2, 3]  # ...but forwarded, in their place, for the commit
    assert [isinstance(m, FilteredMessage) for m in collect.got] == [False, True, False, True]
    assert collect.got[1].value == b"skip" and step.filtered == 2
    await step.join()


async def test_filtered_messages_are_committed_so_offsets_advance(bus: EmbeddedBus) -> None:
    await _publish(bus, "events", partitions=2, keys=4, per_key=10)
    handled: list[int] = []
    done = asyncio.Event()

    async def effect(message: Message) -> None:
        handled.append(int(message.value))
        if len(handled) == 20:
            done.set()

    consumer = bus.consumer("flavor", ["events"])
    commit = CommitOffsets(consumer, CommitPolicy(every_messages=5, every_seconds=0.1))
    strategy = Filter(lambda m: int(m.value) % 2 == 1, RunTask(effect, commit, max_in_flight=4))
    await _run_until(StreamProcessor(consumer, strategy, max_batch=7), done)
    assert sorted(handled) == sorted([n for n in range(10) for _ in range(4) if n % 2 == 1])
    partitions = [TopicPartition("events", p) for p in range(2)]
    ends: dict[int, int] = defaultdict(int)
    for k in range(4):
        ends[partition_for(b"key-%d" % k, 2)] += 10
    # Every offset is committed, the skipped ones included: nothing is redelivered.
    assert await consumer.committed(partitions) == {tp: ends.get(tp.partition) for tp in partitions}
    await consumer.close()


# --- Batch ----------------------------------------------------------------------------------------


async def test_batch_writes_a_partial_batch_after_the_linger_and_forwards_it() -> None:
    now = [0.0]
    batches: list[list[int]] = []

    async def write(batch: list[Message]) -> None:
        batches.append([m.offset for m in batch])

    collect = Collect()
    step = Batch(write, collect, max_batch=5, linger_s=1.0, clock=lambda: now[0])
    await step.submit(msg(0))
    await step.submit(msg(1))
    await step.poll()
    assert batches == []  # neither full nor old enough
    now[0] = 1.0
    await step.poll()
    await settle()
    await step.poll()
    assert batches == [[0, 1]] and collect.offsets == [0, 1]
    for offset in range(2, 9):
        await step.submit(msg(offset))
    await settle()
    assert batches == [[0, 1], [2, 3, 4, 5, 6]]  # a full batch starts at once
    await step.join()  # and the rest is flushed at shutdown
    assert batches == [[0, 1], [2, 3, 4, 5, 6], [7, 8]]
    assert collect.offsets == list(range(9))


class EarlyTimers(asyncio.SelectorEventLoop):
    """An event loop whose timers fire when 70% of their delay has passed: uvloop's run on libuv's millisecond
    clock and may fire up to a millisecond early; this makes it happen every time, by more."""

    def call_later(self, delay, callback, *args, context=None):  # type: ignore[no-untyped-def, override]
        return super().call_later(delay * 0.7, callback, *args, context=context)


def run_on_early_timers(scenario) -> None:  # type: ignore[no-untyped-def]
    with asyncio.Runner(loop_factory=EarlyTimers) as runner:
        runner.run(scenario())


def test_a_batch_whose_linger_timer_fires_early_is_woken_again_when_due() -> None:
    """The consumer loop polls a step when it asks to (its wake), else only when a fetch returns, which an idle
    consumer lets wait up to a minute. A linger timer that fired early found the batch not due and asked for no
    other wake: the lone intake of a quiet moment then waited for the minute (seen with uvloop)."""

    async def scenario() -> None:
        batches: list[list[int]] = []

        async def write(batch: list[Message]) -> None:
            batches.append([m.offset for m in batch])

        step = Batch(write, Collect(), max_batch=100, linger_s=0.05)
        wakes: list[float] = []
        woken = asyncio.Event()

        def wake() -> None:  # what the consumer loop does when a step asks: poll it
            wakes.append(time.monotonic())
            woken.set()

        step.bind_wake(wake)
        submitted = time.monotonic()
        await step.submit(msg(0))
        while not batches:
            woken.clear()
            await asyncio.wait_for(woken.wait(), 1.0)  # without a wake when due, this times out
            await step.poll()
            await settle()
        assert batches == [[0]]
        assert wakes[0] - submitted >= 0.05  # the first wake came when the linger had passed, not before

    run_on_early_timers(scenario)


def test_an_interval_commit_whose_timer_fires_early_is_woken_again_when_due(tmp_path: Path) -> None:
    async def scenario() -> None:
        bus = EmbeddedBus(tmp_path / "bus.db")
        try:
            await _publish(bus, "t", 1, 1, 1)
            consumer = bus.consumer("g", ["t"])
            [message] = await consumer.poll(10, timeout=5)
            step = CommitOffsets(consumer, CommitPolicy(every_messages=100, every_seconds=0.05))
            woken = asyncio.Event()
            step.bind_wake(woken.set)
            await step.submit(message)
            while not step.commits:
                woken.clear()
                await asyncio.wait_for(woken.wait(), 1.0)
                await step.poll()
            assert await consumer.committed([TopicPartition("t", 0)]) == {TopicPartition("t", 0): 1}
            await consumer.close()
        finally:
            await bus.close()

    run_on_early_timers(scenario)


async def test_batch_leaves_filtered_messages_out_of_the_batch_but_forwards_them() -> None:
    batches: list[list[int]] = []

    async def write(batch: list[Message]) -> None:
        batches.append([m.offset for m in batch])

    collect = Collect()
    step = Filter(lambda m: m.offset not in {1, 4, 5}, Batch(write, collect, max_batch=2, linger_s=0.0))
    for offset in range(7):
        await step.submit(msg(offset))
    await step.join()
    assert batches == [[0], [2, 3], [6]]  # [4, 5] was all filtered: nothing to run
    assert collect.offsets == list(range(7))


async def test_batch_in_a_pipeline_commits_every_message_once_written(bus: EmbeddedBus) -> None:
    await _publish(bus, "events", partitions=3, keys=6, per_key=20)
    written: list[bytes] = []
    done = asyncio.Event()

    async def write(batch: list[Message]) -> None:
        await asyncio.sleep(random.uniform(0, 0.01))
        written.extend(m.value for m in batch)
        if len(written) == 120:
            done.set()

    async def noop(message: Message) -> None: ...

    consumer = bus.consumer("indexer", ["events"])
    commit = CommitOffsets(consumer, CommitPolicy(every_messages=50, every_seconds=0.2))
    strategy = RunTask(noop, Batch(write, commit, max_batch=16, linger_s=0.01, max_pending=2), max_in_flight=8)
    await _run_until(StreamProcessor(consumer, strategy, max_batch=32, poll_timeout_s=0.05), done)
    assert len(written) == 120
    partitions = [TopicPartition("events", p) for p in range(3)]
    committed = await consumer.committed(partitions)
    assert sum(v or 0 for v in committed.values()) == 120
    await consumer.close()


# --- Dead letters -----------------------------------------------------------------------------------


def test_dead_letter_headers_are_built_in_one_shape_and_read_back() -> None:
    original = Message(
        "events", 2, 41, b"k", b"v", headers=(("trace", b"t-1"), ("dlq_error", b"an older dead letter's"))
    )
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    headers = dead_letter_headers(original, "E" * 5000, 3, {"flavor": "audit-trail"}, at=at)
    names = [name for name, _ in headers]
    assert names == ["trace", "dlq_error", "dlq_attempts", "dlq_source", "dlq_at", "dlq_flavor"]
    info = DeadLetterInfo.of(headers)
    assert info.error == "E" * MAX_DLQ_ERROR_CHARS
    assert (info.attempts, info.source, info.at) == (3, "events/2/41", "2024-05-01T12:00:00+00:00")
    assert info.extra == {"flavor": "audit-trail"}
    with pytest.raises(ValueError, match="standard"):
        dead_letter_headers(original, "e", 1, {"attempts": "9"})
    with pytest.raises(ValueError, match="standard"):
        DeadLetterPolicy(None, lambda m: "dlq", {"error": "x"})  # type: ignore[arg-type]


class Unparseable(Exception):
    """A poison error class of the tests: no retry can fix it."""


async def test_dead_letter_policy_publishes_poison_and_exhausted_messages_then_commits(harness: Harness) -> None:
    bus = harness.bus(delivery_timeout_s=5.0) if harness.kind == "kafka" else harness.bus()
    topic = await harness.topic(bus)
    dlq_topic = await harness.topic(bus)
    producer = harness.producer(bus)
    values = [b"ok-0", b"poison", b"flaky", b"ok-1"]
    await producer.publish_batch(
        [OutgoingMessage(topic, b"key", value, headers=(("trace", b"t-%d" % i),)) for i, value in enumerate(values)]
    )
    applied: list[bytes] = []
    tries: dict[bytes, int] = defaultdict(int)

    async def effect(message: Message) -> None:
        tries[message.value] += 1
        if message.value == b"poison":
            raise Unparseable("not an event")
        if message.value == b"flaky":
            raise ConnectionError("x" * 5000)
        applied.append(message.value)

    counted: list[tuple[bytes, int]] = []
    policy = DeadLetterPolicy(
        producer,
        lambda m: dlq_topic,
        {"flavor": "test-flavor"},
        poison=Unparseable,
        on_dead_letter=lambda m, error, attempts: counted.append((m.value, attempts)),
    )
    retry = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02, retry_on=ConnectionError)
    consumer = harness.consumer(bus, harness.name("group"), [topic])
    strategy = RunTask(effect, CommitOffsets(consumer, CommitPolicy(every_messages=1)), retry=retry, dead_letter=policy)
    processor = StreamProcessor(consumer, strategy)
    task = asyncio.create_task(processor.run())
    tp = TopicPartition(topic, 0)
    try:
        assert await until(lambda: _committed_is(consumer, tp, 4), timeout=60)
    finally:
        processor.stop()
        await asyncio.wait_for(task, 30)

    assert applied == [b"ok-0", b"ok-1"]
    assert dict(tries) == {b"ok-0": 1, b"poison": 1, b"flaky": 3, b"ok-1": 1}  # poison is never retried
    assert counted == [(b"poison", 1), (b"flaky", 3)]
    reader = harness.consumer(bus, harness.name("dlq-reader"), [dlq_topic])
    dead = await drain(reader, 2)
    assert [(m.key, m.value) for m in dead] == [(b"key", b"poison"), (b"key", b"flaky")]
    poison, flaky = (DeadLetterInfo.of(m.headers) for m in dead)
    assert (poison.error, poison.attempts, poison.source) == ("not an event", 1, f"{topic}/0/1")
    assert flaky.error == ("ConnectionError: " + "x" * 5000)[:MAX_DLQ_ERROR_CHARS] and flaky.attempts == 3
    assert flaky.source == f"{topic}/0/2" and flaky.extra == {"flavor": "test-flavor"}
    dead_lettered_at = datetime.fromisoformat(flaky.at)
    assert abs(datetime.now(UTC) - dead_lettered_at) < timedelta(minutes=5)
    assert dict(dead[1].headers)["trace"] == b"t-2"  # the original headers travel along


async def _committed_is(consumer, tp: TopicPartition, offset: int) -> bool:  # type: ignore[no-untyped-def]
    return (await consumer.committed([tp]))[tp] == offset


async def test_a_dead_letter_the_bus_did_not_acknowledge_leaves_the_message_uncommitted(harness: Harness) -> None:
    bus = harness.bus(delivery_timeout_s=5.0) if harness.kind == "kafka" else harness.bus()
    topic = await harness.topic(bus)
    producer = harness.producer(bus)
    await producer.publish_batch([OutgoingMessage(topic, b"key", v) for v in (b"ok-0", b"poison", b"ok-1")])
    applied: list[bytes] = []

    async def effect(message: Message) -> None:
        if message.value == b"poison":
            raise Unparseable("not an event")
        applied.append(message.value)

    missing = harness.name("missing-dlq")  # never created: the bus refuses the dead letter
    policy = DeadLetterPolicy(producer, lambda m: missing, poison=Unparseable)
    group = harness.name("group")
    consumer = harness.consumer(bus, group, [topic])
    processor = StreamProcessor(
        consumer, RunTask(effect, CommitOffsets(consumer, CommitPolicy(every_messages=1)), dead_letter=policy)
    )
    with pytest.raises(PublishError):
        await asyncio.wait_for(processor.run(), 60)
    tp = TopicPartition(topic, 0)
    assert applied == [b"ok-0"]  # nothing after the poison message ran
    assert await consumer.committed([tp]) == {tp: 1}  # and the poison message is not committed
    await consumer.close()  # leave the group, so the next member gets the partition at once

    # Once the dead-letter topic exists, the next run dead-letters it and moves on.
    await bus.ensure_topic(missing, 1)
    consumer = harness.consumer(bus, group, [topic])
    processor = StreamProcessor(
        consumer, RunTask(effect, CommitOffsets(consumer, CommitPolicy(every_messages=1)), dead_letter=policy)
    )
    task = asyncio.create_task(processor.run())
    try:
        assert await until(lambda: _committed_is(consumer, tp, 3), timeout=60)
    finally:
        processor.stop()
        await asyncio.wait_for(task, 30)
    assert applied == [b"ok-0", b"ok-1"]
    [dead] = await drain(harness.consumer(bus, harness.name("dlq-reader"), [missing]), 1)
    assert dead.value == b"poison" and DeadLetterInfo.of(dead.headers).attempts == 1


async def test_without_a_retry_policy_only_poison_is_dead_lettered(bus: EmbeddedBus) -> None:
    await _publish(bus, "events", partitions=1, keys=1, per_key=3)
    await bus.ensure_topic("events.dlq", 1)
    producer = bus.producer()

    async def effect(message: Message) -> None:
        if message.value == b"0":
            raise Unparseable("bad")
        if message.value == b"1":
            raise RuntimeError("a bug, not the message's fault")

    consumer = bus.consumer("flavor", ["events"])
    policy = DeadLetterPolicy(producer, lambda m: "events.dlq", poison=Unparseable)
    processor = StreamProcessor(
        consumer, RunTask(effect, CommitOffsets(consumer, CommitPolicy(every_messages=1)), dead_letter=policy)
    )
    with pytest.raises(RuntimeError, match="a bug"):
        await asyncio.wait_for(processor.run(), 20)
    tp = TopicPartition("events", 0)
    assert await consumer.committed([tp]) == {tp: 1}  # the poison one is dead-lettered and committed
    reader = bus.consumer("reader", ["events.dlq"])
    assert [m.value for m in await drain(reader, 5, timeout=2)] == [b"0"]
    for closable in (reader, consumer, producer):
        await closable.close()
