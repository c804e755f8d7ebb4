"""due-date-reminders, sla-tracking and duplicate-detection: each flavor fed through outbox → relay → bus, and
the schedulers' `tick(now)` driven by an explicit clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from casem.adapters.storage.tables import case_reminders, cases, domain_events, sla_clocks
from casem.app.automation import reminders as reminder_rules
from casem.app.automation import sla
from casem.app.automation.rules import put_duplicates, put_reminders, put_sla
from casem.app.cases import updates
from casem.app.cases.service import NewCase, create_case
from casem.app.context import AppContext
from casem.app.timeline.service import add_comment, list_timeline
from casem.domain.automation import due_instant, similarity
from casem.services.case_event_handler.flavors import due_date_reminders
from tests.handlers.test_automation import World, make_world, pipeline
from tests.support.bus_harness import Harness, until


async def new_case(ctx: AppContext, world: World, title: str, **fields: object) -> str:
    async with ctx.uow() as uow:
        case = await create_case(uow, world.org_id, world.alice, NewCase(world.project_id, title, **fields))
        await uow.commit()
    return case.id


async def events_of(ctx: AppContext, case_id: str, short_type: str) -> list[dict]:
    async with ctx.uow(read_only=True) as uow:
        rows = await uow.execute(
            sa.select(domain_events.c.envelope)
            .where(domain_events.c.case_id == case_id, domain_events.c.type == f"com.casem.{short_type}.v1")
            .order_by(domain_events.c.seq)
        )
        return [row.envelope for row in rows]


async def cells_of(ctx: AppContext, world: World, case_id: str, cell_type: str) -> list:
    async with ctx.uow(read_only=True) as uow:
        page = await list_timeline(uow, world.org_id, case_id, ascending=True)
    return [cell for cell in page.cells if cell.type == cell_type]


async def test_due_date_reminders_fire_once_before_and_at_the_due_date(context: AppContext, harness: Harness) -> None:
    world = await make_world(context, "REM")
    async with context.uow() as uow:
        await put_reminders(uow, world.org_id, world.alice, world.project_id, [2 * 86400, 0])
        await uow.commit()
    flow = await pipeline(context, harness, ["due-date-reminders"])
    case_id = await new_case(context, world, "Renew the TLS certificate", assignee_id=world.bob)
    other = await new_case(context, world, "Closed before it was due")
    due = date.today() + timedelta(days=10)
    async with context.uow() as uow:
        await updates.set_due_date(uow, world.org_id, world.alice, case_id, (due - timedelta(days=1)).isoformat())
        await updates.set_due_date(uow, world.org_id, world.alice, other, due.isoformat())
        await uow.commit()
    await flow.pump()
    async with context.uow() as uow:  # moved by a day: the first schedule is replaced, not added to
        await updates.set_due_date(uow, world.org_id, world.alice, case_id, due.isoformat())
        await updates.transition(uow, world.org_id, world.alice, other, "CLOSED")
        await uow.commit()
    await flow.pump()

    async with context.uow(read_only=True) as uow:
        rows = (await uow.execute(sa.select(case_reminders).order_by(case_reminders.c.fire_at))).all()
    at = due_instant(due)
    assert [(r.case_id, r.due_date, r.fire_at) for r in rows] == [
        (case_id, due, at - timedelta(days=2)),
        (case_id, due, at),
    ]

    assert await reminder_rules.tick(context, at - timedelta(days=2, seconds=1)) == 0
    # Two schedulers at the same moment: the reminder is claimed by one of them only.
    fired = await asyncio.gather(*(reminder_rules.tick(context, at - timedelta(days=1)) for _ in range(2)))
    assert sorted(fired) == [0, 1]
    assert await reminder_rules.tick(context, at - timedelta(hours=1)) == 0
    assert await reminder_rules.tick(context, at) == 1
    assert await reminder_rules.tick(context, at + timedelta(days=3)) == 0

    reminders = await events_of(context, case_id, "case.due_date_reminder")
    assert [e["data"]["lead_seconds"] for e in reminders] == [2 * 86400, 0]
    assert reminders[0]["data"]["summary"].endswith(
        "is due in 2 day(s) (" + due.isoformat() + "): Renew the TLS certificate"
    )
    notices = await events_of(context, case_id, "notification.requested")
    assert [(n["data"]["reason"], n["data"]["recipients"]) for n in notices] == [("due_date_reminder", [world.bob])] * 2
    assert [n["data"]["source_event_id"] for n in notices] == [e["id"] for e in reminders]
    cells = await cells_of(context, world, case_id, "DUE_DATE_REMINDER")
    assert [c.content["lead_seconds"] for c in cells] == [2 * 86400, 0] and all(c.author_id is None for c in cells)
    assert await events_of(context, other, "case.due_date_reminder") == []

    # The same due date set again later does not remind twice of what was already said.
    async with context.uow() as uow:
        await updates.set_due_date(uow, world.org_id, world.alice, case_id, None)
        await uow.commit()
    async with context.uow() as uow:
        await updates.set_due_date(uow, world.org_id, world.alice, case_id, due.isoformat())
        await uow.commit()
    await flow.pump()
    assert await reminder_rules.tick(context, at + timedelta(days=3)) == 0


async def test_sla_breaches_are_reported_once_per_kind(context: AppContext, harness: Harness) -> None:
    world = await make_world(context, "SLA")
    async with context.uow() as uow:
        targets = {
            "P1": {"acknowledge_seconds": 900, "close_seconds": 3600},
            "P2": {"acknowledge_seconds": 1, "close_seconds": None},
        }
        await put_sla(uow, world.org_id, world.alice, world.project_id, targets)
        await uow.commit()
    flow = await pipeline(context, harness, ["sla-tracking"])
    ignored = await new_case(context, world, "Nobody looks at this", priority="P1", assignee_id=world.bob)
    answered = await new_case(context, world, "Someone answers in time", priority="P1")
    late = await new_case(context, world, "Answered too late", priority="P2")
    async with context.uow() as uow:
        await add_comment(uow, world.org_id, world.alice, answered, "looking")
        await uow.commit()
    await flow.pump()
    async with context.uow(read_only=True) as uow:
        clocks = {row.case_id: row for row in (await uow.execute(sa.select(sla_clocks))).all()}
    start = clocks[ignored].started_at
    assert clocks[ignored].acknowledge_due_at == start + timedelta(seconds=900)
    assert clocks[ignored].close_due_at == start + timedelta(seconds=3600)
    assert clocks[answered].acknowledged_at is not None and clocks[late].close_due_at is None

    # The P2 case is answered after its one-second target: the event itself reports the breach, no tick needed.
    await asyncio.sleep(1.2)
    async with context.uow() as uow:
        await add_comment(uow, world.org_id, world.alice, late, "sorry, only now")
        await uow.commit()
    await flow.pump()
    [late_breach] = await events_of(context, late, "case.sla_breached")
    assert late_breach["data"]["kind"] == "acknowledge" and late_breach["data"]["target_seconds"] == 1

    latest = max(c.started_at for c in clocks.values())
    assert await sla.tick(context, start + timedelta(seconds=899)) == 0
    assert await sla.tick(context, latest + timedelta(seconds=901)) == 1  # `ignored`; `answered` was in time
    assert await sla.tick(context, latest + timedelta(seconds=1800)) == 0
    assert await sla.tick(context, latest + timedelta(seconds=3601)) == 2  # neither P1 case is closed
    assert await sla.tick(context, latest + timedelta(days=1)) == 0

    breaches = await events_of(context, ignored, "case.sla_breached")
    assert [(b["data"]["kind"], b["data"]["priority"]) for b in breaches] == [("acknowledge", "P1"), ("close", "P1")]
    notices = await events_of(context, ignored, "notification.requested")
    assert [(n["data"]["reason"], n["data"]["recipients"]) for n in notices] == [("sla_breached", [world.bob])] * 2
    assert len(await cells_of(context, world, ignored, "SLA_BREACH")) == 2
    answered_breaches = await events_of(context, answered, "case.sla_breached")
    assert [b["data"]["kind"] for b in answered_breaches] == ["close"]

    # New targets apply to open clocks: a P3 case with no target gets one, and breaches on the next tick.
    relaxed = await new_case(context, world, "Low priority", priority="P3")
    await flow.pump()
    async with context.uow() as uow:
        await put_sla(uow, world.org_id, world.alice, world.project_id, {**targets, "P3": {"acknowledge_seconds": 60}})
        await uow.commit()
    assert await sla.tick(context, datetime.now(UTC) + timedelta(seconds=61)) == 1
    assert [b["data"]["kind"] for b in await events_of(context, relaxed, "case.sla_breached")] == ["acknowledge"]


async def test_a_similar_open_case_is_suggested_as_a_duplicate(context: AppContext, harness: Harness) -> None:
    world = await make_world(context, "DUP")
    flow = await pipeline(context, harness, ["duplicate-detection"])
    original = await new_case(context, world, "Disk full on web-1", attributes={"env": ["prod"]})
    await new_case(context, world, "Payments API latency", attributes={"env": ["prod"]})
    closed = await new_case(context, world, "Disk full on web-1 again", status="CLOSED")
    await flow.pump()
    assert await events_of(context, closed, "case.duplicate_suggested") == []

    repeat = await new_case(context, world, "Disk FULL on web-1, again!", attributes={"env": ["prod"], "team": ["sre"]})
    staging = await new_case(context, world, "web-1 disk full again", attributes={"env": ["staging"]})
    unrelated = await new_case(context, world, "Rotate the API keys")
    await flow.pump()

    [suggestion] = await events_of(context, repeat, "case.duplicate_suggested")
    async with context.uow(read_only=True) as uow:
        key = await uow.scalar(sa.select(cases.c.key).where(cases.c.id == original))
    assert suggestion["data"]["candidate_id"] == original and suggestion["data"]["candidate_key"] == key
    # Titles share 4 of 5 words (0.8) and attributes 1 of 2 values (0.2 x 0.5): the closed twin is no candidate.
    assert suggestion["data"]["score"] == 0.9 and suggestion["data"]["shared_attributes"] == [["env", "prod"]]
    [cell] = await cells_of(context, world, repeat, "DUPLICATE_SUGGESTION")
    assert cell.content["message"] == f"possible duplicate of {key}"
    assert await events_of(context, staging, "case.duplicate_suggested") == []  # env contradicts: staging vs prod
    assert await events_of(context, unrelated, "case.duplicate_suggested") == []

    async with context.uow() as uow:
        await put_duplicates(uow, world.org_id, world.alice, world.project_id, {"enabled": False})
        await uow.commit()
    muted = await new_case(context, world, "Disk full on web-1", attributes={"env": ["prod"]})
    await flow.pump()
    assert await events_of(context, muted, "case.duplicate_suggested") == []


def test_similarity_normalizes_titles_and_weighs_attributes() -> None:
    same = similarity("Disk full on web-1", {}, "disk FULL: web-1", {})
    assert same.title == 1.0 and same.score == 1.0
    half = similarity("disk full web", {"env": ["prod"]}, "disk quota web-2", {"env": ["prod"]})
    assert half.title == 2 / 5 and half.score == 0.6  # {disk, web} of {disk, full, web, quota, 2}; env shared
    assert similarity("a", {"env": ["prod"]}, "a", {"env": ["dev"]}).conflicting


async def test_the_scheduler_loop_ticks_on_its_clock_until_stopped(context: AppContext) -> None:
    world = await make_world(context, "SCH")
    case_id = await new_case(context, world, "Quarterly access review")
    due = date.today() + timedelta(days=3)
    async with context.uow() as uow:
        await updates.set_due_date(uow, world.org_id, world.alice, case_id, due.isoformat())
        await reminder_rules.reschedule_case(uow, world.org_id, case_id, datetime.now(UTC))
        await uow.commit()
    stop = asyncio.Event()
    flavor = due_date_reminders.DueDateReminders()
    loop = asyncio.create_task(flavor.background(context, stop, interval_s=0.02, clock=lambda: due_instant(due)))

    async def reminded() -> int:
        return len(await events_of(context, case_id, "case.due_date_reminder"))

    async def both_sent() -> bool:
        return await reminded() >= 2

    assert await until(both_sent)
    await asyncio.sleep(0.2)  # many more ticks at the same moment: nothing is said twice
    stop.set()
    await asyncio.wait_for(loop, 5)
    assert await reminded() == 2  # the day before and the day itself, both due by the clock's time
