"""Namespaces keep environments that share one cluster apart, under the registry's topic names."""

from __future__ import annotations

import uuid

from casem.adapters.bus.namespace import NamespacedBus
from casem.adapters.bus.port import OutgoingMessage, TopicPartition, publish_acknowledged
from tests.support.bus_harness import Harness, drain, quiet


async def test_two_namespaces_share_a_bus_without_seeing_each_other(harness: Harness) -> None:
    inner = harness.bus()
    run = uuid.uuid4().hex[:8]
    blue, green = NamespacedBus(inner, f"blue-{run}"), NamespacedBus(inner, f"green-{run}")
    for ns in (blue, green):
        assert await ns.ensure_topic("domain-events", 2) == 2
    producer = blue.producer()
    delivery = await producer.publish("domain-events", b"case-1", b"hello")
    assert delivery.topic == "domain-events"

    reader = blue.consumer("case-event-handler-audit-trail", ["domain-events"])
    [message] = await drain(reader, 1)
    assert (message.topic, message.value) == ("domain-events", b"hello")
    await reader.commit({message.topic_partition: message.next_offset})
    assert (await reader.committed([message.topic_partition]))[message.topic_partition] == message.next_offset
    assert TopicPartition("domain-events", message.partition) in await reader.assignment()

    other = green.consumer("case-event-handler-audit-trail", ["domain-events"])
    assert await quiet(other, 1.5) == []
    for closable in (producer, reader, other):
        await closable.close()


async def test_publish_acknowledged_goes_to_the_namespaced_topic(harness: Harness) -> None:
    inner = harness.bus()
    ns = NamespacedBus(inner, f"blue-{uuid.uuid4().hex[:8]}")
    await ns.ensure_topic("domain-events", 1)
    producer = ns.producer()
    sent = [OutgoingMessage("domain-events", b"case-1", b"%d" % i) for i in range(3)]
    assert await publish_acknowledged(producer, sent) == 3
    reader = ns.consumer("reader", ["domain-events"])
    got = await drain(reader, 3)
    assert [(m.topic, m.value) for m in got] == [("domain-events", m.value) for m in sent]
    for closable in (producer, reader):
        await closable.close()
