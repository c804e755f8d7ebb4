"""The message bus port: what casem needs from a log-structured message bus.

Two adapters implement it: Kafka (`casem.adapters.bus.kafka`) for deployments and an
embedded SQLite log (`casem.adapters.bus.embedded`) for laptops. Both promise the same
contract (tests/bus/ runs one suite against each):

* A topic has a fixed number of partitions; a message with a key always lands on
  `partition_for(key, partitions)`, so messages with one key are consumed in publish order.
* `Producer.publish_batch` returns only once every message is acknowledged by the bus; a
  message the bus did not take is never reported as published: the call raises a
  `PublishError` (a `BusUnavailable` when the bus cannot be reached) listing what failed.
  `publish_acknowledged` is the same for a caller that needs no `Delivery` per message.
* A consumer group sees every message of its topics; groups are independent. Inside a
  group each partition is owned by one member at a time.
* Offsets are committed explicitly, after the effect of a message is durable, as "the next
  offset to read" (Kafka's convention). Anything not committed is delivered again to the
  next owner of the partition: delivery is at-least-once.

The API is asyncio-native. The adapters wrap blocking clients by giving each producer and
consumer its own thread, so a slow broker never blocks the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol, runtime_checkable

Headers = tuple[tuple[str, bytes], ...]
InitialPosition = Literal["earliest", "latest"]


class TopicPartition(NamedTuple):
    topic: str
    partition: int


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to publish. `key` decides the partition; None spreads messages freely."""

    topic: str
    key: bytes | None
    value: bytes
    headers: Headers = ()


@dataclass(frozen=True)
class Delivery:
    """The bus's acknowledgement of one published message: where it was written."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class Message:
    """A consumed message and its position in the log."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers = ()
    timestamp_ms: int | None = None

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    @property
    def next_offset(self) -> int:
        """The offset to commit once this message's effect is durable."""
        return self.offset + 1


class BusError(Exception):
    """Base of every error the bus port raises."""


class PublishError(BusError):
    """Some messages of a batch were not acknowledged. None of `failed` may be assumed written;
    `delivered` lists those that were, in batch order (the caller retries the rest)."""

    def __init__(
        self,
        message: str,
        *,
        delivered: Sequence[Delivery] = (),
        failed: Sequence[OutgoingMessage] = (),
    ) -> None:
        super().__init__(message)
        self.delivered: tuple[Delivery, ...] = tuple(delivered)
        self.failed: tuple[OutgoingMessage, ...] = tuple(failed)


class BusUnavailable(PublishError):
    """The bus could not be reached (broker down, network, timeout): retry later."""


class TopicNotFound(BusError):
    """The topic does not exist; topics are created with `Bus.ensure_topic`, never implicitly."""


class CommitFailed(BusError):
    """The bus refused an offset commit."""


class NotAssigned(BusError):
    """The consumer does not own the partition (seek on a partition of another member)."""


@runtime_checkable
class Producer(Protocol):
    async def publish(self, topic: str, key: bytes | None, value: bytes, headers: Headers = ()) -> Delivery:
        """Publish one message; returns after the bus acknowledged it."""
        ...

    async def publish_batch(self, messages: Sequence[OutgoingMessage]) -> list[Delivery]:
        """Publish messages; returns their deliveries in order once all are acknowledged."""
        ...

    async def close(self) -> None:
        """Wait for outstanding acknowledgements, then release the client."""
        ...


async def publish_acknowledged(producer: Producer, messages: Sequence[OutgoingMessage]) -> int:
    """Publish messages like `publish_batch`, for a caller that does not look at where each one was written: returns
    how many were acknowledged (all of them) once all are. Failures raise exactly as from `publish_batch`, listing
    what was delivered and what failed. A producer may spare the `Delivery` per message (the Kafka adapter's
    `publish_acknowledged` counts acknowledgements instead); any other gets its `publish_batch` called."""
    counting = getattr(producer, "publish_acknowledged", None)
    if counting is not None:
        return int(await counting(messages))
    return len(await producer.publish_batch(messages))


def polls_in_loop(consumer: object) -> bool:
    """Whether `consumer.poll` waits on the event loop (the embedded log: an idle wait is a timer, woken by an
    append, and cancelling it loses nothing) rather than in a blocking client call (Kafka: the wait holds the
    client's thread, so commits queue behind it). A consumer loop may give the first kind long timeouts while
    idle; the second keeps short ones, librdkafka's own long poll doing the waiting."""
    return bool(getattr(consumer, "polls_in_loop", False))


@runtime_checkable
class Consumer(Protocol):
    group: str

    async def poll(self, max_messages: int = 500, timeout: float = 1.0) -> list[Message]:
        """Up to `max_messages` messages of the partitions this member owns; waits up to
        `timeout` seconds for the first one. Partition ownership may change across calls."""
        ...

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit the next offset to read for each partition. Offsets of partitions this
        member no longer owns are dropped: their new owner redelivers from the last commit."""
        ...

    async def seek(self, partition: TopicPartition, offset: int) -> None:
        """Make the next poll of an owned partition start at `offset` (replay or skip).
        The committed offset is unchanged until the next commit."""
        ...

    async def assignment(self) -> set[TopicPartition]:
        """The partitions this member owns right now."""
        ...

    async def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        """The group's committed offset of each partition (None when never committed)."""
        ...

    async def close(self) -> None:
        """Leave the group (its partitions go to the remaining members) and release the client."""
        ...


@dataclass(frozen=True)
class ConsumerOptions:
    """How a consumer joins its group.

    initial_position: where a group with no committed offset starts ("earliest" so a new
    handler flavor sees the backlog). session_timeout_s: a member silent for this long loses
    its partitions to the others.
    """

    initial_position: InitialPosition = "earliest"
    session_timeout_s: float = 10.0
    extra: Mapping[str, str] = field(default_factory=dict)  # adapter-specific tuning


@runtime_checkable
class Bus(Protocol):
    async def ensure_topic(self, name: str, partitions: int) -> int:
        """Create the topic when missing; return its partition count. An existing topic keeps
        its partition count: repartitioning moves keys and breaks per-key order, so it is an
        operator's decision, not a side effect."""
        ...

    async def partitions(self, name: str) -> int:
        """The topic's partition count; raises TopicNotFound."""
        ...

    def producer(self) -> Producer: ...

    def consumer(self, group: str, topics: Sequence[str], options: ConsumerOptions | None = None) -> Consumer: ...

    async def close(self) -> None: ...
