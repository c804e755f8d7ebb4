"""casem's own endpoints beside the Datadog-compatible ones: the audit trail and case analytics.

GET /api/v2/casem/audit?case_id=...&page[size]=...&page[number]=...   who changed what (newest first)
GET /api/v2/casem/analytics?project_id=...&time_zone=...             created/closed, open by priority, MTTA, MTTR;
                                                                     on_call: pages' MTTA/MTTR per team, per
                                                                     responder, out of hours (in time_zone)
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query

from casem.adapters.storage.tables import audit_log
from casem.app.analytics.service import summary
from casem.app.cases.service import get_case
from casem.app.oncall.analytics import summary as on_call_summary
from casem.app.paging import MAX_PAGE_NUMBER
from casem.app.projects.service import get_project
from casem.domain.oncall_schedules import zone
from casem.services.case_api.activity.schemas import AnalyticsResponse, AuditResponse
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import iso
from casem.services.case_api.openapi import contract
from casem.topology.tenants import ON_CALL

router = APIRouter(prefix="/api/v2/casem", tags=["casem"])


@router.get("/audit")
@contract(returns=AuditResponse, errors={404})  # case_id names a case
async def audit(
    case_id: str | None = Query(None, description="A case id or key; omit for the whole org."),
    page_size: int = Query(50, alias="page[size]", ge=1, le=500),
    page_number: int = Query(0, alias="page[number]", ge=0, le=MAX_PAGE_NUMBER),
    who: Caller = Depends(caller),
) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        scope = [audit_log.c.org_id == who.org_id]
        if case_id:
            scope.append(audit_log.c.case_id == (await get_case(uow, who.org_id, case_id)).id)
        total = await uow.scalar(sa.select(sa.func.count()).select_from(audit_log).where(*scope))
        rows = (
            await uow.execute(
                sa.select(audit_log)
                .where(*scope)
                .order_by(audit_log.c.seq.desc())
                .limit(page_size)
                .offset(page_size * page_number)
            )
        ).all()
    return {
        "data": [
            {
                "id": row.event_id,
                "type": "audit_entry",
                "attributes": {
                    "event_type": row.event_type,
                    "subject": row.subject,
                    "case_id": row.case_id,
                    "actor_id": row.actor_id,
                    "time": iso(row.time),
                    "changes": row.changes,
                },
            }
            for row in rows
        ],
        "meta": {"page": {"size": page_size, "number": page_number, "total": total}},
    }


@router.get("/analytics")
@contract(returns=AnalyticsResponse, errors={404})  # project_id names a project
async def analytics(
    project_id: str | None = None,
    time_zone: str = Query("UTC", description="Where out-of-hours pages are counted (business hours there)."),
    who: Caller = Depends(caller),
) -> dict[str, Any]:
    tz = zone(time_zone, "time_zone")
    async with who.uow(read_only=True) as uow:
        if project_id:
            await get_project(uow, who.org_id, project_id)  # 404 for another org's project
        data = await summary(uow, who.org_id, project_id)
    if ON_CALL in who.context.databases:  # pages: MTTA and MTTR per team, per responder, out of hours
        async with who.uow(ON_CALL, read_only=True) as uow:
            data["on_call"] = await on_call_summary(uow, who.org_id, tz)
    return {"data": {"id": project_id or who.org_id, "type": "case_analytics", "attributes": data}}
