"""The message bus: a port (`port`), its Kafka and embedded adapters, consumer strategies.

`open_bus()` picks the adapter from the environment: Kafka when `CASEM_KAFKA_BOOTSTRAP` is
set, otherwise the embedded log at `CASEM_BUS_PATH` (default `<data dir>/bus.db`), optionally
inside a namespace (`CASEM_BUS_NAMESPACE`).
"""

from __future__ import annotations

import os
from pathlib import Path

from casem.adapters.bus.partitioning import partition_for
from casem.adapters.bus.port import (
    Bus,
    BusError,
    BusUnavailable,
    CommitFailed,
    Consumer,
    ConsumerOptions,
    Delivery,
    Message,
    NotAssigned,
    OutgoingMessage,
    Producer,
    PublishError,
    TopicNotFound,
    TopicPartition,
    publish_acknowledged,
)
from casem.topology.tenants import data_dir

__all__ = [
    "Bus",
    "BusError",
    "BusUnavailable",
    "CommitFailed",
    "Consumer",
    "ConsumerOptions",
    "Delivery",
    "Message",
    "NotAssigned",
    "OutgoingMessage",
    "Producer",
    "PublishError",
    "TopicNotFound",
    "TopicPartition",
    "open_bus",
    "partition_for",
    "publish_acknowledged",
]


def open_bus(env: dict[str, str] | None = None) -> Bus:
    """The configured bus; CASEM_BUS_NAMESPACE prefixes every topic and group (shared clusters)."""
    env = dict(os.environ) if env is None else env
    bus: Bus
    bootstrap = env.get("CASEM_KAFKA_BOOTSTRAP")
    if bootstrap:
        from casem.adapters.bus.kafka import KafkaBus  # librdkafka only when Kafka is used

        bus = KafkaBus(bootstrap)
    else:
        from casem.adapters.bus.embedded import EmbeddedBus, Retention

        bus = EmbeddedBus(
            Path(env.get("CASEM_BUS_PATH") or str(data_dir(env) / "bus.db")), retention=Retention.from_env(env)
        )
    namespace = env.get("CASEM_BUS_NAMESPACE")
    if namespace:
        from casem.adapters.bus.namespace import NamespacedBus

        bus = NamespacedBus(bus, namespace)
    return bus
