"""On-Call escalation policies (Datadog's OnCallApi)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.oncall import policies as service
from casem.app.oncall import records
from casem.app.oncall.directory import Directory
from casem.domain.errors import NotFound
from casem.domain.oncall import SCHEDULES, TEAMS, USERS, EscalationPolicy, EscalationStep, StepTarget
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import parse_body
from casem.services.case_api.oncall.answers import (
    PolicyResponse,
)
from casem.services.case_api.oncall.common import (
    TeamsRelationships,
    on_call,
    on_call_tenant,
    parse_include,
    team_ids_of,
    team_reference,
    unique,
    user_reference,
)
from casem.services.case_api.oncall.schedules import schedule_data
from casem.services.case_api.openapi import contract
from casem.services.case_api.schemas import Strict
from casem.topology.tenants import ON_CALL

router = APIRouter(tags=["on-call escalation policies"], dependencies=[Depends(on_call_tenant)])

POLICY_INCLUDES = ("teams", "steps", "steps.targets")


class PolicyAttributes(Strict):
    name: Any = None
    resolve_page_on_policy_end: Any = None
    retries: Any = None
    steps: Any = None


class PolicyCreateData(Strict):
    type: Literal["policies"]
    attributes: PolicyAttributes
    relationships: TeamsRelationships | None = None


class PolicyCreateRequest(Strict):
    data: PolicyCreateData


class PolicyUpdateData(PolicyCreateData):
    id: str | None = None


class PolicyUpdateRequest(Strict):
    data: PolicyUpdateData


def configured_target_id(step: EscalationStep, target: StepTarget) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"casem:schedule-target:{step.id}:{target.id}:{target.position}"))


def target_reference(step: EscalationStep, target: StepTarget) -> dict[str, str]:
    if target.type == SCHEDULES and target.position is not None:
        return {"id": configured_target_id(step, target), "type": "schedule_target"}
    return {"id": target.id, "type": target.type}


async def policy_document(
    policy: EscalationPolicy, include: set[str], directory: Directory, uow: UnitOfWork
) -> dict[str, Any]:
    included: list[dict[str, Any]] = []
    if "teams" in include:
        teams = await directory.teams(policy.team_ids)
        included += [team_reference(teams[t]) for t in policy.team_ids if t in teams]
    if "steps" in include:
        included += [
            {
                "id": step.id,
                "type": "steps",
                "attributes": {"assignment": step.assignment, "escalate_after_seconds": step.escalate_after_seconds},
                "relationships": {"targets": {"data": [target_reference(step, t) for t in step.targets]}},
            }
            for step in policy.steps
        ]
    if "steps.targets" in include:
        targets = [(step, t) for step in policy.steps for t in step.targets]
        people = await directory.users(t.id for _, t in targets if t.type == USERS)
        teams = await directory.teams(t.id for _, t in targets if t.type == TEAMS)
        seen: set[tuple[str, str]] = set()
        for step, target in targets:
            ref = target_reference(step, target)
            if (ref["type"], ref["id"]) in seen:
                continue
            seen.add((ref["type"], ref["id"]))
            if target.type == USERS and target.id in people:
                included.append(user_reference(people[target.id]))
            elif target.type == TEAMS and target.id in teams:
                included.append(team_reference(teams[target.id]))
            elif target.type == SCHEDULES:
                try:
                    schedule = await records.load_schedule(uow, policy.org_id, target.id, overrides=False)
                except NotFound:
                    continue
                if target.position is None:
                    included.append(schedule_data(schedule))
                else:
                    included.append(
                        {
                            "id": ref["id"],
                            "type": "schedule_target",
                            "attributes": {"position": target.position},
                            "relationships": {"schedule": {"data": {"id": target.id, "type": "schedules"}}},
                        }
                    )
    return {
        "data": {
            "id": policy.id,
            "type": "policies",
            "attributes": {
                "name": policy.name,
                "resolve_page_on_policy_end": policy.resolve_page_on_policy_end,
                "retries": policy.retries,
            },
            "relationships": {
                "steps": {"data": [{"id": s.id, "type": "steps"} for s in policy.steps]},
                "teams": {"data": [{"id": t, "type": "teams"} for t in policy.team_ids]},
            },
        },
        "included": unique(included),
    }


@router.post("/api/v2/on-call/escalation-policies", status_code=201)
@contract(body=PolicyCreateRequest, returns=PolicyResponse)
async def create_policy(request: Request, include: str | None = None, who: Caller = Depends(caller)) -> dict:
    wanted = parse_include(include, POLICY_INCLUDES)
    data = (await parse_body(request, PolicyCreateRequest)).data
    async with on_call(who) as (uow, directory):
        policy = await service.create_policy(
            uow, directory, who.org_id, who.user_id, data.attributes.model_dump(), team_ids_of(data.relationships)
        )
        document = await policy_document(policy, wanted, directory, uow)
        await uow.commit()
    return document


@router.get("/api/v2/on-call/escalation-policies/{policy_id}")
@contract(returns=PolicyResponse)
async def get_policy(policy_id: str, include: str | None = None, who: Caller = Depends(caller)) -> dict[str, Any]:
    wanted = parse_include(include, POLICY_INCLUDES)
    async with on_call(who, read_only=True) as (uow, directory):
        policy = await service.get_policy(uow, who.org_id, policy_id)
        return await policy_document(policy, wanted, directory, uow)


@router.put("/api/v2/on-call/escalation-policies/{policy_id}")
@contract(body=PolicyUpdateRequest, returns=PolicyResponse)
async def update_policy(
    policy_id: str, request: Request, include: str | None = None, who: Caller = Depends(caller)
) -> dict[str, Any]:
    wanted = parse_include(include, POLICY_INCLUDES)
    data = (await parse_body(request, PolicyUpdateRequest)).data
    async with on_call(who) as (uow, directory):
        policy = await service.update_policy(
            uow, directory, who.org_id, who.user_id, policy_id, data.id, data.attributes.model_dump(),
            team_ids_of(data.relationships),
        )  # fmt: skip
        document = await policy_document(policy, wanted, directory, uow)
        await uow.commit()
    return document


@router.delete("/api/v2/on-call/escalation-policies/{policy_id}", status_code=204)
@contract(errors={409})
async def delete_policy(policy_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow(ON_CALL) as uow:
        await service.delete_policy(uow, who.org_id, who.user_id, policy_id)
        await uow.commit()
    return Response(status_code=204)
