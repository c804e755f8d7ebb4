"""HTTP views of casem's case merges (casem's own API, beside the Datadog-compatible routes):

POST /api/v2/casem/cases/{case_id}/merge    202 the merge, PENDING; its workflow runs on the caseworker
     {"data": {"type": "merge", "relationships": {"duplicates": {"data": [{"id": ID_OR_KEY, "type": "case"}]}}}}
     404 for an unknown (or another org's) case, 400 for a case merged into itself,
     409 when a duplicate (or the primary) was already merged into another case,
     503 when this case-api has no Temporal (CASEM_TEMPORAL_ADDRESS) to start the workflow on
GET  /api/v2/casem/merges/{merge_id}        200 the merge: status (PENDING, RUNNING, COMPLETED, FAILED)
                                                and each duplicate's outcome so far
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from casem.app.merges import service
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import error_response, iso, parse_body
from casem.services.case_api.merges.schemas import MergeCreateRequest, MergeResponse
from casem.services.case_api.openapi import contract
from casem.topology.tenants import CASE_MANAGEMENT

log = structlog.get_logger("case-api.merges")

router = APIRouter(prefix="/api/v2/casem", tags=["casem"])


def serialize_merge(found: service.MergeView) -> dict[str, Any]:
    row = found.row
    results = [
        {
            "case_id": p.duplicate_id,
            "outcome": p.outcome,
            "cells_copied": p.cells_copied,
            "watchers_added": p.watchers_added,
            "done_at": iso(p.done_at),
        }
        for p in found.progress
    ]
    return {
        "data": {
            "id": row.id,
            "type": "merge",
            "attributes": {
                "status": row.status,
                "source": row.source,
                "workflow_id": row.workflow_id,
                "detail": row.detail,
                "created_at": iso(row.created_at),
                "started_at": iso(row.started_at),
                "completed_at": iso(row.completed_at),
                "results": results,
            },
            "relationships": {
                "primary": {"data": {"id": row.primary_case_id, "type": "case"}},
                "duplicates": {"data": [{"id": d, "type": "case"} for d in row.duplicate_ids]},
            },
        }
    }


def _caseworker(request: Request) -> Any:
    """The TemporalCaseworker the runner puts on app.state (None: this case-api has no Temporal)."""
    return getattr(request.app.state, "caseworker", None)


@router.post("/cases/{case_id}/merge", status_code=202, response_model=None)
@contract(body=MergeCreateRequest, returns=MergeResponse, errors={409})
async def merge_cases(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any] | JSONResponse:
    body = await parse_body(request, MergeCreateRequest)
    refs = [d.id for d in body.data.relationships.duplicates.data]
    caseworker = _caseworker(request)
    async with who.uow() as uow:
        merge = await service.request_merge(uow, CASE_MANAGEMENT, who.org_id, who.user_id, case_id, refs)
        if caseworker is None:  # checked after the lookups: another org's ids are 404 either way
            return error_response(503, "Service Unavailable", "merges need the caseworker: set CASEM_TEMPORAL_ADDRESS")
        await uow.commit()
    try:
        await caseworker.start_merge(merge)
    except Exception as exc:
        log.warning("merge workflow not started", merge_id=merge.merge_id, error=repr(exc)[:300])
        # The row exists: leave it saying why nothing happened rather than PENDING forever.
        async with who.uow() as uow:
            await service.mark_unstarted(uow, merge.merge_id, f"the merge workflow could not be started: {exc}")
            await uow.commit()
        response = error_response(503, "Service Unavailable", f"the merge workflow could not be started: {exc}")
        response.headers["Retry-After"] = "2"  # Temporal restarts in seconds; the request can be sent again as is
        return response
    async with who.uow(read_only=True) as uow:
        return serialize_merge(await service.get_merge(uow, who.org_id, merge.merge_id))


@router.get("/merges/{merge_id}")
@contract(returns=MergeResponse)
async def get_merge(merge_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        return serialize_merge(await service.get_merge(uow, who.org_id, merge_id))
