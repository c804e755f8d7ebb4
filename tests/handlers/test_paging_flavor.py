"""The paging flavor: a case that comes to match its project's paging rule pages the on-call team (once, however
often the event comes), the page and the case are linked both ways, and the case's timeline shows the page and
its acknowledgement and resolution. Events are read from each tenant's outbox and handed to the flavor's runner."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from casem.adapters.storage.tables import case_entity_links, domain_events, oncall_pages
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases import updates
from casem.app.cases.service import NewCase, create_case
from casem.app.context import AppContext
from casem.app.events import Event
from casem.app.oncall import pages
from casem.app.oncall.directory import Directory
from casem.app.oncall.paging_rules import paging_rule_for, put_paging_rule
from casem.app.projects.service import create_project
from casem.app.timeline.service import list_timeline
from casem.domain.notifications import CaseView
from casem.domain.oncall import PagingRule
from casem.services.case_event_handler.flavors.notification_rules import case_view
from casem.services.case_event_handler.framework import HandlerServices
from casem.services.case_event_handler.runner import FlavorRunner
from casem.services.case_event_handler.service import load_flavor
from casem.topology.tenants import CASE_MANAGEMENT, ON_CALL
from tests.caseworker.oncall_world import Pager
from tests.support.databases import tenant_endpoints


class DeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def publish(self, topic: str, key: bytes | None, value: bytes, headers: object = ()) -> None:
        self.sent.append((topic, value))

    async def close(self) -> None:
        pass


class Starter:
    """Stands in for the caseworker's client: the flavor's starts are counted (the escalation itself is tested on
    Temporal in tests/caseworker)."""

    def __init__(self) -> None:
        self.started: list[str] = []

    async def start_page_escalation(self, tenant: str, org_id: str, page_id: str) -> None:
        self.started.append(page_id)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[Pager, str, str, FlavorRunner, Starter]]:
    with tenant_endpoints("sqlite", tmp_path) as endpoints:
        ctx = AppContext.open(endpoints)
        pager = await Pager.create(ctx)
        ann = await pager.person("ann")
        team = await pager.team("sec-oncall", [ann])
        await pager.policy([{"targets": [{"type": "users", "id": ann}]}], teams=[team])
        async with ctx.uow() as uow:
            project = await create_project(uow, pager.org_id, pager.admin, key="SEC", name="Security")
            await uow.commit()
        async with ctx.uow(ON_CALL) as uow, ctx.uow(read_only=True) as people:
            attrs = {"team_id": team, "query": "priority:P1"}
            await put_paging_rule(
                uow, people, Directory(people, pager.org_id), pager.org_id, pager.admin, project.id, attrs
            )
            await uow.commit()
        starter = Starter()
        services = HandlerServices(extras={"caseworker": starter})
        runner = FlavorRunner(load_flavor("paging"), ctx, DeadLetters(), services)  # type: ignore[arg-type]
        try:
            yield pager, project.id, team, runner, starter
        finally:
            await ctx.close()


async def events(ctx: AppContext, tenant: str, short_type: str) -> list[Event]:
    async with ctx.uow(tenant, read_only=True) as uow:
        rows = await uow.execute(
            sa.select(domain_events.c.envelope, domain_events.c.seq)
            .where(domain_events.c.type == f"com.casem.{short_type}.v1")
            .order_by(domain_events.c.seq)
        )
        return [Event.from_bytes(json.dumps({**row.envelope, "sequence": row.seq}).encode()) for row in rows]


async def test_a_p1_case_pages_the_team_once_and_the_case_shows_it(
    world: tuple[Pager, str, str, FlavorRunner, Starter],
) -> None:
    pager, project_id, team, runner, starter = world
    ctx = pager.ctx
    async with ctx.uow() as uow:
        quiet = await create_case(uow, pager.org_id, pager.admin, NewCase(project_id, "Port scan", priority="P3"))
        loud = await create_case(
            uow, pager.org_id, pager.admin, NewCase(project_id, "Root shell on web-1", priority="P1")
        )
        await uow.commit()
    for event in await events(ctx, CASE_MANAGEMENT, "case.created"):
        assert await runner.apply(event)
        assert not await runner.apply(event)  # redelivered: already processed
    async with ctx.uow(ON_CALL, read_only=True) as uow:
        [row] = (await uow.execute(sa.select(oncall_pages))).all()
    assert (row.source_case_id, row.source_case_key, row.team_id) == (loud.id, loud.key, team)
    assert row.title == f"{loud.key}: Root shell on web-1" and row.urgency == "high" and row.policy_id
    assert starter.started == [row.id]

    # The same cause handled again by a fresh run (its first commit lost): the same page, no second cell.
    [created] = [e for e in await events(ctx, CASE_MANAGEMENT, "case.created") if e.case_id == loud.id]
    rule = await _rule(ctx, pager.org_id, project_id)
    assert rule is not None
    async with ctx.uow(ON_CALL) as oncall, ctx.uow() as uow:
        view = await _view(uow, loud.id)
        assert view is not None
        directory = Directory(uow, pager.org_id)
        again, made = await pages.page_for_case(oncall, directory, rule, view, created.id, CASE_MANAGEMENT)
        assert (again.id, made) == (row.id, False)
        assert not await pages.show_page_on_case(uow, pager.org_id, loud.id, again, created.id)

    # The P3 case is raised to P1: it pages now; a later change while it stays P1 does not page again.
    async with ctx.uow() as uow:
        await updates.prioritize(uow, pager.org_id, pager.admin, quiet.id, "P1")
        await uow.commit()
    async with ctx.uow() as uow:
        await updates.retitle(uow, pager.org_id, pager.admin, quiet.id, "Port scan, then a login")
        await uow.commit()
    for kind in ("case.priority_changed", "case.title_changed"):
        for event in await events(ctx, CASE_MANAGEMENT, kind):
            await runner.apply(event)
    async with ctx.uow(ON_CALL, read_only=True) as uow:
        paged = (await uow.execute(sa.select(oncall_pages.c.id, oncall_pages.c.source_case_id))).all()
    assert sorted(p.source_case_id for p in paged) == sorted([loud.id, quiet.id])

    # The case's timeline and links show its page; the page is acknowledged, then resolved: the case shows both.
    page_id = row.id
    async with ctx.uow(ON_CALL) as uow:
        await pages.acknowledge_page(uow, pager.org_id, pager.people["ann"], page_id)
        await uow.commit()
    async with ctx.uow(ON_CALL) as uow:
        await pages.resolve_page(uow, pager.org_id, pager.admin, page_id)
        await uow.commit()
    for kind in ("page.triggered", "page.acknowledged", "page.resolved"):
        for event in await events(ctx, ON_CALL, kind):
            await runner.apply(event)
            await runner.apply(event)
    async with ctx.uow(read_only=True) as uow:
        timeline = await list_timeline(uow, pager.org_id, loud.id, ascending=True)
        links = (
            await uow.execute(sa.select(case_entity_links).where(case_entity_links.c.parent_entity_id == loud.id))
        ).all()
    kinds = [c.type for c in timeline.cells]
    assert kinds == ["CASE_CREATED", "PAGE", "PAGE_ACKNOWLEDGEMENT", "PAGE_RESOLUTION"]
    acknowledged = timeline.cells[2]
    assert acknowledged.author_id == pager.people["ann"] and acknowledged.content["page_id"] == page_id
    assert [(link.child_entity_type, link.child_entity_id, link.relationship) for link in links] == [
        ("PAGE", page_id, "ESCALATES_TO")
    ]
    assert set(starter.started) == {p.id for p in paged}  # and page.triggered made sure of each escalation


async def test_no_rule_no_page_and_a_disabled_rule_neither(
    world: tuple[Pager, str, str, FlavorRunner, Starter],
) -> None:
    pager, project_id, team, runner, _ = world
    ctx = pager.ctx
    async with ctx.uow() as uow:
        other = await create_project(uow, pager.org_id, pager.admin, key="OPS", name="Ops")
        await create_case(uow, pager.org_id, pager.admin, NewCase(other.id, "P1 elsewhere", priority="P1"))
        await uow.commit()
    async with ctx.uow(ON_CALL) as uow, ctx.uow(read_only=True) as people:
        attrs = {"team_id": team, "query": "priority:P1", "enabled": False}
        await put_paging_rule(uow, people, Directory(people, pager.org_id), pager.org_id, None, project_id, attrs)
        await uow.commit()
    async with ctx.uow() as uow:
        await create_case(uow, pager.org_id, pager.admin, NewCase(project_id, "P1 while disabled", priority="P1"))
        await uow.commit()
    for event in await events(ctx, CASE_MANAGEMENT, "case.created"):
        await runner.apply(event)
    async with ctx.uow(ON_CALL, read_only=True) as uow:
        assert (await uow.execute(sa.select(oncall_pages))).all() == []


async def _rule(ctx: AppContext, org_id: str, project_id: str) -> PagingRule | None:
    async with ctx.uow(ON_CALL, read_only=True) as uow:
        return await paging_rule_for(uow, org_id, project_id)


async def _view(uow: UnitOfWork, case_id: str) -> CaseView | None:
    return await case_view(uow, case_id)
