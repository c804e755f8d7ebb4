"""HTTP views for /api/v2/cases/types (Datadog CaseManagementTypeApi)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from casem.app.case_types import service
from casem.domain.case_types import CaseType
from casem.services.case_api.case_types.schemas import (
    CaseTypeCreateRequest,
    CaseTypeResponse,
    CaseTypesResponse,
    CaseTypeUpdateRequest,
)
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import iso, parse_body
from casem.services.case_api.openapi import contract
from casem.services.case_api.schemas import dump_set

router = APIRouter(prefix="/api/v2/cases/types", tags=["case types"])


def serialize_case_type(t: CaseType) -> dict[str, Any]:
    return {
        "id": t.id,
        "type": "case_type",
        "attributes": {
            "name": t.name,
            "description": t.description,
            "emoji": t.emoji,
            "deleted_at": iso(t.deleted_at),
        },
    }


@router.post("", status_code=201)
@contract(body=CaseTypeCreateRequest, returns=CaseTypeResponse)
async def create_case_type(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    attrs = (await parse_body(request, CaseTypeCreateRequest)).data.attributes
    async with who.uow() as uow:
        case_type = await service.create_case_type(
            uow, who.org_id, who.user_id, name=attrs.name, description=attrs.description, emoji=attrs.emoji
        )
        await uow.commit()
    return {"data": serialize_case_type(case_type)}


@router.get("")
@contract(returns=CaseTypesResponse)
async def get_all_case_types(who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        types = await service.list_case_types(uow, who.org_id)
    return {"data": [serialize_case_type(t) for t in types]}


@router.put("/{case_type_id}")
@contract(body=CaseTypeUpdateRequest, returns=CaseTypeResponse)
async def update_case_type(case_type_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, CaseTypeUpdateRequest)
    changes = dump_set(body.data.attributes) if body.data.attributes else {}
    changes.pop("deleted_at", None)  # read-only
    async with who.uow() as uow:
        case_type = await service.update_case_type(uow, who.org_id, who.user_id, case_type_id, changes)
        await uow.commit()
    return {"data": serialize_case_type(case_type)}


@router.delete("/{case_type_id}", status_code=204)
async def delete_case_type(case_type_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await service.delete_case_type(uow, who.org_id, who.user_id, case_type_id)
        await uow.commit()
    return Response(status_code=204)
