"""The in-process workers `casem up` runs beside case-api on the embedded bus: the outbox relay
and every case-event-handler flavor this build has, each in its own consumer group."""

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
from casem.topology.topics import handler_group

log = structlog.get_logger("casem.local")


class LocalWorkers:
    def __init__(self, context: AppContext, bus: Bus, extras: dict | None = None) -> None:
        self.context = context
        self.bus = bus
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
        log.info("local workers started", relays=len(relays), flavors=started)
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
