"""HTTP views for /api/v2/maintenance_windows (Datadog CaseManagementApi maintenance window operations)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from casem.app.maintenance_windows import service
from casem.domain.maintenance_windows import MaintenanceWindow
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import iso, parse_body
from casem.services.case_api.maintenance_windows.schemas import (
    MaintenanceWindowCreateRequest,
    MaintenanceWindowResponse,
    MaintenanceWindowsResponse,
    MaintenanceWindowUpdateRequest,
)
from casem.services.case_api.openapi import contract
from casem.services.case_api.schemas import dump_set

router = APIRouter(prefix="/api/v2/maintenance_windows", tags=["maintenance windows"])


def serialize_window(window: MaintenanceWindow) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "name": window.name,
        "query": window.query,
        "start_at": iso(window.start_at),
        "end_at": iso(window.end_at),
    }
    # created_by / updated_by are user ids; omitted when no user made the change.
    if window.created_by_id:
        attributes["created_by"] = window.created_by_id
    if window.updated_by_id:
        attributes["updated_by"] = window.updated_by_id
    return {"id": window.id, "type": "maintenance_window", "attributes": attributes}


@router.post("", status_code=201)
@contract(body=MaintenanceWindowCreateRequest, returns=MaintenanceWindowResponse)
async def create_maintenance_window(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    attrs = (await parse_body(request, MaintenanceWindowCreateRequest)).data.attributes
    async with who.uow() as uow:
        window = await service.create_window(
            uow,
            who.org_id,
            who.user_id,
            name=attrs.name,
            query=attrs.query,
            start_at=attrs.start_at,
            end_at=attrs.end_at,
        )
        await uow.commit()
    return {"data": serialize_window(window)}


@router.get("")
@contract(returns=MaintenanceWindowsResponse)
async def list_maintenance_windows(who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        found = await service.list_windows(uow, who.org_id)
    return {"data": [serialize_window(w) for w in found]}


@router.put("/{maintenance_window_id}")
@contract(body=MaintenanceWindowUpdateRequest, returns=MaintenanceWindowResponse)
async def update_maintenance_window(
    maintenance_window_id: str, request: Request, who: Caller = Depends(caller)
) -> dict[str, Any]:
    body = await parse_body(request, MaintenanceWindowUpdateRequest)
    changes = dump_set(body.data.attributes) if body.data.attributes is not None else {}
    async with who.uow() as uow:
        window = await service.update_window(uow, who.org_id, who.user_id, maintenance_window_id, changes)
        await uow.commit()
    return {"data": serialize_window(window)}


@router.delete("/{maintenance_window_id}", status_code=204)
async def delete_maintenance_window(maintenance_window_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await service.delete_window(uow, who.org_id, who.user_id, maintenance_window_id)
        await uow.commit()
    return Response(status_code=204)
