"""The reconciliation poller of case-connector-ingress: every interval, each account's linked issues are read
for changes since its watermark and published to the feeds like webhooks (same ids), then the watermark
moves on. A remote that fails is logged and tried again at the next interval; its watermark stays."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import structlog
from prometheus_client import Counter

from casem.adapters.bus import OutgoingMessage, Producer
from casem.adapters.integrations import RemoteError
from casem.app.context import AppContext
from casem.app.integrations.poller import accounts_to_poll, linked_issues, poll_account, save_watermark, watermark
from casem.app.integrations.remotes import RemoteSystems
from casem.services.case_connector_ingress.app import PUBLISHED
from casem.topology.topics import third_party_topic

log = structlog.get_logger("case-connector-ingress.poller")

POLLS = Counter("casem_connector_polls_total", "Reconciliation polls by outcome", ["system", "outcome"])


async def poll_once(context: AppContext, remotes: RemoteSystems, producer: Producer, *, lookback: timedelta) -> int:
    """One round over every account of every tenant; answers how many changes it published."""
    published = 0
    for tenant in context.databases:
        async with context.uow(tenant, read_only=True) as uow:
            accounts = await accounts_to_poll(uow)
        for account in accounts:
            async with context.uow(tenant, read_only=True) as uow:
                since = await watermark(uow, account.id) or datetime.now(UTC) - lookback
                linked = await linked_issues(uow, account.id)
            try:
                poll = await poll_account(remotes, account, tenant, since, linked)
            except RemoteError as exc:
                POLLS.labels(account.system, "remote_failed").inc()
                log.warning("poll failed", account_id=account.id, system=account.system, error=exc.reason)
                continue
            if poll.events:
                topic = third_party_topic(account.system).name
                await producer.publish_batch([OutgoingMessage(topic, e.key, e.to_bytes()) for e in poll.events])
                PUBLISHED.labels(account.system, "poll").inc(len(poll.events))
                published += len(poll.events)
            async with context.uow(tenant) as uow:
                await save_watermark(uow, account.id, poll.started)
                await uow.commit()
            POLLS.labels(account.system, "ok").inc()
    return published


async def run_poller(
    context: AppContext,
    remotes: RemoteSystems,
    producer: Producer,
    stop: asyncio.Event,
    *,
    interval_s: float,
    lookback: timedelta,
) -> None:
    while not stop.is_set():
        try:
            await poll_once(context, remotes, producer, lookback=lookback)
        except Exception as exc:  # a failed round (the bus down...) is logged; the next one tries again
            log.error("reconciliation round failed", error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
