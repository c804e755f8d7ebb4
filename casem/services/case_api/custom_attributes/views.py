"""HTTP views for /api/v2/cases/types/.../custom_attributes (Datadog CaseManagementAttributeApi)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from casem.adapters.storage.conflicts import duplicate_is_conflict
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.custom_attributes import service
from casem.domain.case_types import CustomAttributeConfig
from casem.services.case_api.custom_attributes.schemas import (
    CustomAttributeCreateRequest,
    CustomAttributeResponse,
    CustomAttributesResponse,
    CustomAttributeUpdateRequest,
)
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import parse_body
from casem.services.case_api.openapi import contract
from casem.services.case_api.schemas import dump_set

router = APIRouter(prefix="/api/v2/cases/types", tags=["custom attributes"])


def serialize_config(c: CustomAttributeConfig) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "case_type_id": c.case_type_id,
        "key": c.key,
        "display_name": c.display_name,
        "description": c.description,
        "type": c.type,
        "is_multi": c.is_multi,
        "map_from": c.map_from,
    }
    if c.options:
        attributes["type_data"] = {"options": [{"value": v} for v in c.options]}
    return {"id": c.id, "type": "custom_attribute", "attributes": attributes}


async def _commit(uow: UnitOfWork, key: str) -> None:
    # The live-key unique index catches a concurrent create of the same key.
    with duplicate_is_conflict(f"a custom attribute with key {key!r} already exists for this case type"):
        await uow.commit()


# Declared before the /{case_type_id} routes so "custom_attributes" is never read as a case type id.
@router.get("/custom_attributes")
@contract(returns=CustomAttributesResponse)
async def get_all_custom_attributes(who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        configs = await service.list_configs(uow, who.org_id)
    return {"data": [serialize_config(c) for c in configs]}


@router.post("/{case_type_id}/custom_attributes", status_code=201)
@contract(body=CustomAttributeCreateRequest, returns=CustomAttributeResponse, errors={409})
async def create_custom_attribute_config(
    case_type_id: str, request: Request, who: Caller = Depends(caller)
) -> dict[str, Any]:
    attrs = (await parse_body(request, CustomAttributeCreateRequest)).data.attributes
    options = [o.value for o in attrs.type_data.options] if attrs.type_data and attrs.type_data.options else None
    async with who.uow() as uow:
        config = await service.create_config(
            uow,
            who.org_id,
            who.user_id,
            case_type_id,
            key=attrs.key,
            display_name=attrs.display_name,
            type=attrs.type,
            is_multi=attrs.is_multi,
            description=attrs.description,
            options=options,
            map_from=attrs.map_from,
        )
        await _commit(uow, config.key)
    return {"data": serialize_config(config)}


@router.get("/{case_type_id}/custom_attributes")
@contract(returns=CustomAttributesResponse)
async def get_all_custom_attribute_configs_by_case_type(
    case_type_id: str, who: Caller = Depends(caller)
) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        configs = await service.list_configs(uow, who.org_id, case_type_id)
    return {"data": [serialize_config(c) for c in configs]}


@router.put("/{case_type_id}/custom_attributes/{custom_attribute_id}")
@contract(body=CustomAttributeUpdateRequest, returns=CustomAttributeResponse)
async def update_custom_attribute_config(
    case_type_id: str, custom_attribute_id: str, request: Request, who: Caller = Depends(caller)
) -> dict[str, Any]:
    body = await parse_body(request, CustomAttributeUpdateRequest)
    async with who.uow() as uow:
        config = await service.update_config(
            uow, who.org_id, who.user_id, case_type_id, custom_attribute_id, dump_set(body.data.attributes)
        )
        await uow.commit()
    return {"data": serialize_config(config)}


@router.delete("/{case_type_id}/custom_attributes/{custom_attribute_id}", status_code=204)
async def delete_custom_attribute_config(
    case_type_id: str, custom_attribute_id: str, who: Caller = Depends(caller)
) -> Response:
    async with who.uow() as uow:
        await service.delete_config(uow, who.org_id, who.user_id, case_type_id, custom_attribute_id)
        await uow.commit()
    return Response(status_code=204)
