"""`casem run case-event-relay`: one relay loop per deployed tenant, with ops endpoints."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence

import sqlalchemy as sa

from casem.adapters.bus import Bus
from casem.services.case_api.context import CaseApiContext
from casem.services.case_event_handler.service import DOMAIN_EVENTS_PARTITIONS
from casem.services.case_event_relay.relay import Relay, RelaySettings
from casem.services.ops import serve_ops
from casem.topology.topics import domain_events_topic


async def build_relays(
    context: CaseApiContext, bus: Bus, tenants: Sequence[str], settings: RelaySettings | None = None
) -> tuple[list[Relay], list]:
    relays, producers = [], []
    for tenant in tenants:
        topic = domain_events_topic(tenant).name
        await bus.ensure_topic(topic, DOMAIN_EVENTS_PARTITIONS)
        producer = bus.producer()
        producers.append(producer)
        relays.append(Relay(context.databases[tenant], producer, topic, settings))
    return relays, producers


async def run_relay(
    context: CaseApiContext, bus: Bus, tenants: Sequence[str], *, ops_host: str = "0.0.0.0", ops_port: int = 9090
) -> None:
    relays, producers = await build_relays(context, bus, tenants)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def readiness() -> dict[str, str]:
        failures = {}
        for tenant in tenants:
            try:
                async with context.databases[tenant].reader.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
            except Exception as exc:
                failures[tenant] = str(exc)
        return failures

    ops = asyncio.create_task(serve_ops(readiness, ops_host, ops_port, stop))
    tasks = [asyncio.create_task(r.run()) for r in relays]
    await stop.wait()
    for relay in relays:
        relay.stop()  # a pass in progress finishes: rows are either published and marked, or neither
    await asyncio.gather(*tasks)
    for producer in producers:
        await producer.close()
    await ops
