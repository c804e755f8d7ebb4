"""Automation rules at work, for the automation-rules flavor: run the enabled rules of a project whose
trigger a case event fires.

Actions change the case through the same application services as the API (assign, prioritize,
transition, add_comment), acting as the rule (actor id = rule id), so their changes reach the outbox and
the timeline like any other. EXECUTE_WORKFLOW and ASSIGN_AGENT record `case.workflow_requested` for the
caseworker. Each evaluation is recorded in `automation_runs`; see casem/domain/automation.py for the
loop guard (no self-trigger, chain depth capped at MAX_CHAIN_DEPTH).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import automation_caused_events, automation_rules, automation_runs, cases
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases import updates
from casem.app.cases.service import get_case
from casem.app.events import Event
from casem.app.timeline.service import add_comment
from casem.domain.automation import (
    ADD_COMMENT,
    ASSIGN_USER,
    ENABLED,
    MAX_CHAIN_DEPTH,
    SET_PRIORITY,
    SET_STATUS,
    WORKFLOW_ACTIONS,
    AutomationRule,
    trigger_fires,
)
from casem.domain.errors import DomainError
from casem.domain.events import EventRecorder


async def enabled_rules(uow: UnitOfWork, org_id: str, project_id: str) -> list[AutomationRule]:
    rows = await uow.execute(
        sa.select(automation_rules)
        .where(
            automation_rules.c.org_id == org_id,
            automation_rules.c.project_id == project_id,
            automation_rules.c.state == ENABLED,
        )
        .order_by(automation_rules.c.created_at, automation_rules.c.id)
    )
    return [AutomationRule(**row._mapping) for row in rows]


async def chain_depth(uow: UnitOfWork, event: Event) -> int:
    """The depth a rule fired by this event acts at: 1 for a person's change, one more than its cause's."""
    if event.actor_id is None:
        return 1
    cause = await uow.scalar(
        sa.select(automation_caused_events.c.depth).where(automation_caused_events.c.event_id == event.id)
    )
    return 1 if cause is None else cause + 1


async def perform(uow: UnitOfWork, rule: AutomationRule, event: Event, case_id: str) -> EventRecorder:
    """Carry out the rule's action as the rule; returns the aggregate that recorded its event(s)."""
    kind, data, org, actor = rule.action["type"], rule.action["data"], rule.org_id, rule.id
    if kind == ASSIGN_USER:
        return await updates.assign(uow, org, actor, case_id, data["assignee_id"])
    if kind == SET_PRIORITY:
        return await updates.prioritize(uow, org, actor, case_id, data["priority"])
    if kind == SET_STATUS:
        return await updates.transition(uow, org, actor, case_id, data["status_name"])
    if kind == ADD_COMMENT:
        return await add_comment(uow, org, actor, case_id, data["comment"])
    assert kind in WORKFLOW_ACTIONS
    case = await get_case(uow, org, case_id)
    case.request_workflow(
        actor,
        {
            "action": kind,
            **data,
            "rule_id": rule.id,
            "rule_name": rule.name,
            "trigger_event_id": event.id,
            "trigger_event_type": event.type,
        },
    )
    return case


def pending_event_ids(aggregate: EventRecorder) -> list[str]:
    # The events the action just recorded, still pending until the runner's commit writes the outbox.
    return [ev.id for ev in aggregate._events()]


async def run_rules(uow: UnitOfWork, event: Event) -> None:
    """Run the enabled rules of the case's project that this event fires, each recorded in automation_runs."""
    if event.case_id is None:
        return
    project_id = await uow.scalar(
        sa.select(cases.c.project_id).where(cases.c.id == event.case_id, cases.c.org_id == event.org_id)
    )
    if project_id is None:
        return  # deleted since
    rules = [
        r
        for r in await enabled_rules(uow, event.org_id, project_id)
        if trigger_fires(r.trigger, event.type, event.data)
    ]
    if not rules:
        return
    depth = await chain_depth(uow, event)
    for rule in rules:
        outcome, detail, caused = await _run(uow, rule, event, depth)
        await uow.execute(
            sa.insert(automation_runs).values(
                id=str(uuid.uuid4()),
                org_id=event.org_id,
                rule_id=rule.id,
                case_id=event.case_id,
                trigger_event_id=event.id,
                depth=depth,
                outcome=outcome,
                detail=detail,
                executed_at=datetime.now(UTC),
            )
        )
        for event_id in caused:
            await uow.execute(
                sa.insert(automation_caused_events).values(event_id=event_id, rule_id=rule.id, depth=depth)
            )


async def _run(uow: UnitOfWork, rule: AutomationRule, event: Event, depth: int) -> tuple[str, str | None, list[str]]:
    if event.actor_id == rule.id:
        return "skipped_self", "the event is this rule's own action", []
    if depth > MAX_CHAIN_DEPTH:
        return "skipped_depth", f"automation chain deeper than {MAX_CHAIN_DEPTH}", []
    assert event.case_id is not None
    before: set[str] = set()
    try:
        # Only events this action adds count as caused by it (the case may hold others of this batch).
        aggregate = await _target(uow, rule, event.case_id)
        before = set(pending_event_ids(aggregate)) if aggregate is not None else set()
        aggregate = await perform(uow, rule, event, event.case_id)
    except DomainError as exc:
        # The rule cannot act (its user was removed, the case deleted...): recorded, not retried.
        return "failed", str(exc), []
    caused = [i for i in pending_event_ids(aggregate) if i not in before]
    return ("applied" if caused else "no_change"), None, caused


async def _target(uow: UnitOfWork, rule: AutomationRule, case_id: str) -> Any:
    """The case aggregate an earlier rule of this event may already have changed (None for comments)."""
    if rule.action["type"] == ADD_COMMENT:
        return None
    return await get_case(uow, rule.org_id, case_id)
