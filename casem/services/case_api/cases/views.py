"""HTTP views for /api/v2/cases (Datadog CaseManagementApi case operations)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from casem.domain.cases import STANDARD_TYPE_ID, STANDARD_TYPE_NAME, Case
from casem.services.case_api.cases import service
from casem.services.case_api.cases.schemas import CaseCreateRequest
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import iso, parse_body

router = APIRouter(prefix="/api/v2/cases", tags=["cases"])


def _user(user_id: str | None) -> dict[str, Any]:
    return {"data": {"id": user_id, "type": "user"} if user_id else None}


def serialize_case(case: Case) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "key": case.key,
        "title": case.title,
        "description": case.description,
        "status": case.status,
        "status_group": case.status_group,
        "priority": case.priority,
        "type_id": case.type_id,
        "attributes": case.attributes,
        "custom_attributes": case.custom_attributes,
        "created_at": iso(case.created_at),
        "modified_at": iso(case.modified_at),
        "closed_at": iso(case.closed_at),
        "archived_at": iso(case.archived_at),
        "due_date": case.due_date.isoformat() if case.due_date else None,
        "resolved_reason": case.resolved_reason,
    }
    if case.type_id == STANDARD_TYPE_ID:
        # `type` is Datadog's legacy enum with a single value; custom types are identified by type_id only.
        attributes["type"] = STANDARD_TYPE_NAME
    return {
        "id": case.id,
        "type": "case",
        "attributes": attributes,
        "relationships": {
            "assignee": _user(case.assignee_id),
            "created_by": _user(case.created_by_id),
            "modified_by": _user(case.modified_by_id),
            "project": {"data": {"id": case.project_id, "type": "project"}},
        },
    }


@router.post("", status_code=201)
async def create_case(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, CaseCreateRequest)
    attrs, rels = body.data.attributes, body.data.relationships
    if rels.project.data is None:
        from casem.domain.errors import InvalidInput

        raise InvalidInput("a case needs a project", "/data/relationships/project/data")
    new = service.NewCase(
        project_id=rels.project.data.id,
        title=attrs.title,
        type_id=attrs.type_id,
        description=attrs.description,
        priority=attrs.priority,
        status=attrs.status_name,
        assignee_id=rels.assignee.data.id if rels.assignee and rels.assignee.data else None,
        custom_attributes=attrs.custom_attributes,
    )
    async with who.uow() as uow:
        case = await service.create_case(uow, who.org_id, who.user_id, new)
        await uow.commit()
    return {"data": serialize_case(case)}


@router.get("/{case_id}")
async def get_case(case_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        case = await service.get_case(uow, who.org_id, case_id)
    return {"data": serialize_case(case)}
