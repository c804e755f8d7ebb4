"""Per-case event order is commit order: many concurrent writers change and comment on the same cases; every
change locks the case row, so in outbox sequence order each case's events tell a consistent story (each title
change starts from the title the previous one left, each comment quotes the title current when it committed),
and a consumer of the bus sees every case's events in that same order."""

from __future__ import annotations

import asyncio
import random
import uuid

import sqlalchemy as sa

from casem.adapters.storage.tables import domain_events
from casem.app.cases.service import NewCase, create_case, get_case
from casem.app.context import AppContext
from casem.app.events import Event
from casem.app.identity.service import bootstrap_org
from casem.app.projects.service import create_project
from casem.app.timeline.service import add_comment
from tests.handlers.test_runner import publish_outbox
from tests.support.bus_harness import Harness, drain

CASES = 4
WRITERS_PER_CASE = 6
STEPS = 8  # per writer: a title change or a comment, at random


async def _writer(ctx: AppContext, org_id: str, user_id: str, case_id: str, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(STEPS):
        for attempt in range(20):  # SQLite may report a busy database under this much contention: retry
            try:
                async with ctx.uow() as uow:
                    if rng.random() < 0.5:
                        case = await get_case(uow, org_id, case_id)
                        case.retitle(str(int(case.title) + 1), user_id)
                    else:
                        case = await get_case(uow, org_id, case_id)
                        await add_comment(uow, org_id, user_id, case_id, f"at {case.title}")
                    await asyncio.sleep(rng.random() / 200)  # hold the transaction open a little
                    await uow.commit()
                break
            except sa.exc.OperationalError:
                if attempt == 19:
                    raise
                await asyncio.sleep(0.05)
        await asyncio.sleep(0)


def _check_story(events: list[dict]) -> tuple[int, int]:
    """(title changes, comments) of one case's events in order; fails where the story breaks."""
    title, changes, comments = "0", 0, 0
    for envelope in events:
        kind = envelope["type"]
        data = envelope["data"]
        if kind == "com.casem.case.title_changed.v1":
            change = data["changes"]["title"]
            assert change["old"] == title, f"a title change from {change['old']} after the title became {title}"
            title = change["new"]
            changes += 1
        elif kind == "com.casem.case.comment_added.v1":
            assert data["message"] == f"at {title}", f"{data['message']!r} committed when the title was {title}"
            comments += 1
    return changes, comments


async def test_each_cases_events_follow_commit_order(context: AppContext, harness: Harness) -> None:
    async with context.uow() as uow:
        creds = await bootstrap_org(uow, f"order-{uuid.uuid4().hex[:6]}", "order@example.com")
        project = await create_project(uow, creds.org_id, creds.user_id, key="ORD", name="Order")
        await uow.commit()
    ids = []
    for _ in range(CASES):
        async with context.uow() as uow:
            case = await create_case(uow, creds.org_id, creds.user_id, NewCase(project.id, "0"))
            await uow.commit()
            ids.append(case.id)
    await asyncio.gather(
        *(
            _writer(context, creds.org_id, creds.user_id, case_id, seed=n * 100 + w)
            for n, case_id in enumerate(ids)
            for w in range(WRITERS_PER_CASE)
        )
    )

    async with context.uow(read_only=True) as uow:
        rows = (
            await uow.execute(
                sa.select(domain_events.c.case_id, domain_events.c.envelope).order_by(domain_events.c.seq)
            )
        ).all()
    by_case: dict[str, list[dict]] = {i: [] for i in ids}
    for row in rows:
        if row.case_id in by_case:
            by_case[row.case_id].append(row.envelope)
    totals = [_check_story(by_case[i]) for i in ids]
    changes, comments = sum(t for t, _ in totals), sum(c for _, c in totals)
    assert changes + comments == CASES * WRITERS_PER_CASE * STEPS

    # Through the relay and the bus: each case's events arrive in the outbox's order.
    bus = harness.bus()
    topic, published = await publish_outbox(context, harness, bus)
    consumer = harness.consumer(bus, harness.name("order"), [topic])
    messages = await drain(consumer, published, timeout=60)
    assert len(messages) == published
    received: dict[str, list[dict]] = {i: [] for i in ids}
    for message in sorted(messages, key=lambda m: (m.partition, m.offset)):
        event = Event.from_bytes(message.value)
        if event.case_id in received:
            received[event.case_id].append(event.envelope)
    for case_id in ids:
        assert [e["id"] for e in received[case_id]] == [e["id"] for e in by_case[case_id]]
        sequences = [e["sequence"] for e in received[case_id]]
        assert sequences == sorted(sequences)
        _check_story(received[case_id])
    print(
        f"\ncase event order [{context.databases['case-management'].dialect}/{harness.kind}]: {CASES} cases, "
        f"{CASES * WRITERS_PER_CASE} concurrent writers, {changes} title changes and {comments} comments in commit "
        f"order; {published} events relayed, {len(messages)} consumed in per-case order"
    )
