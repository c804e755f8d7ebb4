"""Crash test of page escalation: 50 pages escalating on `casem run caseworker` (PostgreSQL, the Temporal dev
server), the caseworker killed with SIGKILL in the middle of the first notifications and restarted. Afterwards,
counted at the receivers, every due notification arrived once; half the pages are acknowledged while they wait to
escalate, and none of those pages anyone further; the other half escalate to the second step, once each.

How "once" holds across a kill: a notification is claimed by its idempotency key before it is sent and marked sent
after; one whose outcome was lost with the killed process is, on retry, looked up at Twilio (SMS) before sending,
or resent with the same key, which the push receiver honours (casem's webhook contract) and email carries as its
Message-ID. The receivers count SMS as raw messages, push as acted-on keys, and email by Message-ID; raw repeats
of email and push are printed, and allowed only for a notification whose record shows a retried attempt.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from temporalio.client import Client

from casem.adapters.storage.tables import oncall_notifications, oncall_page_steps
from casem.adapters.workflows.client import TemporalCaseworker
from casem.adapters.workflows.contracts import PAGE_ACKNOWLEDGED, PAGE_RESOLVED, PageOutcome
from casem.app.context import AppContext
from casem.app.oncall import pages
from casem.app.oncall.delivery import Outgoing
from casem.topology.tenants import ON_CALL, TENANTS
from tests.backends import engine_address
from tests.caseworker.oncall_world import Pager, Receivers, now
from tests.crash.test_caseworker_crash import Caseworker
from tests.support.databases import tenant_endpoints

PAGES = 50
KILL_AFTER = 20  # notifications at the receivers before the SIGKILL
STEP_ONE_WAIT = 120  # seconds a page waits for an acknowledgement before it escalates


async def _wait_for(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


@pytest.fixture
async def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Pager, Receivers, Caseworker, TemporalCaseworker]]:
    address = engine_address("temporal")
    queue = f"paging-crash-{uuid.uuid4().hex[:8]}"
    receivers = Receivers.start()
    monkeypatch.setenv("CASEM_SECRET_KEYS", Fernet.generate_key().decode())  # sealed here, opened by the caseworker
    monkeypatch.setenv("CASEM_OUTBOUND_ALLOW", "127.0.0.0/8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEM_TENANT_")}
    env |= {
        "CASEM_DATA_DIR": str(tmp_path),
        "CASEM_BLOBS_URL": str(tmp_path / "blobs"),
        "CASEM_TEMPORAL_ADDRESS": address,
        "CASEM_TEMPORAL_TASK_QUEUE": queue,
        "CASEM_RETENTION_SWEEP_SECONDS": str(24 * 3600),
        "CASEM_HOST": "127.0.0.1",
        "CASEM_MIGRATE_ON_START": "0",
        **receivers.env(),
    }
    try:
        with tenant_endpoints("postgres", tmp_path) as endpoints:
            for t in TENANTS:
                env[f"{t.env_prefix}_DSN"] = endpoints[t.name].master
            ctx = AppContext.open(endpoints)
            worker = Caseworker(env, tmp_path / "caseworker.log")
            client = await Client.connect(address)
            try:
                yield await Pager.create(ctx), receivers, worker, TemporalCaseworker(client, task_queue=queue)
            finally:
                worker.stop()
                await ctx.close()
    finally:
        receivers.stop()


async def _rows(world: Pager, statement: sa.Select) -> list:  # type: ignore[type-arg]
    async with world.ctx.uow(ON_CALL, read_only=True) as uow:
        return list((await uow.execute(statement)).all())


@pytest.mark.postgres
@pytest.mark.temporal
async def test_kill_9_caseworker_mid_escalation(
    world: tuple[Pager, Receivers, Caseworker, TemporalCaseworker],
) -> None:
    pager, receivers, worker, temporal = world
    ann, bob = await pager.person("ann"), await pager.person("bob")
    await pager.reachable(ann, receivers)  # email, SMS and push at once
    await pager.reachable(bob, receivers, push=False)  # email and SMS
    policy = await pager.policy(
        [
            {"escalate_after_seconds": STEP_ONE_WAIT, "targets": [{"type": "users", "id": ann}]},
            {"escalate_after_seconds": 600, "targets": [{"type": "users", "id": bob}]},
        ]
    )
    team = await pager.team("db", [ann, bob])
    await pager.route(team, [{"query": "", "policy_id": policy}])
    made = [await pager.page("team_id", team, title=f"Replica {n} lagging") for n in range(PAGES)]
    handles = [await temporal.start_page_escalation(ON_CALL, pager.org_id, p.id) for p in made]  # queued

    worker.start()
    deadline = time.monotonic() + 180
    while receivers.total() < KILL_AFTER:
        assert time.monotonic() < deadline, "the caseworker notified nobody; see its log"
        await asyncio.sleep(0.01)
    worker.kill()
    at_kill = receivers.total()
    assert at_kill < PAGES * 3, "every first notification was out before the kill: it interrupted nothing"
    worker.start()

    # Half the pages are acknowledged while they wait to escalate, each as soon as Ann's three notifications of it
    # are out (the API's use case, then its signal).
    acknowledged = made[::2]
    waiting = {p.id for p in acknowledged}
    deadline = time.monotonic() + STEP_ONE_WAIT
    while waiting:
        assert time.monotonic() < deadline, f"{len(waiting)} pages still wait for their first notifications"
        for page_id in sorted(waiting):
            if await _sent(pager, ann, 3, page_id):
                async with pager.ctx.uow(ON_CALL) as uow:
                    await pages.acknowledge_page(uow, pager.org_id, ann, page_id)
                    await uow.commit()
                await temporal.signal_page(page_id, PAGE_ACKNOWLEDGED)
                waiting.discard(page_id)
        await asyncio.sleep(0.2)
    acked_at = now()
    await _wait_for(lambda: _sent(pager, ann, PAGES * 3), "Ann's notifications of every page")
    open_pages = made[1::2]
    # The others escalate to Bob after the wait; once his notifications are out, they are resolved.
    await _wait_for(lambda: _sent(pager, bob, len(open_pages) * 2), "Bob's notifications", STEP_ONE_WAIT + 180)
    for page in open_pages:
        async with pager.ctx.uow(ON_CALL) as uow:
            await pages.resolve_page(uow, pager.org_id, bob, page.id)
            await uow.commit()
        await temporal.signal_page(page.id, PAGE_RESOLVED)
    outcomes: list[PageOutcome] = [await asyncio.wait_for(h.result(), 240) for h in handles]
    await asyncio.sleep(2)  # a notification still in flight would show up now

    by_page = {o.page_id: o.status for o in outcomes}
    assert {by_page[p.id] for p in acknowledged} == {"acknowledged"}
    assert {by_page[p.id] for p in open_pages} == {"resolved"}
    rows = await _rows(pager, sa.select(oncall_notifications))
    keys = {r.idempotency_key: r for r in rows}
    assert len(keys) == PAGES * 3 + len(open_pages) * 2
    assert all(r.status == "sent" for r in rows)
    # No acknowledged page reached step two, nor notified anyone after its acknowledgement.
    acked_ids = {p.id for p in acknowledged}
    steps = await _rows(pager, sa.select(oncall_page_steps.c.page_id, oncall_page_steps.c.step_index))
    assert not [s for s in steps if s.page_id in acked_ids and s.step_index > 0]
    assert not [r for r in rows if r.page_id in acked_ids and r.created_at > acked_at]

    # Counted at the receivers: every due notification once.
    sms = Counter(m["body"] for m in receivers.twilio.messages)
    due_sms = {f"{text} [ref {Outgoing(key, 'sms', '', '', '').reference}]" for key, text in _texts(rows, made, "sms")}
    assert set(sms) == due_sms and set(sms.values()) == {1}, "an SMS went out twice or not at all"
    push = receivers.push.delivered
    assert set(push) == {r.idempotency_key for r in rows if r.medium == "push"}
    emails = receivers.smtp.sink.by_idempotency_key()
    assert set(emails) == {r.idempotency_key for r in rows if r.medium == "email"}
    raw_push = Counter(r["key"] for r in receivers.push.raw)
    repeats = {k: n for k, n in (emails + raw_push).items() if n > 1}
    assert all(keys[k].attempts > 1 for k in repeats), "a repeat without a retried attempt"
    retried = sum(r.attempts > 1 for r in rows)
    reconciled = sum(1 for r in rows if r.medium == "sms" and r.attempts > 1)
    print(
        f"notifications: {len(rows)} due, {receivers.total()} received; {at_kill} before the kill; "
        f"{retried} retried after the kill ({reconciled} SMS looked up at Twilio); raw repeats of email/push: {repeats}"
    )


async def _sent(pager: Pager, user_id: str, n: int, page_id: str | None = None) -> bool:
    where = [oncall_notifications.c.user_id == user_id, oncall_notifications.c.status == "sent"]
    if page_id is not None:
        where.append(oncall_notifications.c.page_id == page_id)
    rows = await _rows(pager, sa.select(sa.func.count()).select_from(oncall_notifications).where(*where))
    return bool(rows[0][0] >= n)


def _texts(rows: list, made: list, medium: str) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    by_id = {p.id: p for p in made}
    found = []
    for r in rows:
        if r.medium != medium:
            continue
        page = by_id[r.page_id]
        found.append((r.idempotency_key, f"casem page {page.key}: {page.title}. Urgency {page.urgency}."))
    return found
