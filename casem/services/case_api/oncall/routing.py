"""On-Call team routing rules and a team's on-call responders (Datadog's OnCallApi)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from casem.app.oncall import routing as service
from casem.app.oncall.schedules import parse_at
from casem.domain.oncall import RoutingRule, TeamRouting
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import parse_body
from casem.services.case_api.oncall.answers import RoutingResponse, TeamOnCallResponse
from casem.services.case_api.oncall.common import full_user, on_call, on_call_tenant, parse_include
from casem.services.case_api.openapi import contract
from casem.services.case_api.schemas import Strict

router = APIRouter(tags=["on-call routing"], dependencies=[Depends(on_call_tenant)])


class RoutingAttributes(Strict):
    rules: Any = None


class RoutingData(Strict):
    type: Literal["team_routing_rules"]
    id: str | None = None
    attributes: RoutingAttributes | None = None


class RoutingRequest(Strict):
    data: RoutingData


def rule_resource(rule: RoutingRule) -> dict[str, Any]:
    attributes: dict[str, Any] = {"query": rule.query, "actions": list(rule.actions)}
    if rule.urgency is not None:
        attributes["urgency"] = rule.urgency
    if rule.time_restriction is not None:
        attributes["time_restriction"] = rule.time_restriction.to_json()
    resource: dict[str, Any] = {"id": rule.id, "type": "team_routing_rules", "attributes": attributes}
    if rule.policy_id:
        resource["relationships"] = {"policy": {"data": {"id": rule.policy_id, "type": "policies"}}}
    return resource


def routing_document(routing: TeamRouting, include: set[str]) -> dict[str, Any]:
    # `rules.policy` is accepted, but Datadog's model lets `included` hold rules only: each rule's policy is its
    # relationship.
    return {
        "data": {
            "id": routing.team_id,
            "type": "team_routing_rules",
            "relationships": {"rules": {"data": [{"id": r.id, "type": "team_routing_rules"} for r in routing.rules]}},
        },
        "included": [rule_resource(r) for r in routing.rules] if "rules" in include else [],
    }


@router.get("/api/v2/on-call/teams/{team_id}/routing-rules")
@contract(returns=RoutingResponse)
async def get_routing_rules(team_id: str, include: str | None = None, who: Caller = Depends(caller)) -> dict:
    wanted = parse_include(include, ("rules", "rules.policy"))
    async with on_call(who, read_only=True) as (uow, directory):
        routing = await service.get_rules(uow, directory, who.org_id, team_id)
    return routing_document(routing, wanted)


@router.put("/api/v2/on-call/teams/{team_id}/routing-rules")
@contract(body=RoutingRequest, returns=RoutingResponse)
async def set_routing_rules(
    team_id: str, request: Request, include: str | None = None, who: Caller = Depends(caller)
) -> dict[str, Any]:
    wanted = parse_include(include, ("rules", "rules.policy"))
    data = (await parse_body(request, RoutingRequest)).data
    rules = data.attributes.rules if data.attributes is not None else None
    async with on_call(who) as (uow, directory):
        routing = await service.set_rules(uow, directory, who.org_id, who.user_id, team_id, data.id, rules or [])
        await uow.commit()
    return routing_document(routing, wanted)


@router.get("/api/v2/on-call/teams/{team_id}/on-call")
@contract(returns=TeamOnCallResponse)
async def team_on_call_users(
    team_id: str,
    who: Caller = Depends(caller),
    include: str | None = None,
    filter_at_ts: str | None = Query(None, alias="filter[at_ts]"),
) -> dict[str, Any]:
    """Who the team's policy pages now: the first step's responders, and each later step's (`escalations`)."""
    wanted = parse_include(include, ("responders", "escalations", "escalations.responders"))
    async with on_call(who, read_only=True) as (uow, directory):
        found = await service.team_on_call(uow, directory, who.org_id, team_id, parse_at(filter_at_ts))
        everyone = [*found.responders, *(u for _, users in found.escalations for u in users)]
        people = await directory.users(everyone) if wanted - {"escalations"} else {}
    included: list[dict[str, Any]] = []
    if "responders" in wanted:
        included += [full_user(people[u]) for u in found.responders if u in people]
    if "escalations" in wanted:
        included += [
            {
                "id": step.id,
                "type": "escalation_policy_steps",
                "relationships": {"responders": {"data": [{"id": u, "type": "users"} for u in users]}},
            }
            for step, users in found.escalations
        ]
    if "escalations.responders" in wanted:
        listed = {item["id"] for item in included if item["type"] == "users"}
        for _, users in found.escalations:
            for u in users:
                if u in people and u not in listed:
                    included.append(full_user(people[u]))
                    listed.add(u)
    return {
        "data": {
            "id": team_id.lower(),
            "type": "team_oncall_responders",
            "relationships": {
                "responders": {"data": [{"id": u, "type": "users"} for u in found.responders]},
                "escalations": {
                    "data": [{"id": step.id, "type": "escalation_policy_steps"} for step, _ in found.escalations]
                },
            },
        },
        "included": included,
    }
