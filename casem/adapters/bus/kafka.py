"""Kafka adapter of the bus port, on confluent-kafka (librdkafka).

Threading: librdkafka calls block, casem is asyncio. Each producer and consumer owns one
worker thread and every call into its librdkafka handle runs there, so calls never overlap
and the event loop never blocks. The producer has a second thread that only serves
delivery reports (`poll`), which resolve the asyncio futures of `publish_batch` through
`call_soon_threadsafe`.

Delivery guarantees: idempotent producer with `acks=all` (no duplicates or reordering from
retries inside a partition), Kafka's murmur2 partitioner (`partitioning.partition_for`),
a bounded local queue (back-pressure: a full queue makes the publisher wait, then fail), and
`message.timeout.ms` as the bound after which an unacknowledged message is reported failed.
Consumers never auto-commit and never auto-store offsets: only `commit` moves a group.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka import TopicPartition as KTopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from casem.adapters.bus._threads import Worker
from casem.adapters.bus.port import (
    BusError,
    BusUnavailable,
    CommitFailed,
    ConsumerOptions,
    Delivery,
    Headers,
    Message,
    NotAssigned,
    OutgoingMessage,
    PublishError,
    TopicNotFound,
    TopicPartition,
)

log = logging.getLogger(__name__)

# librdkafka error codes that mean "the cluster could not be reached in time", as opposed
# to a refusal (message too large, unknown topic, authorization...).
_UNAVAILABLE_CODES = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._RESOLVE,
        KafkaError._PURGE_QUEUE,
        KafkaError._PURGE_INFLIGHT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    }
)
# An offset commit also waits for the group's coordinator, which is away while the cluster is.
_COMMIT_UNAVAILABLE_CODES = _UNAVAILABLE_CODES | {
    KafkaError._WAIT_COORD,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
}


def _admin_error(err: KafkaError | None) -> BusError:
    if err is not None and err.code() in _UNAVAILABLE_CODES:
        return BusUnavailable(f"Kafka unreachable: {err}")
    return BusError(f"Kafka admin request failed: {err}")


class KafkaBus:
    """The bus on a Kafka cluster. `config` adds librdkafka settings (security, tuning) to
    every client; `delivery_timeout_s` bounds how long a publish may wait for the cluster."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        config: Mapping[str, Any] | None = None,
        delivery_timeout_s: float = 30.0,
        max_in_flight: int = 100_000,
        admin_timeout_s: float = 15.0,
    ) -> None:
        self._common: dict[str, Any] = {"bootstrap.servers": bootstrap_servers, **(config or {})}
        self._delivery_timeout_s = delivery_timeout_s
        self._max_in_flight = max_in_flight
        self._admin_timeout_s = admin_timeout_s
        self._admin = AdminClient({**self._common, "logger": log})
        self._admin_worker = Worker("bus-kafka-admin")

    async def ensure_topic(self, name: str, partitions: int) -> int:
        return await self._admin_worker.run(self._ensure_topic, name, partitions)

    def _ensure_topic(self, name: str, partitions: int) -> int:
        existing = self._partitions_or_none(name)
        if existing is not None:
            if existing != partitions:
                log.warning("topic %s has %d partitions, not %d: left as is", name, existing, partitions)
            return existing
        future = self._admin.create_topics(
            [NewTopic(name, num_partitions=partitions)], request_timeout=self._admin_timeout_s
        )[name]
        try:
            future.result(timeout=self._admin_timeout_s)
        except KafkaException as exc:
            err = exc.args[0]
            if err.code() != KafkaError.TOPIC_ALREADY_EXISTS:  # lost a race with another creator
                raise _admin_error(err) from exc
        # Creation is acknowledged by the controller before every broker knows the topic: wait
        # until metadata shows a leader for each partition so the first publish does not stall.
        deadline = time.monotonic() + self._admin_timeout_s
        while time.monotonic() < deadline:
            meta = self._admin.list_topics(topic=name, timeout=self._admin_timeout_s).topics.get(name)
            if meta and meta.error is None and meta.partitions and all(p.leader >= 0 for p in meta.partitions.values()):
                return len(meta.partitions)
            time.sleep(0.05)
        raise BusUnavailable(f"topic {name} created but has no leaders after {self._admin_timeout_s}s")

    def _partitions_or_none(self, name: str) -> int | None:
        try:
            meta = self._admin.list_topics(topic=name, timeout=self._admin_timeout_s)
        except KafkaException as exc:
            raise _admin_error(exc.args[0]) from exc
        topic = meta.topics.get(name)
        if topic is None or (
            topic.error is not None
            and topic.error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC)
        ):
            return None
        if topic.error is not None:
            raise _admin_error(topic.error)
        return len(topic.partitions)

    async def partitions(self, name: str) -> int:
        count = await self._admin_worker.run(self._partitions_or_none, name)
        if count is None:
            raise TopicNotFound(name)
        return count

    def producer(self) -> KafkaProducer:
        return KafkaProducer(
            self._common, delivery_timeout_s=self._delivery_timeout_s, max_in_flight=self._max_in_flight
        )

    def consumer(self, group: str, topics: Sequence[str], options: ConsumerOptions | None = None) -> KafkaConsumer:
        return KafkaConsumer(self._common, group, topics, options or ConsumerOptions())

    async def close(self) -> None:
        self._admin_worker.shutdown()


class KafkaProducer:
    """Publishes keyed messages; each batch returns once all its messages are acknowledged."""

    def __init__(self, common: Mapping[str, Any], *, delivery_timeout_s: float, max_in_flight: int) -> None:
        self._delivery_timeout_s = delivery_timeout_s
        self._producer = confluent_kafka.Producer(
            {
                **common,
                "logger": log,  # librdkafka's own log lines go to Python logging, not stderr
                "enable.idempotence": True,
                "acks": "all",
                "allow.auto.create.topics": False,  # topics come from ensure_topic only
                # Kafka's Java partitioner, so keys map like partitioning.partition_for says.
                "partitioner": "murmur2_random",
                "linger.ms": 5,
                # The bound of the local queue: beyond it produce() raises BufferError and the
                # publisher waits for acknowledgements (back-pressure), never drops.
                "queue.buffering.max.messages": max_in_flight,
                "message.timeout.ms": int(delivery_timeout_s * 1000),
                "socket.connection.setup.timeout.ms": min(int(delivery_timeout_s * 1000), 30_000),
            }
        )
        self._worker = Worker("bus-kafka-produce")
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._serve_delivery_reports, name="bus-kafka-dr", daemon=True)
        self._poller.start()

    def _serve_delivery_reports(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.1)

    async def publish(self, topic: str, key: bytes | None, value: bytes, headers: Headers = ()) -> Delivery:
        return (await self.publish_batch([OutgoingMessage(topic, key, value, headers)]))[0]

    async def publish_batch(self, messages: Sequence[OutgoingMessage]) -> list[Delivery]:
        results = await self._publish(messages)
        if not results.failures:
            return [_delivery(acknowledged) for acknowledged in results.outcomes]
        raise await self._publish_error(messages, results)

    async def publish_acknowledged(self, messages: Sequence[OutgoingMessage]) -> int:
        """`publish_batch` without a `Delivery` per message: the count, once every message is acknowledged (failures
        raise as from `publish_batch`). The relay's path: it needs only to know that the whole batch is written."""
        results = await self._publish(messages)
        if not results.failures:
            return len(messages)
        raise await self._publish_error(messages, results)

    async def _publish(self, messages: Sequence[OutgoingMessage]) -> _BatchReports:
        """Every message enqueued and its outcome reported: nothing is left in limbo."""
        if self._closed.is_set():
            raise BusError("producer is closed")
        reports = _BatchReports(asyncio.get_running_loop(), len(messages))
        if not messages:
            return reports
        try:
            await self._worker.run(self._enqueue, messages, reports)
        except RuntimeError as exc:  # the worker is shut down: nothing was enqueued
            reports.fail_unreported(BusError(f"producer is closed: {exc}"))
        # Every enqueued message has a delivery report coming; wait for all of them.
        await reports.all_reported
        return reports

    async def _publish_error(self, messages: Sequence[OutgoingMessage], results: _BatchReports) -> PublishError:
        """The error of a batch some messages of which the bus did not take: those it did and those it did not."""
        delivered = [_delivery(r) for r in results.outcomes if not isinstance(r, BaseException)]
        failures = [(m, r) for m, r in zip(messages, results.outcomes, strict=True) if isinstance(r, BaseException)]
        failed = [m for m, _ in failures]
        errors: list[BaseException] = [e for _, e in failures]
        if any(isinstance(e, BusUnavailable) for e in errors):
            # librdkafka reports a missing topic as a timeout: tell a refusal from an outage.
            missing = await self._worker.run(self._missing_topics, {m.topic for m in failed})
            errors = [
                PublishError(f"topic {m.topic!r} does not exist") if m.topic in missing else e
                for m, e in zip(failed, errors, strict=True)
            ]
        unavailable = all(isinstance(e, BusUnavailable) for e in errors)
        cls = BusUnavailable if unavailable else PublishError
        return cls(
            f"{len(failed)} of {len(messages)} messages not acknowledged: {errors[0]}",
            delivered=delivered,
            failed=failed,
        )

    def _missing_topics(self, topics: set[str]) -> set[str]:
        missing = set()
        for topic in topics:
            try:
                meta = self._producer.list_topics(topic=topic, timeout=2.0).topics.get(topic)
            except KafkaException:
                continue  # the cluster is unreachable: an outage, not a missing topic
            if meta is None or (
                meta.error is not None
                and meta.error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC)
            ):
                missing.add(topic)
        return missing

    def _enqueue(self, messages: Sequence[OutgoingMessage], reports: _BatchReports) -> None:
        deadline = time.monotonic() + self._delivery_timeout_s
        produce = self._producer.produce
        for i, message in enumerate(messages):
            while True:
                try:
                    produce(
                        message.topic,
                        value=message.value,
                        key=message.key,
                        headers=list(message.headers) or None,
                        on_delivery=functools.partial(reports.on_delivery, i),
                    )
                    break
                except BufferError:
                    # Queue full: the delivery-report thread drains it as the broker acks.
                    if time.monotonic() >= deadline:
                        reports.fail_unreported(BusUnavailable("producer queue stayed full"), start=i)
                        return
                    time.sleep(0.01)
                except KafkaException as exc:
                    err = exc.args[0]
                    reports.report(i, (BusUnavailable if err.code() in _UNAVAILABLE_CODES else PublishError)(str(err)))
                    break
                except Exception as exc:  # bad arguments: this message fails, the rest go on
                    reports.report(i, PublishError(repr(exc)))
                    break

    async def flush(self, timeout: float) -> int:
        """Wait for outstanding deliveries; returns how many are still pending."""
        return await self._worker.run(self._producer.flush, timeout)

    async def close(self) -> None:
        if self._closed.is_set():
            return
        remaining = await self.flush(self._delivery_timeout_s)
        if remaining:
            # Fail what is left explicitly: each pending publish gets a purge error report.
            self._producer.purge()
            await self.flush(1.0)
        self._closed.set()
        self._poller.join()
        self._worker.shutdown()


class _BatchReports:
    """The outcome of each message of one batch, gathered on the threads that serve librdkafka's delivery reports.
    The event loop hears once, when the last message's report is in: a future and a loop wake-up per message were
    most of the event loop's work in a publish. An acknowledgement is kept as librdkafka's report itself (where the
    message was written): a `Delivery` is made of it only for a caller that asks for one (`publish_batch`, or the
    `delivered` list of an error), not on the report thread for every message."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self._loop = loop
        self.all_reported: asyncio.Future[None] = loop.create_future()
        self.outcomes: list[Any] = [None] * size  # librdkafka's report of an acknowledged message, or the error
        self.failures = 0
        self._unreported = size
        self._lock = threading.Lock()  # poll() on the report thread and flush() at close may both serve reports
        if not size:
            self.all_reported.set_result(None)

    def report(self, index: int, outcome: Any) -> None:
        with self._lock:
            if self.outcomes[index] is not None:
                return
            self.outcomes[index] = outcome
            if isinstance(outcome, BaseException):
                self.failures += 1
            self._unreported -= 1
            if self._unreported:
                return
        self._loop.call_soon_threadsafe(_set_result, self.all_reported, None)

    def fail_unreported(self, error: BaseException, start: int = 0) -> None:
        """Messages from `start` on that will get no delivery report (never enqueued) fail with `error`; those
        before it were enqueued and keep waiting for theirs."""
        with self._lock:
            unreported = [i for i in range(start, len(self.outcomes)) if self.outcomes[i] is None]
        for index in unreported:
            self.report(index, error)

    def on_delivery(self, index: int, err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            self.report(index, (BusUnavailable if err.code() in _UNAVAILABLE_CODES else PublishError)(str(err)))
        else:
            self.report(index, msg)


def _delivery(acknowledged: Any) -> Delivery:
    """Where librdkafka's report says a message was written."""
    return Delivery(acknowledged.topic(), acknowledged.partition(), acknowledged.offset())


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


class KafkaConsumer:
    """A member of a consumer group; offsets move only through `commit`."""

    def __init__(self, common: Mapping[str, Any], group: str, topics: Sequence[str], options: ConsumerOptions) -> None:
        self.group = group
        self._consumer = confluent_kafka.Consumer(
            {
                **common,
                "logger": log,
                "group.id": group,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": options.initial_position,
                "session.timeout.ms": int(options.session_timeout_s * 1000),
                "heartbeat.interval.ms": max(100, int(options.session_timeout_s * 1000 / 5)),
                # Incremental rebalances: members keep their partitions while others join.
                "partition.assignment.strategy": "cooperative-sticky",
                **options.extra,
            }
        )
        self._worker = Worker(f"bus-kafka-consume-{group}")
        self._consumer.subscribe(list(topics))
        self._closed = False

    async def poll(self, max_messages: int = 500, timeout: float = 1.0) -> list[Message]:
        return await self._worker.run(self._poll, max_messages, timeout)

    def _poll(self, max_messages: int, timeout: float) -> list[Message]:
        # librdkafka's consume(n, t) waits until it has n messages or t passed; the port promises to
        # wait only for the first one. So: wait for one, then take what is already fetched, no waiting.
        raws = self._consumer.consume(num_messages=1, timeout=timeout)
        if raws and max_messages > 1:
            raws += self._consumer.consume(num_messages=max_messages - 1, timeout=0)
        out: list[Message] = []
        for raw in raws:
            err = raw.error()
            if err is not None:
                if err.fatal():
                    raise BusError(f"fatal consumer error: {err}")
                # Transient (broker restarts, partition EOF): librdkafka retries on its own.
                log.info("consumer %s: %s", self.group, err)
                continue
            _, timestamp = raw.timestamp()
            out.append(
                Message(
                    topic=raw.topic(),
                    partition=raw.partition(),
                    offset=raw.offset(),
                    key=raw.key(),
                    value=raw.value() or b"",
                    headers=tuple((k, v or b"") for k, v in (raw.headers() or ())),
                    timestamp_ms=timestamp if timestamp > 0 else None,
                )
            )
        return out

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if offsets:
            await self._worker.run(self._commit, dict(offsets))

    def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        owned = {TopicPartition(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        keep = [KTopicPartition(tp.topic, tp.partition, off) for tp, off in offsets.items() if tp in owned]
        if not keep:
            return
        try:
            result = self._consumer.commit(offsets=keep, asynchronous=False)
        except KafkaException as exc:
            err = exc.args[0]
            if err.code() in (KafkaError._NO_OFFSET,):
                return
            if err.code() in (
                KafkaError.REBALANCE_IN_PROGRESS,
                KafkaError.ILLEGAL_GENERATION,
                KafkaError.UNKNOWN_MEMBER_ID,
            ):
                # Lost the partitions mid-commit: the new owner redelivers (at-least-once).
                log.info("consumer %s: commit dropped by rebalance: %s", self.group, err)
                return
            if err.code() in _COMMIT_UNAVAILABLE_CODES:
                raise BusUnavailable(f"offset commit: Kafka unreachable: {err}") from exc
            raise CommitFailed(str(err)) from exc
        for tp in result or ():
            if tp.error is not None:
                raise CommitFailed(f"{tp.topic}[{tp.partition}]: {tp.error}")

    async def seek(self, partition: TopicPartition, offset: int) -> None:
        await self._worker.run(self._seek, partition, offset)

    def _seek(self, partition: TopicPartition, offset: int) -> None:
        owned = {TopicPartition(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        if partition not in owned:
            raise NotAssigned(f"{partition} is not assigned to this member of {self.group}")
        target = KTopicPartition(partition.topic, partition.partition, offset)
        # Right after an assignment librdkafka may refuse seek (_STATE) until its background
        # thread has started the partition's fetcher: retry briefly.
        deadline = time.monotonic() + 10.0
        while True:
            try:
                self._consumer.seek(target)
                return
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError._STATE or time.monotonic() > deadline:
                    raise BusError(f"seek {partition} to {offset}: {exc.args[0]}") from exc
                time.sleep(0.05)

    async def assignment(self) -> set[TopicPartition]:
        parts = await self._worker.run(self._consumer.assignment)
        return {TopicPartition(tp.topic, tp.partition) for tp in parts}

    async def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        def fetch() -> dict[TopicPartition, int | None]:
            asked = [KTopicPartition(tp.topic, tp.partition) for tp in partitions]
            try:
                got = self._consumer.committed(asked, timeout=10.0)
            except KafkaException as exc:
                raise _admin_error(exc.args[0]) from exc
            return {TopicPartition(tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else None) for tp in got}

        return await self._worker.run(fetch)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._worker.run(self._consumer.close)
        self._worker.shutdown()
