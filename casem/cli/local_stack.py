"""The services `casem up` runs together in one process on the embedded engines.

`LOCAL_SERVICES` is the table: each service with how to start it in-process, the ports it listens on and
what it needs. `casem up` starts them in this order (and stops them in reverse); `casem up --services a,b`
picks some. A new service is one `LocalService` row and its start function.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from casem.adapters.bus import Bus
from casem.app.context import AppContext
from casem.cli.lifecycle import PortOption
from casem.services.case_event_handler.framework import FLAVORS, HandlerServices
from casem.services.case_event_handler.runner import FlavorRunner
from casem.services.case_event_handler.service import build_processor, load_flavor, prepare_topics
from casem.services.case_event_relay.service import build_relays
from casem.topology.topics import handler_group

log = structlog.get_logger("casem.local")


@dataclass(frozen=True)
class StackOptions:
    host: str = "127.0.0.1"
    http_port: int = 8080
    grpc_port: int = 50051
    intake_port: int = 50052
    console_port: int = 8081
    connector_port: int = 8090
    chat_grpc_port: int = 50053
    chat_http_port: int = 8091


@dataclass
class Stack:
    """What the local services share: the databases, the bus, the blob store, Temporal."""

    context: AppContext
    bus: Bus
    options: StackOptions
    blobs: Any = None
    caseworker: Any = None  # the Temporal client side (TemporalCaseworker) when Temporal is there
    temporal_address: str | None = None
    temporal_note: str = ""
    case_api_grpc: str | None = None  # set when case-api starts
    console_sign_in: str = ""  # how the first admin signs in to the console (set by `casem up`)


@dataclass
class Running:
    """A started service: what the banner shows about it, and how to stop it."""

    summary: list[str]
    stop: Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class LocalService:
    name: str
    start: Callable[[Stack], Awaitable[Running]]
    ports: Callable[[StackOptions], list[PortOption]] = lambda _: []
    needs_temporal: bool = False  # the dev server is started for it unless CASEM_TEMPORAL_ADDRESS is set


# --- case-api ----------------------------------------------------------------------------------


def _case_api_ports(o: StackOptions) -> list[PortOption]:
    return [
        PortOption("case-api HTTP", o.http_port, "--http-port", "CASEM_HTTP_PORT"),
        PortOption("case-api gRPC", o.grpc_port, "--grpc-port", "CASEM_GRPC_PORT"),
    ]


async def _start_case_api(stack: Stack) -> Running:
    from casem.services.case_api.runner import Listen, start_case_api

    state: dict[str, Any] = {"blobs": stack.blobs}
    if stack.caseworker is not None:  # uploads start their file lifecycle workflow, merges theirs
        state["attachment_lifecycle"] = state["caseworker"] = stack.caseworker
    o = stack.options
    running = await start_case_api(
        stack.context, Listen(o.host, o.http_port, f"{o.host}:{o.grpc_port}"), app_state=state
    )
    stack.case_api_grpc = running.grpc_address
    return Running([f"HTTP {running.url}", f"gRPC {running.grpc_address}"], running.stop)


# --- case-intake -------------------------------------------------------------------------------


def _intake_ports(o: StackOptions) -> list[PortOption]:
    return [PortOption("case-intake gRPC", o.intake_port, "--intake-port", "CASEM_INTAKE_PORT")]


async def _start_intake(stack: Stack) -> Running:
    from casem.services.case_intake.server import create_intake_server, ensure_intake_topic

    topic = await ensure_intake_topic(stack.bus)
    producer = stack.bus.producer()
    o = stack.options
    try:
        intake = create_intake_server(stack.context, producer, f"{o.host}:{o.intake_port}")
    except BaseException:
        await producer.close()
        raise
    await intake.server.start()

    async def stop() -> None:
        await intake.stop()
        await producer.close()

    return Running([f"gRPC {o.host}:{intake.port} → topic {topic}"], stop)


# --- case-indexer ------------------------------------------------------------------------------


async def _start_indexer(stack: Stack) -> Running:
    import os

    from casem.services.case_indexer.indexer import run_indexer

    # The service credential is CASEM_INTERNAL_TOKEN: `casem up` makes one for the case-api it runs.
    target = stack.case_api_grpc or os.environ.get("CASEM_CASE_API_GRPC") or f"127.0.0.1:{stack.options.grpc_port}"
    stop = asyncio.Event()
    task = asyncio.create_task(run_indexer(stack.context, stack.bus, target, search=stack.context.search, stop=stop))
    task.add_done_callback(_report_early_end)
    await asyncio.sleep(0)

    async def halt() -> None:
        stop.set()
        await task

    search = "the embedded search index" if stack.context.search is None else "the search engine"
    return Running([f"topic case-intake → case-api {target} → {search}"], halt)


def _report_early_end(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("service ended with an error", error=str(task.exception()))


# --- case-event-relay and case-event-handler ---------------------------------------------------


async def _start_relay(stack: Stack) -> Running:
    workers = LocalWorkers(stack.context, stack.bus, flavors=False)
    await workers.start()
    topics = ", ".join(sorted({r.topic for r in workers.relays}))
    return Running([f"outbox → {topics}"], workers.stop)


async def _start_flavors(stack: Stack) -> Running:
    extras = {"caseworker": stack.caseworker} if stack.caseworker is not None else {}
    workers = LocalWorkers(stack.context, stack.bus, extras=extras, relay=False)
    started = await workers.start()
    skipped = sorted(set(FLAVORS) - set(started))
    lines = [f"{len(started)} flavors, each its own consumer group"]
    if skipped:
        lines.append(f"not started (no Temporal): {', '.join(skipped)}")
    return Running(lines, workers.stop)


# --- caseworker --------------------------------------------------------------------------------


async def _start_caseworker(stack: Stack) -> Running:
    from casem.services.caseworker.schedules import ensure_schedules
    from casem.services.caseworker.worker import build_worker

    caseworker = stack.caseworker
    await ensure_schedules(caseworker.client, list(stack.context.databases), task_queue=caseworker.task_queue)
    worker = build_worker(caseworker.client, stack.context, stack.blobs, task_queue=caseworker.task_queue)
    task = asyncio.create_task(worker.run())

    async def stop() -> None:
        await worker.shutdown()  # in-flight activities finish; unfinished ones resume on the next start
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return Running(
        [f"Temporal {stack.temporal_address}{stack.temporal_note}, task queue {caseworker.task_queue}"], stop
    )


# --- case-third-party-reader and case-connector-ingress ------------------------------------------


async def _start_readers(stack: Stack) -> Running:
    from casem.services.case_third_party_reader.service import run_reader
    from casem.topology.services import THIRD_PARTY_READER_FLAVORS

    stop = asyncio.Event()
    tasks = []
    for flavor in THIRD_PARTY_READER_FLAVORS:
        task = asyncio.create_task(run_reader(flavor, stack.context, stack.bus, ops_port=None, stop=stop))
        task.add_done_callback(_report_early_end)
        tasks.append(task)
    await asyncio.sleep(0)

    async def halt() -> None:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    flavors = ", ".join(THIRD_PARTY_READER_FLAVORS)
    return Running([f"flavors {flavors}: the feeds → the linked cases' timelines"], halt)


def _connector_ports(o: StackOptions) -> list[PortOption]:
    return [PortOption("case-connector-ingress HTTP", o.connector_port, "--connector-port", "CASEM_CONNECTOR_PORT")]


async def _start_ingress(stack: Stack) -> Running:
    from casem.services.case_connector_ingress.service import run_ingress
    from casem.services.common.listen import bind_tcp

    o = stack.options
    bind_tcp(o.host, o.connector_port, "case-connector-ingress HTTP").close()  # a taken port fails here, not later
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_ingress(stack.context, stack.bus, o.host, o.connector_port, ops_port=None, stop=stop)
    )
    task.add_done_callback(_report_early_end)
    await asyncio.sleep(0)

    async def halt() -> None:
        stop.set()
        await task

    base = f"http://{o.host}:{o.connector_port}"
    return Running([f"webhooks {base}/webhooks/jira/<account id>, {base}/webhooks/servicenow/<instance id>"], halt)


# --- case-chat-interactions ----------------------------------------------------------------------


def _chat_ports(o: StackOptions) -> list[PortOption]:
    return [
        PortOption("case-chat-interactions gRPC", o.chat_grpc_port, "--chat-grpc-port", "CASEM_CHAT_GRPC_PORT"),
        PortOption("case-chat-interactions bridge", o.chat_http_port, "--chat-port", "CASEM_CHAT_PORT"),
    ]


async def _start_chat(stack: Stack) -> Running:
    from casem.services.case_chat_interactions.service import start_chat_interactions

    o = stack.options
    running = await start_chat_interactions(stack.context, o.host, o.chat_grpc_port, o.chat_http_port, asyncio.Event())
    return Running([f"gRPC {running.grpc_address}", f"Slack/Teams bridge {running.bridge_url}"], running.stop)


# --- case-console --------------------------------------------------------------------------------


def _console_ports(o: StackOptions) -> list[PortOption]:
    return [PortOption("case-console HTTP", o.console_port, "--console-port", "CASEM_CONSOLE_PORT")]


async def _start_console(stack: Stack) -> Running:
    from casem.adapters.bus import open_bus
    from casem.services.case_console.runner import ConsoleOptions, start_console

    o = stack.options
    state: dict[str, Any] = {"blobs": stack.blobs}
    if stack.caseworker is not None:  # as case-api: uploads start their lifecycle workflow, merges theirs
        state["attachment_lifecycle"] = state["caseworker"] = stack.caseworker
    live_bus = open_bus()  # the live feed's own consumer group and connection
    try:
        server, task, url = await start_console(
            stack.context, live_bus, ConsoleOptions(o.host, o.console_port), **state
        )
    except BaseException:
        await live_bus.close()
        raise

    async def halt() -> None:
        server.should_exit = True
        await task
        await live_bus.close()

    lines = [url + (f"  ← open this: {stack.console_sign_in}" if stack.console_sign_in else "")]
    return Running(lines, halt)


LOCAL_SERVICES: tuple[LocalService, ...] = (
    LocalService("caseworker", _start_caseworker, needs_temporal=True),
    LocalService("case-api", _start_case_api, _case_api_ports),
    LocalService("case-event-relay", _start_relay),
    LocalService("case-event-handler", _start_flavors),
    LocalService("case-indexer", _start_indexer),
    LocalService("case-intake", _start_intake, _intake_ports),
    LocalService("case-third-party-reader", _start_readers),
    LocalService("case-connector-ingress", _start_ingress, _connector_ports),
    LocalService("case-chat-interactions", _start_chat, _chat_ports),
    LocalService("case-console", _start_console, _console_ports),
)
LOCAL_SERVICES_BY_NAME = {s.name: s for s in LOCAL_SERVICES}


class LocalWorkers:
    """The outbox relay and every case-event-handler flavor this build has, in-process on one bus."""

    def __init__(
        self,
        context: AppContext,
        bus: Bus,
        extras: dict | None = None,
        *,
        relay: bool = True,
        flavors: bool = True,
    ) -> None:
        self.context = context
        self.bus = bus
        self.run_relay = relay
        self.run_flavors = flavors
        self.relays: list = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stoppers: list = []
        self._closables: list = []
        self._stop = asyncio.Event()
        # The search-indexing flavor writes to the engine case-api searches, when it has one.
        self.services = HandlerServices(extras={"search": context.search} if context.search else {})
        self.services.extras.update(extras or {})  # e.g. the caseworker's Temporal client

    async def start(self) -> list[str]:
        tenants = list(self.context.databases)
        if self.run_relay:
            self.relays, producers = await build_relays(self.context, self.bus, tenants)
            self._closables.extend(producers)
            for relay in self.relays:
                self._stoppers.append(relay.stop)
                self._tasks.append(asyncio.create_task(relay.run()))
        started: list[str] = []
        if self.run_flavors:
            started = await self._start_flavors(tenants)
        log.info("local workers started", relays=len(self.relays), flavors=started)
        return started

    async def _start_flavors(self, tenants: list[str]) -> list[str]:
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
