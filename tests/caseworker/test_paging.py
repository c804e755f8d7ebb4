"""Durable escalation of pages on the caseworker (Temporal's time-skipping test server for the long waits): each
step reaches its responders at that moment and notifies them on the loopback receivers by their rules; nobody
acknowledges, so the policy escalates after its timeout; acknowledging stops it; every send is recorded once with
its outcome, and a retried notification never notifies twice."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from casem.adapters.storage.tables import oncall_notifications
from casem.adapters.workflows.client import TemporalCaseworker
from casem.adapters.workflows.contracts import PAGE_ACKNOWLEDGED, PAGE_ESCALATE, PageRef
from casem.app.context import AppContext
from casem.app.identity.service import disable_user
from casem.app.oncall import escalation
from casem.app.oncall.delivery import Outgoing, sms_text
from casem.services.caseworker.paging import NotifyRequest, PageActivities
from casem.services.caseworker.worker import build_worker
from casem.topology.tenants import ON_CALL
from tests.caseworker.oncall_world import Pager, Receivers, now, phone_number
from tests.support.databases import tenant_endpoints


@pytest.fixture
async def pager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Pager, Receivers]]:
    # Push channels point at the loopback receiver, allowed as an operator would; their secrets are sealed here.
    monkeypatch.setenv("CASEM_OUTBOUND_ALLOW", "127.0.0.0/8")
    monkeypatch.setenv("CASEM_SECRET_KEYS", Fernet.generate_key().decode())
    receivers = Receivers.start()
    with tenant_endpoints("sqlite", tmp_path) as endpoints:
        ctx = AppContext.open(endpoints)
        try:
            yield await Pager.create(ctx), receivers
        finally:
            await ctx.close()
            receivers.stop()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 60) -> None:
    for _ in range(int(seconds * 20)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def start(
    env: WorkflowEnvironment, pager: Pager, receivers: Receivers, page_id: str
) -> tuple[WorkflowHandle, str]:
    queue = f"paging-{uuid.uuid4().hex[:8]}"
    caseworker = TemporalCaseworker(env.client, queue)
    handle = await caseworker.start_page_escalation(ON_CALL, pager.org_id, page_id)
    return handle, queue


def worker(env: WorkflowEnvironment, pager: Pager, receivers: Receivers, queue: str):  # type: ignore[no-untyped-def]
    return build_worker(env.client, pager.ctx, blobs=None, task_queue=queue, notifier=receivers.senders())  # type: ignore[arg-type]


async def test_no_acknowledgement_escalates_after_the_timeout_and_acknowledging_stops_it(
    time_skipping: WorkflowEnvironment, pager: tuple[Pager, Receivers]
) -> None:
    world, receivers = pager
    ann, bob = await world.person("ann"), await world.person("bob")
    await world.reachable(ann, receivers)
    await world.reachable(bob, receivers, push=False)
    schedule = await world.schedule([ann], now() - timedelta(days=3))
    policy = await world.policy(
        [
            {"escalate_after_seconds": 1800, "targets": [{"type": "schedules", "id": schedule}]},
            {"escalate_after_seconds": 1800, "targets": [{"type": "users", "id": bob}]},
        ]
    )
    team = await world.team("db", [ann, bob])
    await world.policy([{"targets": [{"type": "users", "id": ann}]}], teams=[team])  # not this one: routing picks
    await world.route(team, [{"query": "", "policy_id": policy}])
    page = await world.page("team_id", team)
    handle, queue = await start(time_skipping, world, receivers, page.id)
    async with worker(time_skipping, world, receivers, queue):
        # Step 1: whoever is on call (Ann) by email, SMS and push, at once.
        await eventually(lambda: _count(world, page.id, 3), "step 1's three notifications")
        got = receivers.received()
        assert (len(got["email"]), len(got["push"])) == (1, 1)
        assert got["sms"][0].startswith(f"casem page {page.key}: Database down")
        assert receivers.twilio.messages[0]["to"] == phone_number(ann)

        # Nobody acknowledges: half an hour later (skipped), step 2 pages Bob.
        await time_skipping.sleep(timedelta(minutes=31))
        await eventually(lambda: _count(world, page.id, 5), "step 2's notifications")
        assert {n.user_id for n in await world.notifications(page.id)} == {ann, bob}

        # Bob acknowledges through the API's use case and the signal: the escalation stops.
        await world.acknowledge(page.id, bob)
        await handle.signal(PAGE_ACKNOWLEDGED)
        outcome = await handle.result()
    assert (outcome.status, outcome.steps, outcome.notifications) == ("acknowledged", 2, 5)
    sent = await world.notifications(page.id)
    assert all(n.status == "sent" and n.attempts == 1 for n in sent)
    assert sorted(n.medium for n in sent) == ["email", "email", "push", "sms", "sms"]
    assert receivers.total() == 5
    cells = [c.type for c in await world.timeline(page.id)]
    assert cells.count("PAGE_ESCALATION_STEP") == 2 and cells.count("PAGE_NOTIFICATION") == 5
    assert cells[-2:] == ["PAGE_ACKNOWLEDGEMENT", "STATUS_CHANGE"]


async def _count(world: Pager, page_id: str, n: int) -> bool:
    return len([r for r in await world.notifications(page_id) if r.status == "sent"]) >= n


async def test_delays_retries_escalate_signal_round_robin_and_resolution_at_the_end(
    time_skipping: WorkflowEnvironment, pager: tuple[Pager, Receivers]
) -> None:
    world, receivers = pager
    ann, bob, cid = await world.person("ann"), await world.person("bob"), await world.person("cid")
    for person in (ann, bob, cid):
        email, _ = await world.channel(person, {"type": "email", "address": f"{person}@pager.example"})
        await world.rule(person, email)  # at once
        phone, _ = await world.channel(person, {"type": "phone", "number": phone_number(person)})
        await world.rule(person, phone, delay=10, method="voice")  # a call ten minutes in
    policy = await world.policy(
        [
            {"escalate_after_seconds": 3600, "assignment": "round-robin",
             "targets": [{"type": "users", "id": ann}, {"type": "users", "id": bob}]},
            {"escalate_after_seconds": 600, "targets": [{"type": "users", "id": cid}]},
        ],
        retries=1,
        resolve=True,
    )  # fmt: skip
    team = await world.team("web", [ann])
    await world.route(team, [{"query": "", "policy_id": policy}])
    first = await world.page("team_id", team, title="first")
    handle, queue = await start(time_skipping, world, receivers, first.id)
    async with worker(time_skipping, world, receivers, queue):
        await eventually(lambda: _count(world, first.id, 1), "the first email")
        await handle.signal(PAGE_ESCALATE)  # before the call is due: no call, step 2 now
        await eventually(lambda: _count(world, first.id, 2), "step 2's email")
        outcome = await handle.result()  # nobody acknowledges: the policy runs again, then resolves the page
    assert outcome.status == "resolved" and outcome.steps == 4
    rows = await world.notifications(first.id)
    by_round = sorted((r.round, r.step_index, r.medium, r.user_id) for r in rows)
    round_robin = [u for (rnd, step, medium, u) in by_round if step == 0 and medium == "email"]
    assert round_robin[0] != round_robin[1] and set(round_robin) == {ann, bob}  # round-robin took turns
    assert (0, 0, "voice", round_robin[0]) not in by_round  # escalated before its call was due
    assert (1, 0, "voice", round_robin[1]) in by_round  # the second round waited long enough to call
    assert ("voice", cid) in {(m, u) for (_r, s, m, u) in by_round if s == 1}  # step 2's call, ten minutes in
    cells = [c.type for c in await world.timeline(first.id)]
    assert "PAGE_ESCALATION" not in cells  # the signal came straight to the workflow: the page was not changed
    assert cells[-2:] == ["PAGE_RESOLUTION", "STATUS_CHANGE"]


async def test_an_acknowledgement_without_a_signal_still_stops_the_escalation(
    time_skipping: WorkflowEnvironment, pager: tuple[Pager, Receivers]
) -> None:
    world, receivers = pager
    ann, bob = await world.person("ann"), await world.person("bob")
    await world.reachable(ann, receivers, push=False)
    await world.reachable(bob, receivers, push=False)
    policy = await world.policy(
        [
            {"escalate_after_seconds": 300, "targets": [{"type": "users", "id": ann}]},
            {"targets": [{"type": "users", "id": bob}]},
        ]
    )
    team = await world.team("ops", [ann])
    await world.route(team, [{"query": "", "policy_id": policy}])
    page = await world.page("team_id", team)
    handle, queue = await start(time_skipping, world, receivers, page.id)
    async with worker(time_skipping, world, receivers, queue):
        await eventually(lambda: _count(world, page.id, 2), "Ann's notifications")
        await world.acknowledge(page.id, ann)  # recorded, but no signal reaches the workflow
        outcome = await handle.result()
    assert outcome.status == "acknowledged"
    assert {n.user_id for n in await world.notifications(page.id)} == {ann}  # Bob never paged
    assert receivers.total() == 2


async def test_a_page_for_a_person_skips_disabled_people(
    time_skipping: WorkflowEnvironment, pager: tuple[Pager, Receivers]
) -> None:
    world, receivers = pager
    ann = await world.person("ann")
    page = await world.page("user_id", ann, urgency="low")  # no rules for low urgency: the account's email
    handle, queue = await start(time_skipping, world, receivers, page.id)
    async with worker(time_skipping, world, receivers, queue):
        outcome = await handle.result()
    assert (outcome.status, outcome.notifications) == ("exhausted", 1)
    [message] = receivers.smtp.sink.messages
    assert message["Subject"].startswith(f"[casem page, low urgency] {page.key}")

    async with world.ctx.uow() as uow:
        await disable_user(uow, world.org_id, ann, world.admin)
        await uow.commit()
    second = await world.page("user_id", ann)
    handle, queue = await start(time_skipping, world, receivers, second.id)
    async with worker(time_skipping, world, receivers, queue):
        outcome = await handle.result()
    assert outcome.notifications == 0 and receivers.total() == 1


async def test_a_notification_is_sent_once_however_often_its_activity_runs(pager: tuple[Pager, Receivers]) -> None:
    world, receivers = pager
    ann = await world.person("ann")
    await world.reachable(ann, receivers)
    page = await world.page("user_id", ann)
    plan = await escalation.reach_step(world.ctx, ON_CALL, page.id, 0, 0, now())
    again = await escalation.reach_step(world.ctx, ON_CALL, page.id, 0, 0, now())
    assert again.replayed and again.user_ids == plan.user_ids == [ann]
    senders = receivers.senders()
    activities = PageActivities(world.ctx, senders)
    env = ActivityEnvironment()
    ref = PageRef(ON_CALL, world.org_id, page.id)
    for task in plan.notifications:
        first = await env.run(activities.notify_responder, NotifyRequest(ref, task))
        second = await env.run(activities.notify_responder, NotifyRequest(ref, task))
        assert (first.outcome, second.outcome) == ("sent", "already-sent")
    assert receivers.total() == 3

    # A lost attempt: the SMS went out, then the worker died before recording it. The retry finds it at Twilio.
    sms = next(t for t in plan.notifications if t.medium == "sms")
    lost = replace(sms, key=sms.key + "/lost")
    async with world.ctx.uow(ON_CALL) as uow:
        await uow.execute(
            sa.insert(oncall_notifications).values(
                id=str(uuid.uuid4()), org_id=world.org_id, page_id=page.id, idempotency_key=lost.key, user_id=ann,
                channel_id=lost.channel_id, medium="sms", destination="x", round=0, step_index=0, status="sending",
                attempts=1, created_at=now(), attempted_at=now(),
            )
        )  # fmt: skip
        await uow.commit()
    text = f"casem page {page.key}: {page.title}. Urgency {page.urgency}."
    assert senders.twilio is not None
    await senders.twilio.send_sms(phone_number(ann), sms_text(Outgoing(lost.key, "sms", "", "", text)))
    result = await env.run(activities.notify_responder, NotifyRequest(ref, lost))
    assert (result.outcome, result.reconciled) == ("sent", True)
    assert len(receivers.twilio.messages) == 2  # the first SMS and the lost one: nothing resent

    # A rate-limited provider: the activity fails (Temporal retries it) and the SMS then goes out once.
    receivers.twilio.refuse_next = 1
    retry = replace(sms, key=sms.key + "/retry")
    with pytest.raises(ApplicationError, match="Twilio error 20429"):
        await env.run(activities.notify_responder, NotifyRequest(ref, retry))
    assert (await env.run(activities.notify_responder, NotifyRequest(ref, retry))).outcome == "sent"
    assert len(receivers.twilio.messages) == 3
    rows = {r.idempotency_key: r for r in await world.notifications(page.id)}
    assert rows[retry.key].attempts == 2 and rows[retry.key].status == "sent"
    await senders.close()


async def test_a_page_for_a_schedule_reaches_whoever_is_on_call(
    time_skipping: WorkflowEnvironment, pager: tuple[Pager, Receivers]
) -> None:
    world, receivers = pager
    ann, bob = await world.person("ann"), await world.person("bob")
    # Ann's turn (the fifth day-long shift) began a minute ago: the page is resolved in the workflow's time, which the
    # test server skips ahead over timers, so a shift that started at midnight could be over by then late in the day.
    day0 = now() - timedelta(days=4, minutes=1)
    schedule = await world.schedule([ann, bob], day0)
    page = await world.page("schedule_id", schedule, urgency="low")
    handle, queue = await start(time_skipping, world, receivers, page.id)
    async with worker(time_skipping, world, receivers, queue):
        outcome = await handle.result()
    assert outcome.notifications == 1
    [row] = await world.notifications(page.id)
    assert row.user_id == ann and row.medium == "email"  # no low-urgency rule: the account's address
