"""HTTP views for /api/v2/cases/projects (Datadog CaseManagementApi project operations)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from casem.app.projects import service
from casem.domain.project_settings import unavailable_notices
from casem.domain.projects import Project
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import parse_body
from casem.services.case_api.openapi import contract
from casem.services.case_api.projects.schemas import (
    ProjectCreateRequest,
    ProjectResponse,
    ProjectsResponse,
    ProjectUpdateRequest,
)
from casem.services.case_api.schemas import dump_set

router = APIRouter(prefix="/api/v2/cases/projects", tags=["projects"])


def serialize_project(p: Project) -> dict[str, Any]:
    return {
        "id": p.id,
        "type": "project",
        "attributes": {
            "key": p.key,
            "name": p.name,
            "restricted": p.restricted,
            "enabled_custom_case_types": list(p.enabled_custom_case_types),
            **({"settings": p.settings} if p.settings else {}),
            **({"columns_config": p.columns_config} if p.columns_config else {}),
        },
        "relationships": {
            "member_team": {"data": [{"id": p.team_id, "type": "team_links"}] if p.team_id else []},
            "member_user": {"data": []},
        },
    }


@router.post("", status_code=201)
@contract(body=ProjectCreateRequest, returns=ProjectResponse, errors={409})
async def create_project(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, ProjectCreateRequest)
    attrs = body.data.attributes
    async with who.uow() as uow:
        project = await service.create_project(
            uow,
            who.org_id,
            who.user_id,
            key=attrs.key,
            name=attrs.name,
            enabled_custom_case_types=attrs.enabled_custom_case_types,
            team_uuid=attrs.team_uuid,
        )
        await uow.commit()
    return {"data": serialize_project(project)}


@router.get("")
@contract(returns=ProjectsResponse)
async def get_projects(who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        projects = await service.list_projects(uow, who.org_id)
    return {"data": [serialize_project(p) for p in projects]}


@router.get("/{project_id}")
@contract(returns=ProjectResponse)
async def get_project(project_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        project = await service.get_project(uow, who.org_id, project_id)
    return {"data": serialize_project(project)}


@router.patch("/{project_id}")
@contract(body=ProjectUpdateRequest, returns=ProjectResponse)
async def update_project(project_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, ProjectUpdateRequest)
    async with who.uow() as uow:
        changes = dump_set(body.data.attributes)
        project = await service.update_project(uow, who.org_id, who.user_id, project_id, changes)
        await uow.commit()
    answer: dict[str, Any] = {"data": serialize_project(project)}
    notices = unavailable_notices(changes.get("settings") or {})
    if notices:
        # Settings casem stores but cannot act on are said so, not silently ignored.
        answer["meta"] = {"warnings": notices}
    return answer


@router.delete("/{project_id}", status_code=204)
@contract(errors={409})
async def delete_project(project_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await service.delete_project(uow, who.org_id, who.user_id, project_id)
        await uow.commit()
    return Response(status_code=204)
