"""The message bus: a port (`port`), its Kafka and embedded adapters, consumer strategies.

`open_bus()` picks the adapter from the environment: Kafka when `CASEM_KAFKA_BOOTSTRAP` is
set, otherwise the embedded log at `CASEM_BUS_PATH` (default `<data dir>/bus.db`).
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
]


def open_bus(env: dict[str, str] | None = None) -> Bus:
    env = dict(os.environ) if env is None else env
    bootstrap = env.get("CASEM_KAFKA_BOOTSTRAP")
    if bootstrap:
        from casem.adapters.bus.kafka import KafkaBus  # librdkafka only when Kafka is used

        return KafkaBus(bootstrap)
    from casem.adapters.bus.embedded import EmbeddedBus

    path = env.get("CASEM_BUS_PATH") or str(data_dir(env) / "bus.db")
    return EmbeddedBus(Path(path))
