"""Escalation policies: create, read, replace and delete them, and who each step targets at an instant."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import oncall_routing_rules
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.oncall import records
from casem.app.oncall.directory import Directory
from casem.app.oncall.schedules import team_references
from casem.domain.errors import Conflict, InvalidInput, NotFound
from casem.domain.oncall import (
    SCHEDULES,
    TEAMS,
    USERS,
    EscalationPolicy,
    EscalationStep,
    RoutingRule,
    parse_policy_attributes,
)
from casem.domain.oncall_schedules import Schedule


async def _check_targets(uow: UnitOfWork, directory: Directory, org_id: str, steps: Sequence[EscalationStep]) -> None:
    by_type: dict[str, list[tuple[str, str]]] = {USERS: [], TEAMS: [], SCHEDULES: []}
    for i, step in enumerate(steps):
        for j, target in enumerate(step.targets):
            by_type[target.type].append((target.id, f"/data/attributes/steps/{i}/targets/{j}/id"))
    await directory.require_users(by_type[USERS])
    await directory.require_teams(by_type[TEAMS])
    for ident, pointer in by_type[SCHEDULES]:
        await records.load_schedule(uow, org_id, ident, pointer=pointer, overrides=False)


async def create_policy(
    uow: UnitOfWork,
    directory: Directory,
    org_id: str,
    actor_id: str | None,
    attrs: dict[str, Any],
    team_ids: Sequence[str] | None,
) -> EscalationPolicy:
    fields = parse_policy_attributes(attrs)
    teams = team_references(team_ids)
    await _check_targets(uow, directory, org_id, fields["steps"])
    await directory.require_teams(teams)
    policy = EscalationPolicy.create(
        actor_id=actor_id, id=str(uuid.uuid4()), org_id=org_id, team_ids=[t for t, _ in teams], **fields
    )
    await records.insert_policy(uow, policy)
    return policy


async def update_policy(
    uow: UnitOfWork,
    directory: Directory,
    org_id: str,
    actor_id: str | None,
    policy_id: str,
    body_id: str | None,
    attrs: dict[str, Any],
    team_ids: Sequence[str] | None,
) -> EscalationPolicy:
    policy = await records.load_policy(uow, org_id, policy_id)
    if body_id is not None and body_id.lower() != policy.id:
        raise InvalidInput(f"data.id {body_id!r} is not the id of the policy in the path", "/data/id")
    fields = parse_policy_attributes(attrs, policy.steps)
    await _check_targets(uow, directory, org_id, fields["steps"])
    if team_ids is not None:
        teams = team_references(team_ids)
        await directory.require_teams(teams)
        fields["team_ids"] = [t for t, _ in teams]
    policy.replace(actor_id, **fields)
    await records.update_policy(uow, policy)
    return policy


async def get_policy(uow: UnitOfWork, org_id: str, policy_id: str) -> EscalationPolicy:
    return await records.load_policy(uow, org_id, policy_id)


async def delete_policy(uow: UnitOfWork, org_id: str, actor_id: str | None, policy_id: str) -> None:
    policy = await records.load_policy(uow, org_id, policy_id)
    rows = await uow.execute(
        sa.select(oncall_routing_rules.c.team_id, oncall_routing_rules.c.rules).where(
            oncall_routing_rules.c.org_id == org_id
        )
    )
    teams = sorted(
        row.team_id for row in rows if any(policy.id in RoutingRule.from_record(r).policy_ids for r in row.rules)
    )
    if teams:
        raise Conflict(f"escalation policy {policy.id} is used by the routing rules of teams {', '.join(teams)}")
    policy.record_deleted(actor_id)
    await records.delete_policy(uow, policy)


async def step_responders(
    uow: UnitOfWork,
    directory: Directory,
    org_id: str,
    step: EscalationStep,
    at: datetime,
    schedules: dict[str, Schedule] | None = None,
) -> list[str]:
    """Who a step targets at `at`, in target order, each once, leaving out users who are disabled or gone: users
    themselves, a team's members, and whoever is on call in a schedule at the target's position."""
    cache = {} if schedules is None else schedules
    found: list[str] = []
    for target in step.targets:
        if target.type == USERS:
            found.append(target.id)
        elif target.type == TEAMS:
            found.extend(await directory.members(target.id))
        else:
            schedule = cache.get(target.id)
            if schedule is None:
                try:
                    schedule = await records.load_schedule(uow, org_id, target.id)
                except NotFound:  # deleted since the policy was saved: it puts nobody on call
                    continue
                cache[target.id] = schedule
            if target.position in (None, "current"):
                user = schedule.on_call_at(at)  # the point query: no need to look around
            else:
                segment = schedule.shifts_around(at)[target.position]
                user = segment.user_id if segment is not None else None
            if user is not None:
                found.append(user)
    people = await directory.users(found)
    return [u for u in dict.fromkeys(found) if u in people and not people[u].disabled]
