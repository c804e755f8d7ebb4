"""Live updates: the domain events on the bus, fanned out to the browsers of each org over SSE.

Every console replica runs one consumer in a consumer group of its own (so each replica sees every event,
whichever replica or service made the change) that starts at the end of the log: a browser wants what
happens from now on, not the backlog. Nothing is committed; a restarted replica simply starts again at the
end. Each open page holds a bounded queue: a browser that cannot keep up loses the oldest updates (and
re-reads the page when it notices), it never makes the consumer wait.

What goes to the browser is a notice (event type, case id and key, project), not the event's data: the
page fetches what changed through the ordinary, org-scoped pages, so a notice carries nothing the reader
could not already see.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from casem.adapters.bus import Bus, ConsumerOptions
from casem.adapters.bus.port import polls_in_loop
from casem.app.events import Event, PoisonMessage
from casem.services.common.ops import EngineWaits
from casem.services.common.waiting import ensure_topics_waiting
from casem.topology.topics import console_live_group, domain_events_topic

log = structlog.get_logger("case-console.live")

QUEUE_SIZE = 256
LONG_POLL_S = 30.0


@dataclass(frozen=True)
class Notice:
    type: str
    case_id: str | None
    key: str | None
    project_id: str | None
    actor_id: str | None
    # A merge step is an event of the duplicate that names its primary: the primary's open page re-reads too.
    primary_id: str | None = None

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


def notice_of(event: Event) -> Notice:
    data: dict[str, Any] = event.data or {}
    key, project = data.get("key"), data.get("project_id")  # case events carry both (Case._change, snapshot)
    primary = data.get("primary_id")
    return Notice(
        event.type,
        event.case_id,
        key if isinstance(key, str) else None,
        project if isinstance(project, str) else None,
        event.actor_id,
        primary if isinstance(primary, str) else None,
    )


class LiveFeed:
    """One bus consumer per replica; `subscribe(org)` gives a page its own queue of that org's notices.

    `start` returns at once: the feed makes sure of its topics in the background, waiting in place while the bus is
    away (`waits` says so: the console's readiness), so the pages are served meanwhile, without live updates."""

    def __init__(self, bus: Bus, tenants: Sequence[str], waits: EngineWaits | None = None) -> None:
        self.bus = bus
        self.tenants = list(tenants)
        self.waits = waits or EngineWaits(log, "case-console")
        self.group = console_live_group(uuid.uuid4().hex[:12])
        self._subscribers: dict[str, set[asyncio.Queue[Notice]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._long_polls = False
        self.ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        specs = [(domain_events_topic(t).name, domain_events_topic(t).partitions) for t in self.tenants]
        try:
            if not await ensure_topics_waiting(self.bus, specs, self.waits, stop=self._stop):
                return  # stopped while waiting for the bus
        except Exception as exc:  # a refusal waiting cannot fix: the pages are still served, without live updates
            log.error("live feed not started: its topics could not be made sure of", error=str(exc))
            return
        consumer = self.bus.consumer(
            self.group, [name for name, _ in specs], ConsumerOptions(initial_position="latest")
        )
        try:
            while not self._stop.is_set():
                try:
                    # Once ready, a consumer whose poll waits on the event loop (the embedded log) is polled
                    # with a long timeout: an append wakes it, and `stop` cancels the wait.
                    long_poll = self._long_polls = self.ready.is_set() and polls_in_loop(consumer)
                    messages = await consumer.poll(max_messages=500, timeout=LONG_POLL_S if long_poll else 0.5)
                except Exception as exc:  # a bus hiccup must not end live updates for good
                    log.warning("live feed poll failed; retrying", error=str(exc))
                    await asyncio.sleep(1.0)
                    continue
                # Until the first partitions are ours; after that, asking again each poll only costs an idle feed.
                if not self.ready.is_set() and await consumer.assignment():
                    self.ready.set()
                for message in messages:
                    try:
                        event = Event.from_bytes(message.value)
                    except PoisonMessage:
                        continue
                    self.publish(event.org_id, notice_of(event))
        finally:
            with contextlib.suppress(Exception):
                await consumer.close()

    def publish(self, org_id: str, notice: Notice) -> None:
        for queue in list(self._subscribers.get(org_id, ())):
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()  # drop the oldest: a slow browser never holds up the others
            queue.put_nowait(notice)

    def subscribe(self, org_id: str) -> asyncio.Queue[Notice]:
        queue: asyncio.Queue[Notice] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.setdefault(org_id, set()).add(queue)
        return queue

    def unsubscribe(self, org_id: str, queue: asyncio.Queue[Notice]) -> None:
        subscribers = self._subscribers.get(org_id)
        if subscribers is not None:
            subscribers.discard(queue)
            if not subscribers:
                del self._subscribers[org_id]

    @property
    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            if self._long_polls:
                self._task.cancel()  # a long poll in progress: nothing it fetched was published yet
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
