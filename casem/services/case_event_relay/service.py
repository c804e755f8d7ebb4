"""`casem run case-event-relay`: one relay loop per deployed tenant, with ops endpoints."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence

import structlog

from casem.adapters.bus import Bus
from casem.app.context import AppContext
from casem.services.case_event_relay.relay import Relay, RelaySettings
from casem.services.common.ops import EngineWaits, all_of, database_readiness, start_ops
from casem.services.common.waiting import ensure_topics_waiting
from casem.topology.topics import domain_events_topic

SERVICE = "case-event-relay"
log = structlog.get_logger(SERVICE)


async def build_relays(
    context: AppContext,
    bus: Bus,
    tenants: Sequence[str],
    settings: RelaySettings | None = None,
    *,
    waits: EngineWaits | None = None,
    stop: asyncio.Event | None = None,
) -> tuple[list[Relay], list]:
    """One relay per tenant, once its topic is made sure of (waiting in place while the bus is away, `waits` saying
    so); none when `stop` was set during the wait."""
    specs = [(domain_events_topic(t).name, domain_events_topic(t).partitions) for t in tenants]
    if not await ensure_topics_waiting(bus, specs, waits or EngineWaits(log, SERVICE), stop=stop):
        return [], []
    relays, producers = [], []
    for tenant in tenants:
        producer = bus.producer()
        producers.append(producer)
        relays.append(Relay(context.databases[tenant], producer, domain_events_topic(tenant).name, settings))
    return relays, producers


async def run_relay(
    context: AppContext,
    bus: Bus,
    tenants: Sequence[str],
    *,
    ops_host: str = "127.0.0.1",
    ops_port: int = 9090,
    stop: asyncio.Event | None = None,
) -> None:
    """Relay until `stop` (without one: SIGINT/SIGTERM)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    waits = EngineWaits(log, SERVICE)  # not ready while it waits for the bus at start-up, naming it
    readiness = all_of(database_readiness({t: context.databases[t] for t in tenants}), waits.readiness)
    ops = start_ops(readiness, ops_host, ops_port, stop)  # first: a taken port fails before anything starts
    relays, producers = await build_relays(context, bus, tenants, waits=waits, stop=stop)
    if relays:
        log.info("relay started", tenants=list(tenants))
    tasks = [asyncio.create_task(r.run()) for r in relays]
    await stop.wait()
    for relay in relays:
        relay.stop()  # a pass in progress finishes: rows are either published and marked, or neither
    await asyncio.gather(*tasks)
    for producer in producers:
        await producer.close()
    await ops
