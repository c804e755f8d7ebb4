"""The in-process workers `casem up` runs beside case-api on the embedded bus: the outbox relay,
every case-event-handler flavor this build has (each in its own consumer group), both
case-third-party-reader flavors, and the connector ingress's webhook receivers and poller."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from casem.adapters.bus import Bus
from casem.app.context import AppContext
from casem.services.case_event_handler.framework import FLAVORS, HandlerServices
from casem.services.case_event_handler.runner import FlavorRunner
from casem.services.case_event_handler.service import build_processor, load_flavor, prepare_topics
from casem.services.case_event_relay.service import build_relays
from casem.services.case_third_party_reader.runner import ReaderRunner
from casem.services.case_third_party_reader.service import build_processor as build_reader
from casem.services.case_third_party_reader.service import prepare_topics as prepare_feed
from casem.topology.services import THIRD_PARTY_READER_FLAVORS
from casem.topology.topics import handler_group, reader_group

log = structlog.get_logger("casem.local")


class LocalWorkers:
    def __init__(
        self,
        context: AppContext,
        bus: Bus,
        extras: dict | None = None,
        connector_port: int | None = None,
        connector_host: str = "127.0.0.1",
    ) -> None:
        self.context = context
        self.bus = bus
        self.connector_port = connector_port
        self.connector_host = connector_host
        self._tasks: list[asyncio.Task[None]] = []
        self._stoppers: list = []
        self._closables: list = []
        self._stop = asyncio.Event()
        # The search-indexing flavor writes to the engine case-api searches, when it has one.
        self.services = HandlerServices(extras={"search": context.search} if context.search else {})
        self.services.extras.update(extras or {})  # e.g. the caseworker's Temporal client

    async def start(self) -> list[str]:
        tenants = list(self.context.databases)
        relays, producers = await build_relays(self.context, self.bus, tenants)
        self._closables.extend(producers)
        for relay in relays:
            self._stoppers.append(relay.stop)
            self._tasks.append(asyncio.create_task(relay.run()))
        load_flavor("audit-trail")  # imports the flavor modules, filling the registry
        dead_letters = self.bus.producer()
        self._closables.append(dead_letters)
        started = []
        for name in sorted(FLAVORS):
            missing = [r for r in getattr(FLAVORS[name], "requires", ()) if r not in self.services.extras]
            if missing:
                log.warning("flavor not started: it needs what this stack lacks", flavor=name, missing=missing)
                continue
            started.append(name)
            topics = await prepare_topics(self.bus, tenants, name)
            consumer = self.bus.consumer(handler_group(name), topics)
            self._closables.insert(0, consumer)
            runner = FlavorRunner(load_flavor(name), self.context, dead_letters, self.services)
            processor = build_processor(runner, consumer)
            self._stoppers.append(processor.stop)
            self._tasks.append(asyncio.create_task(processor.run()))
            background = getattr(runner.flavor, "background", None)
            if background is not None:  # reminders and SLA clocks tick beside their consumer
                self._tasks.append(asyncio.create_task(background(self.context, self._stop)))
        for flavor in THIRD_PARTY_READER_FLAVORS:
            consumer = self.bus.consumer(reader_group(flavor), [await prepare_feed(self.bus, flavor)])
            self._closables.insert(0, consumer)
            reader = build_reader(ReaderRunner(flavor, self.context, dead_letters), consumer)
            self._stoppers.append(reader.stop)
            self._tasks.append(asyncio.create_task(reader.run()))
        if self.connector_port is not None:
            from casem.services.case_connector_ingress.service import run_ingress

            ingress = run_ingress(
                self.context, self.bus, "127.0.0.1", self.connector_port, ops_port=None, stop=self._stop
            )
            self._tasks.append(asyncio.create_task(ingress))
        log.info("local workers started", relays=len(relays), flavors=started, readers=list(THIRD_PARTY_READER_FLAVORS))
        return started

    async def stop(self) -> None:
        """Stop polling, finish and commit in-flight work, then release clients."""
        self._stop.set()
        for stop in self._stoppers:
            stop()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.error("worker ended with an error", error=str(result))
        for closable in self._closables:
            with contextlib.suppress(Exception):
                await closable.close()
