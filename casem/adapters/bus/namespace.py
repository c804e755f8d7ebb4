"""A namespace on a bus: every topic and consumer group gets a prefix.

Several environments (or test runs) can then share one Kafka cluster without seeing each
other's messages, while code keeps using the registry's topic names. Set CASEM_BUS_NAMESPACE.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from casem.adapters.bus.port import (
    Bus,
    Consumer,
    ConsumerOptions,
    Delivery,
    Headers,
    Message,
    OutgoingMessage,
    Producer,
    TopicPartition,
    polls_in_loop,
    publish_acknowledged,
)


class NamespacedBus:
    def __init__(self, bus: Bus, namespace: str) -> None:
        if not namespace:
            raise ValueError("a namespace must not be empty")
        self.inner = bus
        self.prefix = namespace if namespace.endswith(".") else namespace + "."

    def _in(self, topic: str) -> str:
        return self.prefix + topic

    async def ensure_topic(self, name: str, partitions: int) -> int:
        return await self.inner.ensure_topic(self._in(name), partitions)

    async def partitions(self, name: str) -> int:
        return await self.inner.partitions(self._in(name))

    def producer(self) -> Producer:
        return _Producer(self.inner.producer(), self.prefix)

    def consumer(self, group: str, topics: Sequence[str], options: ConsumerOptions | None = None) -> Consumer:
        inner = self.inner.consumer(self.prefix + group, [self._in(t) for t in topics], options)
        return _Consumer(inner, self.prefix, group)

    async def close(self) -> None:
        await self.inner.close()


def _out(prefix: str, topic: str) -> str:
    return topic[len(prefix) :] if topic.startswith(prefix) else topic


class _Producer:
    def __init__(self, inner: Producer, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix

    def _delivery(self, d: Delivery) -> Delivery:
        return Delivery(_out(self.prefix, d.topic), d.partition, d.offset)

    async def publish(self, topic: str, key: bytes | None, value: bytes, headers: Headers = ()) -> Delivery:
        return self._delivery(await self.inner.publish(self.prefix + topic, key, value, headers))

    def _in(self, messages: Sequence[OutgoingMessage]) -> list[OutgoingMessage]:
        # Built directly: dataclasses.replace costs more than the rest of the wrapper per message.
        return [OutgoingMessage(self.prefix + m.topic, m.key, m.value, m.headers) for m in messages]

    async def publish_batch(self, messages: Sequence[OutgoingMessage]) -> list[Delivery]:
        return [self._delivery(d) for d in await self.inner.publish_batch(self._in(messages))]

    async def publish_acknowledged(self, messages: Sequence[OutgoingMessage]) -> int:
        return await publish_acknowledged(self.inner, self._in(messages))

    async def close(self) -> None:
        await self.inner.close()


class _Consumer:
    def __init__(self, inner: Consumer, prefix: str, group: str) -> None:
        self.inner = inner
        self.prefix = prefix
        self.group = group
        self.polls_in_loop = polls_in_loop(inner)

    def _tp_in(self, tp: TopicPartition) -> TopicPartition:
        return TopicPartition(self.prefix + tp.topic, tp.partition)

    def _tp_out(self, tp: TopicPartition) -> TopicPartition:
        return TopicPartition(_out(self.prefix, tp.topic), tp.partition)

    async def poll(self, max_messages: int = 500, timeout: float = 1.0) -> list[Message]:
        messages = await self.inner.poll(max_messages, timeout)
        return [replace(m, topic=_out(self.prefix, m.topic)) for m in messages]

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        await self.inner.commit({self._tp_in(tp): offset for tp, offset in offsets.items()})

    async def seek(self, partition: TopicPartition, offset: int) -> None:
        await self.inner.seek(self._tp_in(partition), offset)

    async def assignment(self) -> set[TopicPartition]:
        return {self._tp_out(tp) for tp in await self.inner.assignment()}

    async def committed(self, partitions: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        result = await self.inner.committed([self._tp_in(tp) for tp in partitions])
        return {self._tp_out(tp): offset for tp, offset in result.items()}

    async def close(self) -> None:
        await self.inner.close()
