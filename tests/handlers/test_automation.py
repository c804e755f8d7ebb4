"""automation-rules: rules act on case events through the application services (outbox + timeline), and
rule loops end at the chain depth cap. Events go outbox → relay → bus → flavor, on every backend pair."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from casem.adapters.bus import Bus, Consumer, Producer
from casem.adapters.storage.tables import automation_runs, domain_events, users
from casem.app.automation.rules import create_rule
from casem.app.cases import updates
from casem.app.cases.service import NewCase, create_case, get_case
from casem.app.context import AppContext
from casem.app.identity.service import BootstrapCredentials, bootstrap_org, create_user
from casem.app.projects.service import create_project
from casem.app.timeline.service import add_comment, list_timeline
from casem.domain.automation import MAX_CHAIN_DEPTH, trigger_fires
from casem.services.case_event_handler.runner import FlavorRunner
from casem.services.case_event_handler.service import load_flavor
from casem.services.case_event_relay.relay import relay_once
from casem.topology.tenants import CASE_MANAGEMENT
from tests.support.bus_harness import Harness, drain


@dataclass
class Pipeline:
    """The relay and some flavors over one topic, driven step by step until nothing new happens."""

    context: AppContext
    producer: Producer
    consumer: Consumer
    topic: str
    runners: list[FlavorRunner]

    async def pump(self) -> int:
        """Relay the outbox and let every flavor handle it, until no flavor's effect adds an event."""
        handled = 0
        db = self.context.databases[CASE_MANAGEMENT]
        while True:
            published = 0
            while n := await relay_once(db, self.producer, self.topic):
                published += n
            if not published:
                return handled
            messages = await drain(self.consumer, published)
            assert len(messages) == published, "the bus did not deliver what the relay published"
            for message in messages:
                for runner in self.runners:
                    await runner.process(message)
            handled += published


async def pipeline(context: AppContext, harness: Harness, flavors: Sequence[str]) -> Pipeline:
    bus: Bus = harness.bus()
    topic = await harness.topic(bus, partitions=3)
    producer = harness.producer(bus)
    consumer = harness.consumer(bus, harness.name("automation"), [topic])
    runners = [FlavorRunner(load_flavor(name), context, producer) for name in flavors]
    return Pipeline(context, producer, consumer, topic, runners)


@dataclass
class World:
    creds: BootstrapCredentials
    project_id: str
    bob: str

    @property
    def org_id(self) -> str:
        return self.creds.org_id

    @property
    def alice(self) -> str:
        return self.creds.user_id


async def make_world(ctx: AppContext, key: str = "AUT") -> World:
    async with ctx.uow() as uow:
        creds = await bootstrap_org(uow, f"org-{key}", "alice@example.com")
        bob = await create_user(uow, creds.org_id, "bob@example.com", name="Bob")
        project = await create_project(uow, creds.org_id, creds.user_id, key=key, name="Automation")
        await uow.commit()
    return World(creds, project.id, bob.id)


async def add_rule(ctx: AppContext, world: World, name: str, trigger: dict, action: dict, **extra: Any) -> str:
    async with ctx.uow() as uow:
        rule = await create_rule(
            uow,
            world.org_id,
            world.alice,
            world.project_id,
            {"name": name, "trigger": trigger, "action": action, **extra},
        )
        await uow.commit()
    return rule.id


async def outbox_types(ctx: AppContext, case_id: str) -> list[tuple[str, str | None]]:
    """(short type, actor) of the case's outbox events in order."""
    async with ctx.uow(read_only=True) as uow:
        rows = await uow.execute(
            sa.select(domain_events.c.type, domain_events.c.actor_id)
            .where(domain_events.c.case_id == case_id)
            .order_by(domain_events.c.seq)
        )
        return [(row.type.removeprefix("com.casem.").rsplit(".v", 1)[0], row.actor_id) for row in rows]


async def runs(ctx: AppContext, rule_id: str) -> list[tuple[int, str]]:
    async with ctx.uow(read_only=True) as uow:
        rows = await uow.execute(
            sa.select(automation_runs.c.depth, automation_runs.c.outcome).where(automation_runs.c.rule_id == rule_id)
        )
        return sorted((row.depth, row.outcome) for row in rows)


async def test_rules_act_through_the_application_services(context: AppContext, harness: Harness) -> None:
    world = await make_world(context)
    assign = await add_rule(
        context,
        world,
        "assign bob",
        {"type": "CASE_CREATED"},
        {"type": "ASSIGN_USER", "data": {"assignee_id": world.bob}},
    )
    escalate = await add_rule(
        context,
        world,
        "escalate when work starts",
        {"type": "STATUS_TRANSITIONED", "data": {"from_status_name": "Open", "to_status_name": "In Progress"}},
        {"type": "SET_PRIORITY", "data": {"priority": "P1"}},
    )
    note = await add_rule(
        context,
        world,
        "note production",
        {"type": "ATTRIBUTE_VALUE_CHANGED", "data": {"field": "env", "change_type": "VALUE_ADDED"}},
        {"type": "ADD_COMMENT", "data": {"comment": "Production is affected: page the on-call."}},
    )
    workflow = await add_rule(
        context,
        world,
        "run the triage workflow",
        {"type": "PRIORITY_CHANGED"},
        {"type": "EXECUTE_WORKFLOW", "data": {"handle": "triage-p1"}},
    )
    await add_rule(
        context,
        world,
        "disabled: would close everything",
        {"type": "CASE_CREATED"},
        {"type": "SET_STATUS", "data": {"status_name": "CLOSED"}},
        state="DISABLED",
    )
    flow = await pipeline(context, harness, ["automation-rules"])

    async with context.uow() as uow:
        case = await create_case(uow, world.org_id, world.alice, NewCase(world.project_id, "Disk full on web-1"))
        await uow.commit()
    await flow.pump()
    async with context.uow() as uow:
        await updates.transition(uow, world.org_id, world.alice, case.id, "IN_PROGRESS")
        await uow.commit()
    await flow.pump()
    async with context.uow() as uow:
        await updates.set_attributes(uow, world.org_id, world.alice, case.id, {"env": ["prod"]})
        await uow.commit()
    await flow.pump()

    async with context.uow(read_only=True) as uow:
        after = await get_case(uow, world.org_id, case.id)
        cells = (await list_timeline(uow, world.org_id, case.id, ascending=True)).cells
    assert (after.assignee_id, after.priority, after.status) == (world.bob, "P1", "IN_PROGRESS")
    events = await outbox_types(context, case.id)
    assert events == [
        ("case.created", world.alice),
        ("case.assigned", assign),
        ("case.status_changed", world.alice),
        ("case.priority_changed", escalate),
        ("case.workflow_requested", workflow),
        ("case.attributes_changed", world.alice),
        ("case.comment_added", note),
    ]
    # Every automated change has its timeline cell, authored by the rule that made it.
    by_type = {cell.type: cell for cell in cells}
    assert by_type["ASSIGNEE_CHANGE"].author_id == assign
    assert by_type["PRIORITY_CHANGE"].author_id == escalate
    assert by_type["AUTOMATION_WORKFLOW"].content["handle"] == "triage-p1"
    assert by_type["AUTOMATION_WORKFLOW"].content["rule_id"] == workflow
    assert by_type["COMMENT"].content == {"message": "Production is affected: page the on-call."}
    assert await runs(context, assign) == [(1, "applied")]
    # The priority change was the escalation rule's own doing (depth 1), so the workflow ran one deeper.
    assert await runs(context, workflow) == [(2, "applied")]


async def test_rule_ping_pong_ends_at_the_chain_depth_cap(context: AppContext, harness: Harness) -> None:
    world = await make_world(context, "LOP")
    ping = await add_rule(
        context, world, "ping", {"type": "COMMENT_ADDED"}, {"type": "ADD_COMMENT", "data": {"comment": "ping"}}
    )
    pong = await add_rule(
        context, world, "pong", {"type": "COMMENT_ADDED"}, {"type": "ADD_COMMENT", "data": {"comment": "pong"}}
    )
    flow = await pipeline(context, harness, ["automation-rules"])
    async with context.uow() as uow:
        case = await create_case(uow, world.org_id, world.alice, NewCase(world.project_id, "Looping"))
        await add_comment(uow, world.org_id, world.alice, case.id, "anyone?")
        await uow.commit()
    await flow.pump()  # returns: the loop ended

    comments = [actor for kind, actor in await outbox_types(context, case.id) if kind == "case.comment_added"]
    # Each rule answers the person and then the other rule's comments, one step deeper each time, up to the cap;
    # neither ever answers itself.
    assert comments.count(ping) == comments.count(pong) == MAX_CHAIN_DEPTH
    assert comments.count(world.alice) == 1
    for rule in (ping, pong):
        outcomes = await runs(context, rule)
        assert [d for d, o in outcomes if o == "applied"] == list(range(1, MAX_CHAIN_DEPTH + 1))
        assert [d for d, o in outcomes if o == "skipped_depth"] == [MAX_CHAIN_DEPTH + 1]
        assert sum(o == "skipped_self" for _, o in outcomes) == MAX_CHAIN_DEPTH


async def test_a_rule_that_cannot_act_is_recorded_and_the_event_still_applies(
    context: AppContext, harness: Harness
) -> None:
    world = await make_world(context, "FAI")
    rule = await add_rule(
        context,
        world,
        "assign bob",
        {"type": "CASE_CREATED"},
        {"type": "ASSIGN_USER", "data": {"assignee_id": world.bob}},
    )
    async with context.uow() as uow:  # bob leaves the org after the rule was written
        await uow.execute(sa.delete(users).where(users.c.id == world.bob))
        await uow.commit()
    flow = await pipeline(context, harness, ["automation-rules"])
    async with context.uow() as uow:
        case = await create_case(uow, world.org_id, world.alice, NewCase(world.project_id, "Orphan"))
        await uow.commit()
    await flow.pump()
    assert await runs(context, rule) == [(1, "failed")]
    assert await outbox_types(context, case.id) == [("case.created", world.alice)]


def test_trigger_matching() -> None:
    status = {"changes": {"status": {"old": "OPEN", "new": "CLOSED"}}}
    assert trigger_fires(
        {"type": "STATUS_TRANSITIONED", "data": {"to_status_name": "closed"}}, "case.status_changed", status
    )
    assert not trigger_fires(
        {"type": "STATUS_TRANSITIONED", "data": {"from_status_name": "In Progress"}}, "case.status_changed", status
    )
    attrs = {"changes": {"attributes": {"old": {"env": ["prod"]}, "new": {"env": ["prod", "eu"], "team": ["sre"]}}}}
    added = {"type": "ATTRIBUTE_VALUE_CHANGED", "data": {"field": "env", "change_type": "VALUE_ADDED"}}
    deleted = {"type": "ATTRIBUTE_VALUE_CHANGED", "data": {"field": "env", "change_type": "VALUE_DELETED"}}
    assert trigger_fires(added, "case.attributes_changed", attrs)
    assert not trigger_fires(deleted, "case.attributes_changed", attrs)
    assert not trigger_fires({**added, "data": {"field": "region"}}, "case.attributes_changed", attrs)
    unassigned = {"changes": {"assignee_id": {"old": "u1", "new": None}}}
    assignee_removed = {
        "type": "ATTRIBUTE_VALUE_CHANGED",
        "data": {"field": "assignee", "change_type": "VALUE_DELETED"},
    }
    assert trigger_fires(assignee_removed, "case.unassigned", unassigned)
    assert not trigger_fires({"type": "CASE_REVIEW_APPROVED"}, "case.created", {})
