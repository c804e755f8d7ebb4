"""The inbox worker: applies what the bridges acknowledged, each item once (casem/app/chat/inbox.py).

Woken when a request is recorded, and polling as well, so items left pending by a crash (or recorded by another
replica) are applied after a restart. An idle worker's looks back off from `poll_s` to `max_poll_s`, but never
past the moment a postponed item falls due. Items are taken in arrival order, in batches: their network reads
are made concurrently, then the whole batch is applied in one transaction with every item's done-mark (one
commit for many excerpts). If an item of the batch is refused (an unknown case, an unmapped user), the batch is
rolled back and applied item by item, so each refusal is recorded and answered on its own.

`InboxWriter` does the same for the other side: concurrent requests are recorded with one commit (a group
commit), which keeps the answer to Slack fast under load.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from prometheus_client import Counter, Histogram

from casem.adapters.chat.slack_web import SlackApiError, SlackWebApi, call_with_retries
from casem.app.auth import AuthenticationFailed
from casem.app.chat import inbox, service
from casem.app.context import AppContext
from casem.domain.chat import SLACK, Conversation
from casem.domain.errors import DomainError
from casem.services.case_chat_interactions.bridge.flows import Plan, Reply, SlackFlows

log = structlog.get_logger("case-chat-interactions.inbox")

APPLIED = Counter("casem_chat_inbox_applied_total", "Chat inbox items applied", ["kind", "outcome"])
APPLY_SECONDS = Histogram("casem_chat_inbox_apply_seconds", "From a chat request's arrival to its effect", ["kind"])
POLL_S = 1.0  # the first wait after a look found nothing; each further empty look doubles it
IDLE_POLL_MAX_S = 30.0  # the longest: an idle worker looks about twice a minute (a recorded request wakes it)
TRANSIENT_RETRY_S = 5.0
BATCH = 50
PLAN_CONCURRENCY = 8
WRITE_BATCH = 200

Planner = Callable[[inbox.InboxItem], Awaitable[Plan | None]]
Planned = tuple[inbox.InboxItem, Plan | None]


class InboxWriter:
    """Records requests in the inbox, many per commit: each caller waits for the commit holding its row."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self._queue: asyncio.Queue[tuple[dict[str, Any], asyncio.Future[bool]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def accept(self, **row: Any) -> bool:
        """True when the row is new, False when its delivery id was already recorded."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((row, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < WRITE_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                async with self.ctx.uow() as uow:
                    results = [await inbox.accept(uow, **row) for row, _ in batch]
                    await uow.commit()
            except Exception as exc:  # the callers answer 5xx; Slack retries
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), new in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(new)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class InboxWorker:
    def __init__(
        self,
        ctx: AppContext,
        slack: SlackFlows,
        api: SlackWebApi,
        *,
        poll_s: float = POLL_S,
        max_poll_s: float = IDLE_POLL_MAX_S,
    ) -> None:
        self.ctx = ctx
        self.slack = slack
        self.api = api
        self.poll_s = poll_s
        self.max_poll_s = max(poll_s, max_poll_s)
        self.looks = 0  # inbox looks so far (observability, tests)
        self._next_due_s: float | None = None  # after an empty look: when the earliest postponed item is due
        self._wake = asyncio.Event()
        self.planners: dict[str, Planner] = {
            "slack.event": slack.plan,
            "slack.command": slack.plan,
            "slack.interaction": slack.plan,
        }

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        idle_s = self.poll_s
        while not stop.is_set():
            self._wake.clear()  # before the look: a request recorded during it wakes the wait below
            try:
                worked = await self.drain()
            except Exception:  # a database outage: keep the loop, try again after a pause
                log.exception("chat inbox pass failed")
                worked, self._next_due_s = 0, None
            if worked:
                idle_s = self.poll_s
                continue
            wait = idle_s if self._next_due_s is None else min(idle_s, self._next_due_s)
            idle_s = min(idle_s * 2, self.max_poll_s)
            if wait <= 0 or self._wake.is_set():
                continue
            waiter = asyncio.create_task(self._wake.wait())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
            if self._wake.is_set():
                idle_s = self.poll_s  # a request came in: look again soon, as after work

    async def drain(self, limit: int = BATCH) -> int:
        """Apply a batch of the items due now; returns how many were looked at."""
        self.looks += 1
        async with self.ctx.uow(read_only=True) as uow:
            items = await inbox.load(uow, await inbox.due(uow, limit))
            self._next_due_s = None if items else await inbox.next_due_in(uow)
        if not items:
            return 0
        gate = asyncio.Semaphore(PLAN_CONCURRENCY)

        async def plan(item: inbox.InboxItem) -> Planned | None:
            async with gate:
                return await self._plan(item)

        self.slack.new_batch()
        planned = [p for p in await asyncio.gather(*(plan(i) for i in items)) if p is not None]
        try:
            sends = await self._apply_batch(planned)
        except (DomainError, AuthenticationFailed):
            self.slack.forget_mapped()  # what the rolled-back transaction read or linked does not hold
            sends = []
            for item, item_plan in planned:  # find and record the refused ones, one transaction each
                sends.extend(await self._apply_one(item, item_plan))
        for item_plan, replies in sends:
            await self._send(item_plan, replies)
        return len(items)

    async def _plan(self, item: inbox.InboxItem) -> Planned | None:
        planner = self.planners.get(item.kind)
        try:
            return item, (await planner(item) if planner else None)
        except SlackApiError as exc:
            await self._postpone(item, str(exc), exc.retry_after if exc.transient else None)
        except Exception as exc:
            log.exception("chat inbox item could not be planned", item=item.id)
            await self._postpone(item, f"{type(exc).__name__}: {exc}", TRANSIENT_RETRY_S)
        return None

    def _observe(self, item: inbox.InboxItem, outcome: str) -> None:
        APPLIED.labels(item.kind, outcome).inc()
        APPLY_SECONDS.labels(item.kind).observe(max(0.0, time.time() - item.received_at.timestamp()))

    async def _apply_batch(self, planned: list[Planned]) -> list[tuple[Plan, list[Reply]]]:
        sends: list[tuple[Plan, list[Reply]]] = []
        async with self.ctx.uow() as uow:
            claimed = await inbox.claim_many(uow, [item.id for item, _ in planned])
            applied = [(item, plan) for item, plan in planned if item.id in claimed]  # others: done meanwhile
            for _, plan in applied:
                if plan is not None:
                    sends.append((plan, await plan.apply(uow)))
            await inbox.finish_many(uow, [item.id for item, _ in applied])
            await uow.commit()
        for item, _ in applied:
            self._observe(item, "applied")
        return sends

    async def _apply_one(self, item: inbox.InboxItem, plan: Plan | None) -> list[tuple[Plan, list[Reply]]]:
        try:
            return await self._apply_batch([(item, plan)])
        except (DomainError, AuthenticationFailed) as exc:
            self.slack.forget_mapped()
            # The request cannot be applied (unknown case, unmapped user...): done, and the user is told.
            async with self.ctx.uow() as uow:
                if await inbox.claim(uow, item.id) is None:
                    return []
                await inbox.finish(uow, item.id, error=str(exc)[:2000])
                await uow.commit()
            self._observe(item, "refused")
            return [(plan, plan.on_error(exc))] if plan is not None else []

    async def _postpone(self, item: inbox.InboxItem, error: str, retry_after: float | None) -> None:
        async with self.ctx.uow() as uow:
            await inbox.postpone(uow, item, error, retry_after if retry_after is not None else TRANSIENT_RETRY_S)
            await uow.commit()

    async def _send(self, plan: Plan, replies: list[Reply]) -> None:
        for reply in replies:
            try:
                await self._send_one(plan, reply)
            except Exception as exc:  # a reply is best effort: the change is committed already
                log.warning("chat reply not sent", error=str(exc), kind=reply.kind, channel=reply.channel)

    async def _send_one(self, plan: Plan, reply: Reply) -> None:
        token = plan.token
        if reply.kind == "ephemeral":
            await call_with_retries(
                lambda: self.api.post_ephemeral(
                    token, reply.channel, reply.user, reply.text, blocks=reply.blocks, thread_ts=reply.thread_ts
                )
            )
            return
        posted = await call_with_retries(
            lambda: self.api.post_message(
                token, reply.channel, reply.text, blocks=reply.blocks, thread_ts=reply.thread_ts
            )
        )
        if reply.link_case is not None and posted.get("ts"):
            org_id, case_id, actor = reply.link_case
            conversation = Conversation(SLACK, plan.installation.workspace_id, reply.channel, str(posted["ts"]))
            async with self.ctx.uow() as uow:
                await service.link_case(uow, org_id, actor, case_id, conversation)
                await uow.commit()
