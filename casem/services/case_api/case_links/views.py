"""HTTP views for /api/v2/cases/link (Datadog CaseManagementApi create_case_link, list_case_links,
delete_case_link)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from casem.adapters.storage.conflicts import duplicate_is_conflict
from casem.app.case_links import service
from casem.domain.case_links import CaseLink
from casem.services.case_api.case_links.schemas import CaseLinkCreateRequest, CaseLinkResponse, CaseLinksResponse
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import parse_body
from casem.services.case_api.openapi import contract

router = APIRouter(prefix="/api/v2/cases/link", tags=["case links"])


def serialize_link(link: CaseLink) -> dict[str, Any]:
    return {
        "id": link.id,
        "type": "link",
        "attributes": {
            "parent_entity_type": link.parent_entity_type,
            "parent_entity_id": link.parent_entity_id,
            "child_entity_type": link.child_entity_type,
            "child_entity_id": link.child_entity_id,
            "relationship": link.relationship,
        },
    }


@router.post("", status_code=201)
@contract(body=CaseLinkCreateRequest, returns=CaseLinkResponse, errors={409})
async def create_case_link(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    attrs = (await parse_body(request, CaseLinkCreateRequest)).data.attributes
    # A concurrent request may create the same link between our check and our commit.
    with duplicate_is_conflict("this link was just created by another request"):
        async with who.uow() as uow:
            link = await service.create_link(uow, who.org_id, who.user_id, service.NewLink(**attrs.model_dump()))
            await uow.commit()
    return {"data": serialize_link(link)}


@router.get("")
@contract(returns=CaseLinksResponse, errors={404})  # entity_id names a case
async def list_case_links(
    entity_type: str | None = None,
    entity_id: str | None = None,
    relationship: str | None = None,
    who: Caller = Depends(caller),
) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        found = await service.list_links(uow, who.org_id, entity_type, entity_id, relationship)
    return {"data": [serialize_link(link) for link in found]}


@router.delete("/{link_id}", status_code=204)
@contract(errors={409})
async def delete_case_link(link_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await service.delete_link(uow, who.org_id, who.user_id, link_id)
        await uow.commit()
    return Response(status_code=204)
