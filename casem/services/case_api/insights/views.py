"""HTTP views for /api/v2/cases/{case_id}/insights (Datadog CaseManagementApi add_case_insights,
remove_case_insights). Both answer the case, with the insights it holds afterwards."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.insights import service
from casem.domain.cases import Case
from casem.services.case_api.cases.schemas import CaseResponse
from casem.services.case_api.cases.views import serialize_case
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.insights.schemas import CaseInsightsRequest
from casem.services.case_api.jsonapi import parse_body
from casem.services.case_api.openapi import contract

router = APIRouter(prefix="/api/v2/cases/{case_id}/insights", tags=["case insights"])


async def _case_with_insights(uow: UnitOfWork, case: Case) -> dict[str, Any]:
    document = serialize_case(case)
    document["attributes"]["insights"] = [
        {"ref": i.ref, "resource_id": i.resource_id, "type": i.type} for i in await service.list_insights(uow, case.id)
    ]
    return {"data": document}


@router.put("")
@contract(body=CaseInsightsRequest, returns=CaseResponse)
async def add_case_insights(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, CaseInsightsRequest)
    async with who.uow() as uow:
        case = await service.add_insights(uow, who.org_id, who.user_id, case_id, body.data.attributes.insights)
        await uow.session.flush()  # read back in the same transaction: a read replica could lag behind
        document = await _case_with_insights(uow, case)
        await uow.commit()
    return document


@router.delete("")
@contract(body=CaseInsightsRequest, returns=CaseResponse)
async def remove_case_insights(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, CaseInsightsRequest)
    async with who.uow() as uow:
        case = await service.remove_insights(uow, who.org_id, who.user_id, case_id, body.data.attributes.insights)
        await uow.session.flush()  # read back in the same transaction: a read replica could lag behind
        document = await _case_with_insights(uow, case)
        await uow.commit()
    return document
