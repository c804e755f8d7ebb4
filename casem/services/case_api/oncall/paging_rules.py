"""casem's project paging rules: which cases of a project page which on-call team (the paging flavor applies them).

PUT    /api/v2/casem/projects/{project_id}/paging   {data: {type: paging_rule, attributes: {team_id, query, urgency}}}
GET    /api/v2/casem/projects/{project_id}/paging
DELETE /api/v2/casem/projects/{project_id}/paging
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import Field

from casem.app.oncall import paging_rules as service
from casem.domain.oncall import PagingRule
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import parse_body
from casem.services.case_api.oncall.common import on_call, on_call_tenant
from casem.services.case_api.openapi import contract
from casem.services.case_api.schemas import Answer, Strict, ToOne

router = APIRouter(tags=["on-call paging rules"], dependencies=[Depends(on_call_tenant)])


class PagingRuleData(Strict):
    type: Literal["paging_rule"]
    attributes: dict[str, Any]


class PagingRuleRequest(Strict):
    data: PagingRuleData


class PagingRuleAnswerAttributes(Answer):
    query: str
    urgency: str
    enabled: bool


class PagingRuleAnswerRelationships(Answer):
    team: ToOne
    project: ToOne


class PagingRuleResource(Answer):
    id: str = Field(description="The project's id: a project has one paging rule.")
    type: Literal["paging_rule"]
    attributes: PagingRuleAnswerAttributes
    relationships: PagingRuleAnswerRelationships


class PagingRuleResponse(Answer):
    data: PagingRuleResource


def rule_document(rule: PagingRule) -> dict[str, Any]:
    return {
        "data": {
            "id": rule.project_id,
            "type": "paging_rule",
            "attributes": {"query": rule.query, "urgency": rule.urgency, "enabled": rule.enabled},
            "relationships": {
                "team": {"data": {"id": rule.team_id, "type": "teams"}},
                "project": {"data": {"id": rule.project_id, "type": "project"}},
            },
        }
    }


@router.put("/api/v2/casem/projects/{project_id}/paging")
@contract(body=PagingRuleRequest, returns=PagingRuleResponse)
async def put_paging_rule(project_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    attrs = (await parse_body(request, PagingRuleRequest)).data.attributes
    async with on_call(who) as (uow, directory):
        rule = await service.put_paging_rule(uow, directory.uow, directory, who.org_id, who.user_id, project_id, attrs)
        await uow.commit()
    return rule_document(rule)


@router.get("/api/v2/casem/projects/{project_id}/paging")
@contract(returns=PagingRuleResponse)
async def get_paging_rule(project_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with on_call(who, read_only=True) as (uow, directory):
        rule = await service.get_paging_rule(uow, directory.uow, who.org_id, project_id)
    return rule_document(rule)


@router.delete("/api/v2/casem/projects/{project_id}/paging", status_code=204)
async def delete_paging_rule(project_id: str, who: Caller = Depends(caller)) -> Response:
    async with on_call(who) as (uow, directory):
        await service.delete_paging_rule(uow, directory.uow, who.org_id, project_id)
        await uow.commit()
    return Response(status_code=204)
