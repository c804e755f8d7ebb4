"""HTTP views for /api/v2/cases/views (Datadog CaseManagementApi case view operations)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from casem.app.case_views import service
from casem.domain.case_views import CaseView
from casem.services.case_api.case_views.schemas import (
    CaseViewCreateRequest,
    CaseViewResponse,
    CaseViewsResponse,
    CaseViewUpdateRequest,
)
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import iso, parse_body
from casem.services.case_api.openapi import contract
from casem.services.case_api.schemas import dump_set

router = APIRouter(prefix="/api/v2/cases/views", tags=["case views"])


def _user(user_id: str | None) -> dict[str, Any]:
    return {"data": {"id": user_id, "type": "user"} if user_id else None}


def serialize_view(view: CaseView) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "name": view.name,
        "query": view.query,
        "created_at": iso(view.created_at),
        "modified_at": iso(view.modified_at),
    }
    if view.np_rule_id:
        attributes["np_rule_id"] = view.np_rule_id
    return {
        "id": view.id,
        "type": "view",
        "attributes": attributes,
        "relationships": {
            "created_by": _user(view.created_by_id),
            "modified_by": _user(view.modified_by_id),
            "project": {"data": {"id": view.project_id, "type": "project"}},
        },
    }


@router.post("", status_code=201)
@contract(body=CaseViewCreateRequest, returns=CaseViewResponse)
async def create_case_view(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    attrs = (await parse_body(request, CaseViewCreateRequest)).data.attributes
    async with who.uow() as uow:
        view = await service.create_view(
            uow,
            who.org_id,
            who.user_id,
            name=attrs.name,
            project_id=attrs.project_id,
            query=attrs.query,
            np_rule_id=attrs.np_rule_id,
        )
        await uow.commit()
    return {"data": serialize_view(view)}


@router.get("")
@contract(returns=CaseViewsResponse, errors={404})  # project_id names a project
async def list_case_views(project_id: str | None = None, who: Caller = Depends(caller)) -> dict[str, Any]:
    # The client always names a project; without one, casem lists the views of every project of the org.
    async with who.uow(read_only=True) as uow:
        found = await service.list_views(uow, who.org_id, project_id)
    return {"data": [serialize_view(v) for v in found]}


@router.get("/{view_id}")
@contract(returns=CaseViewResponse)
async def get_case_view(view_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        view = await service.get_view(uow, who.org_id, view_id)
    return {"data": serialize_view(view)}


@router.put("/{view_id}")
@contract(body=CaseViewUpdateRequest, returns=CaseViewResponse)
async def update_case_view(view_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, CaseViewUpdateRequest)
    changes = dump_set(body.data.attributes) if body.data.attributes is not None else {}
    async with who.uow() as uow:
        view = await service.update_view(uow, who.org_id, who.user_id, view_id, changes)
        await uow.commit()
    return {"data": serialize_view(view)}


@router.delete("/{view_id}", status_code=204)
async def delete_case_view(view_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await service.delete_view(uow, who.org_id, who.user_id, view_id)
        await uow.commit()
    return Response(status_code=204)
