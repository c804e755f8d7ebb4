"""HTTP views of automation.

Datadog-compatible (CaseManagementApi *_case_automation_rule):

    POST   /api/v2/cases/projects/{project_id}/rules                      201 the rule
    GET    /api/v2/cases/projects/{project_id}/rules                      200 the project's rules
    GET    /api/v2/cases/projects/{project_id}/rules/{rule_id}            200 (400 for a malformed id)
    PUT    /api/v2/cases/projects/{project_id}/rules/{rule_id}            200 the rule (name, trigger, action replaced)
    DELETE /api/v2/cases/projects/{project_id}/rules/{rule_id}            204
    POST   /api/v2/cases/projects/{project_id}/rules/{rule_id}/enable     200 the rule
    POST   /api/v2/cases/projects/{project_id}/rules/{rule_id}/disable    200 the rule

casem's own, per project (GET answers the current settings, defaults included; PUT replaces them):

    /api/v2/casem/projects/{project_id}/sla                  per-priority acknowledge/close targets (seconds)
    /api/v2/casem/projects/{project_id}/reminders            due-date reminder lead times (seconds; 0 = on the day)
    /api/v2/casem/projects/{project_id}/duplicate_detection  enabled, threshold (0-1], window_seconds, auto_merge
                                                             (merge each suggested duplicate into its candidate)
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from casem.app.automation import rules as service
from casem.app.automation.settings import ProjectSettings
from casem.domain.automation import DISABLED, ENABLED, AutomationRule
from casem.services.case_api.automation_rules.schemas import (
    DuplicatesRequest,
    DuplicatesResponse,
    RemindersRequest,
    RemindersResponse,
    RuleCreateRequest,
    RuleResponse,
    RulesResponse,
    RuleUpdateRequest,
    SlaRequest,
    SlaResponse,
)
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import iso, parse_body
from casem.services.case_api.openapi import contract

router = APIRouter(prefix="/api/v2/cases/projects/{project_id}/rules", tags=["automation rules"])
casem_router = APIRouter(prefix="/api/v2/casem/projects/{project_id}", tags=["casem"])


def _user(user_id: str | None) -> dict[str, Any]:
    return {"data": {"id": user_id, "type": "users"} if user_id else None}


def serialize_rule(rule: AutomationRule) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "action": rule.action,
        "created_at": iso(rule.created_at),
        "name": rule.name,
        "state": rule.state,
        "trigger": rule.trigger,
    }
    if rule.modified_at is not None:  # the client types it as a non-nullable datetime
        attributes["modified_at"] = iso(rule.modified_at)
    return {
        "id": rule.id,
        "type": "rule",
        "attributes": attributes,
        "relationships": {"created_by": _user(rule.created_by_id), "modified_by": _user(rule.modified_by_id)},
    }


def _attributes(model: Any) -> dict[str, Any] | None:
    # Members sent, without the nulls pydantic fills in for absent optional trigger/action data.
    return model.model_dump(exclude_none=True) if model is not None else None


@router.post("", status_code=201)
@contract(body=RuleCreateRequest, returns=RuleResponse)
async def create_case_automation_rule(project_id: str, request: Request, who: Caller = Depends(caller)) -> dict:
    body = await parse_body(request, RuleCreateRequest)
    async with who.uow() as uow:
        rule = await service.create_rule(uow, who.org_id, who.user_id, project_id, _attributes(body.data.attributes))
        await uow.commit()
    return {"data": serialize_rule(rule)}


@router.get("")
@contract(returns=RulesResponse)
async def list_case_automation_rules(project_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        rules = await service.list_rules(uow, who.org_id, project_id)
    return {"data": [serialize_rule(r) for r in rules]}


@router.get("/{rule_id}")
@contract(returns=RuleResponse)
async def get_case_automation_rule(project_id: str, rule_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        rule = await service.get_rule(uow, who.org_id, project_id, rule_id)
    return {"data": serialize_rule(rule)}


@router.put("/{rule_id}")
@contract(body=RuleUpdateRequest, returns=RuleResponse)
async def update_case_automation_rule(
    project_id: str, rule_id: str, request: Request, who: Caller = Depends(caller)
) -> dict[str, Any]:
    body = await parse_body(request, RuleUpdateRequest)
    async with who.uow() as uow:
        rule = await service.update_rule(
            uow, who.org_id, who.user_id, project_id, rule_id, _attributes(body.data.attributes)
        )
        await uow.commit()
    return {"data": serialize_rule(rule)}


@router.delete("/{rule_id}", status_code=204)
async def delete_case_automation_rule(project_id: str, rule_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await service.delete_rule(uow, who.org_id, project_id, rule_id)
        await uow.commit()
    return Response(status_code=204)


async def _set_state(who: Caller, project_id: str, rule_id: str, state: str) -> dict[str, Any]:
    async with who.uow() as uow:
        rule = await service.set_state(uow, who.org_id, who.user_id, project_id, rule_id, state)
        await uow.commit()
    return {"data": serialize_rule(rule)}


@router.post("/{rule_id}/enable")
@contract(returns=RuleResponse)
async def enable_case_automation_rule(project_id: str, rule_id: str, who: Caller = Depends(caller)) -> dict:
    return await _set_state(who, project_id, rule_id, ENABLED)


@router.post("/{rule_id}/disable")
@contract(returns=RuleResponse)
async def disable_case_automation_rule(project_id: str, rule_id: str, who: Caller = Depends(caller)) -> dict:
    return await _set_state(who, project_id, rule_id, DISABLED)


# -- casem's per-project settings ---------------------------------------------------------------------------


def _document(kind: str, project_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"id": project_id, "type": kind, "attributes": attributes}}


def _sla(project_id: str, found: ProjectSettings) -> dict[str, Any]:
    return _document("sla_policy", project_id, {"targets": found.sla})


def _reminders(project_id: str, found: ProjectSettings) -> dict[str, Any]:
    return _document("reminder_policy", project_id, {"lead_times_seconds": list(found.lead_seconds)})


def _duplicates(project_id: str, found: ProjectSettings) -> dict[str, Any]:
    return _document("duplicate_detection", project_id, asdict(found.duplicates))


@casem_router.get("/sla")
@contract(returns=SlaResponse)
async def get_sla(project_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        found = await service.get_settings(uow, who.org_id, project_id)
    return _sla(project_id, found)


@casem_router.put("/sla")
@contract(body=SlaRequest, returns=SlaResponse)
async def put_sla(project_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, SlaRequest)
    targets = {p: t.model_dump() for p, t in body.data.attributes.targets.items()}
    async with who.uow() as uow:
        found = await service.put_sla(uow, who.org_id, who.user_id, project_id, targets)
        await uow.commit()
    return _sla(project_id, found)


@casem_router.get("/reminders")
@contract(returns=RemindersResponse)
async def get_reminders(project_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        found = await service.get_settings(uow, who.org_id, project_id)
    return _reminders(project_id, found)


@casem_router.put("/reminders")
@contract(body=RemindersRequest, returns=RemindersResponse)
async def put_reminders(project_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, RemindersRequest)
    async with who.uow() as uow:
        found = await service.put_reminders(
            uow, who.org_id, who.user_id, project_id, body.data.attributes.lead_times_seconds
        )
        await uow.commit()
    return _reminders(project_id, found)


@casem_router.get("/duplicate_detection")
@contract(returns=DuplicatesResponse)
async def get_duplicate_detection(project_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        found = await service.get_settings(uow, who.org_id, project_id)
    return _duplicates(project_id, found)


@casem_router.put("/duplicate_detection")
@contract(body=DuplicatesRequest, returns=DuplicatesResponse)
async def put_duplicate_detection(project_id: str, request: Request, who: Caller = Depends(caller)) -> dict:
    body = await parse_body(request, DuplicatesRequest)
    async with who.uow() as uow:
        found = await service.put_duplicates(
            uow, who.org_id, who.user_id, project_id, body.data.attributes.model_dump(exclude_none=True)
        )
        await uow.commit()
    return _duplicates(project_id, found)
