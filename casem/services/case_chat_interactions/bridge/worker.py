"""The inbox worker: applies what the bridges acknowledged, each item once (casem/app/chat/inbox.py).

Woken when a request is recorded, and polling as well, so items left pending by a crash are applied after a
restart. Items are applied one at a time, in the order they arrived (a thread's replies keep their order).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

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
POLL_S = 1.0
TRANSIENT_RETRY_S = 5.0

Planner = Callable[[inbox.InboxItem], Awaitable[Plan | None]]


class InboxWorker:
    def __init__(self, ctx: AppContext, slack: SlackFlows, api: SlackWebApi, *, poll_s: float = POLL_S) -> None:
        self.ctx = ctx
        self.slack = slack
        self.api = api
        self.poll_s = poll_s
        self._wake = asyncio.Event()
        self.planners: dict[str, Planner] = {
            "slack.event": slack.plan,
            "slack.command": slack.plan,
            "slack.interaction": slack.plan,
        }

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                worked = await self.drain()
            except Exception:  # a database outage: keep the loop, try again after a pause
                log.exception("chat inbox pass failed")
                worked = 0
            if worked:
                continue
            self._wake.clear()
            waiter = asyncio.create_task(self._wake.wait())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({waiter, stopper}, timeout=self.poll_s, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()

    async def drain(self, limit: int = 100) -> int:
        """Apply the items due now; returns how many were looked at."""
        async with self.ctx.uow(read_only=True) as uow:
            ids = await inbox.due(uow, limit)
        for item_id in ids:
            await self.process(item_id)
        return len(ids)

    async def process(self, item_id: str) -> None:
        async with self.ctx.uow(read_only=True) as uow:
            item = await inbox.claim(uow, item_id)  # a read: the lock is taken again when applying
        if item is None:
            return
        planner = self.planners.get(item.kind)
        try:
            plan = await planner(item) if planner else None
        except SlackApiError as exc:
            await self._postpone(item, str(exc), exc.retry_after if exc.transient else None)
            return
        except Exception as exc:
            log.exception("chat inbox item could not be planned", item=item.id)
            await self._postpone(item, f"{type(exc).__name__}: {exc}", TRANSIENT_RETRY_S)
            return
        replies: list[Reply] = []
        outcome = "applied"
        try:
            async with self.ctx.uow() as uow:
                if await inbox.claim(uow, item.id) is None:
                    return  # another worker applied it meanwhile
                if plan is not None:
                    replies = await plan.apply(uow)
                await inbox.finish(uow, item.id)
                await uow.commit()
        except (DomainError, AuthenticationFailed) as exc:
            # The request cannot be applied (unknown case, unmapped user...): done, and the user is told.
            outcome = "refused"
            async with self.ctx.uow() as uow:
                if await inbox.claim(uow, item.id) is None:
                    return
                await inbox.finish(uow, item.id, error=str(exc)[:2000])
                await uow.commit()
            replies = plan.on_error(exc) if plan is not None else []
        APPLIED.labels(item.kind, outcome if plan is not None else "ignored").inc()
        APPLY_SECONDS.labels(item.kind).observe(max(0.0, time.time() - item.received_at.timestamp()))
        if plan is not None:
            await self._send(plan, replies)

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
