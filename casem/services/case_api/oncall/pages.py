"""On-Call Paging (Datadog's OnCallPagingApi), and casem's own page reads.

POST /api/v2/on-call/pages                       200 {data: {id, type: pages}}: the page, its case and escalation
POST /api/v2/on-call/pages/{id}/acknowledge      202 (also /escalate, /resolve): recorded, then signalled
GET  /api/v2/casem/on-call/pages?filter=...      pages found with the case query language (the casem-oncall index
                                                 when a search engine serves case search, else the database)
GET  /api/v2/casem/on-call/pages/{id}            a page; .../timeline its case's timeline; .../notifications its sends
"""

from __future__ import annotations

from typing import Any, Literal

import structlog
from fastapi import APIRouter, Depends, Query, Request, Response

from casem.adapters.workflows.contracts import PAGE_ACKNOWLEDGED, PAGE_ESCALATE, PAGE_RESOLVED
from casem.app.cases.finder import DatabaseCaseSearch, EngineCaseSearch
from casem.app.cases.search import SearchParams
from casem.app.oncall import pages as service
from casem.domain.oncall import Page
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import iso, parse_body
from casem.services.case_api.oncall.answers import (
    PageCreatedResponse,
    PageNotificationsResponse,
    PageResponse,
    PagesResponse,
    PageTimelineResponse,
)
from casem.services.case_api.oncall.common import on_call, on_call_tenant
from casem.services.case_api.openapi import contract
from casem.services.case_api.schemas import Strict
from casem.topology.tenants import ON_CALL

log = structlog.get_logger("case-api.paging")
router = APIRouter(tags=["on-call paging"], dependencies=[Depends(on_call_tenant)])


class PageTarget(Strict):
    identifier: Any = None
    type: Any = None


class PageAttributes(Strict):
    title: Any = None
    description: Any = None
    tags: Any = None
    urgency: Any = None
    target: PageTarget | None = None


class PageData(Strict):
    type: Literal["pages"]
    attributes: PageAttributes


class PageRequest(Strict):
    data: PageData


def _caseworker(request: Request) -> Any:
    return getattr(request.app.state, "caseworker", None)


def page_resource(page: Page) -> dict[str, Any]:
    return {
        "id": page.id,
        "type": "pages",
        "attributes": {
            "key": page.key,
            "title": page.title,
            "description": page.description,
            "urgency": page.urgency,
            "tags": page.tags,
            "status": page.status,
            "target": {"type": page.target_type, "identifier": page.target_id},
            "created_at": iso(page.created_at),
            "acknowledged_at": iso(page.acknowledged_at),
            "resolved_at": iso(page.resolved_at),
            "escalations": page.escalations,
        },
        "relationships": {
            "team": {"data": {"id": page.team_id, "type": "teams"} if page.team_id else None},
            "policy": {"data": {"id": page.policy_id, "type": "policies"} if page.policy_id else None},
            "acknowledged_by": {
                "data": {"id": page.acknowledged_by_id, "type": "users"} if page.acknowledged_by_id else None
            },
            "case": {"data": {"id": page.source_case_id, "type": "case"} if page.source_case_id else None},
        },
    }


@router.post("/api/v2/on-call/pages")
@contract(body=PageRequest, returns=PageCreatedResponse)
async def create_page(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    attrs = (await parse_body(request, PageRequest)).data.attributes
    target = attrs.target or PageTarget()
    new = service.NewPage(
        title=attrs.title,
        urgency=attrs.urgency,
        target_type=target.type,
        target_identifier=target.identifier,
        description=attrs.description,
        tags=attrs.tags,
    )
    async with on_call(who) as (uow, directory):
        page, _ = await service.create_page(uow, directory, who.org_id, who.user_id, new)
        await uow.commit()
    caseworker = _caseworker(request)
    if caseworker is not None:
        try:
            await caseworker.start_page_escalation(ON_CALL, page.org_id, page.id)
        except Exception as exc:  # the paging flavor starts it from page.triggered: it is recorded either way
            log.warning("page escalation not started here; the paging flavor will", page_id=page.id, error=str(exc))
    return {"data": {"id": page.id, "type": "pages"}}


async def _change(request: Request, who: Caller, page_id: str, action: Any, signal: str) -> Response:
    async with who.uow(ON_CALL) as uow:
        page, changed = await action(uow, who.org_id, who.user_id, page_id)
        await uow.commit()
    caseworker = _caseworker(request)
    if changed and caseworker is not None:
        try:
            await caseworker.signal_page(page.id, signal)
        except Exception as exc:  # the workflow re-reads the page before every step and notification
            log.warning("page signal not delivered", page_id=page.id, signal=signal, error=str(exc))
    return Response(status_code=202)


@router.post("/api/v2/on-call/pages/{page_id}/acknowledge", status_code=202, response_class=Response)
async def acknowledge_page(page_id: str, request: Request, who: Caller = Depends(caller)) -> Response:
    return await _change(request, who, page_id, service.acknowledge_page, PAGE_ACKNOWLEDGED)


@router.post("/api/v2/on-call/pages/{page_id}/escalate", status_code=202, response_class=Response)
async def escalate_page(page_id: str, request: Request, who: Caller = Depends(caller)) -> Response:
    return await _change(request, who, page_id, service.escalate_page, PAGE_ESCALATE)


@router.post("/api/v2/on-call/pages/{page_id}/resolve", status_code=202, response_class=Response)
async def resolve_page(page_id: str, request: Request, who: Caller = Depends(caller)) -> Response:
    return await _change(request, who, page_id, service.resolve_page, PAGE_RESOLVED)


@router.get("/api/v2/casem/on-call/pages")
@contract(returns=PagesResponse)
async def search_pages(
    request: Request,
    who: Caller = Depends(caller),
    filter: str | None = None,
    page_size: str | None = Query(None, alias="page[size]"),
    page_number: str | None = Query(None, alias="page[number]"),
    sort_field: str | None = Query(None, alias="sort[field]"),
    sort_asc: str | None = Query(None, alias="sort[asc]"),
) -> dict[str, Any]:
    params = SearchParams.parse(
        page_size=page_size, page_number=page_number, sort_field=sort_field, sort_asc=sort_asc, filter=filter
    )
    engine = request.app.state.context.search
    finder = EngineCaseSearch(engine, ON_CALL) if engine is not None else DatabaseCaseSearch()
    async with who.uow(ON_CALL, read_only=True) as uow:
        found, total = await service.search_pages(uow, finder, who.org_id, params)
    return {
        "data": [page_resource(p) for p in found],
        "meta": {"page": {"total": total, "size": params.page_size, "number": params.page_number}},
    }


@router.get("/api/v2/casem/on-call/pages/{page_id}")
@contract(returns=PageResponse)
async def get_page(page_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(ON_CALL, read_only=True) as uow:
        page = await service.get_page(uow, who.org_id, page_id)
    return {"data": page_resource(page)}


@router.get("/api/v2/casem/on-call/pages/{page_id}/timeline")
@contract(returns=PageTimelineResponse)
async def page_timeline(
    page_id: str,
    who: Caller = Depends(caller),
    page_size: int = Query(100, alias="page[size]", ge=1, le=1000),
    page_number: int = Query(0, alias="page[number]", ge=0),
) -> dict[str, Any]:
    async with who.uow(ON_CALL, read_only=True) as uow:
        timeline = await service.page_timeline(uow, who.org_id, page_id, page_size, page_number)
    return {
        "data": [
            {
                "id": cell.id,
                "type": "timeline_cell",
                "attributes": {
                    "cell_type": cell.type,
                    "content": cell.shown_content,
                    "created_at": iso(cell.created_at),
                    "author_id": cell.author_id,
                },
            }
            for cell in timeline.cells
        ]
    }


@router.get("/api/v2/casem/on-call/pages/{page_id}/notifications")
@contract(returns=PageNotificationsResponse)
async def page_notifications(page_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(ON_CALL, read_only=True) as uow:
        rows = await service.page_notifications(uow, who.org_id, page_id)
    return {
        "data": [
            {
                "id": row.id,
                "type": "page_notification",
                "attributes": {
                    "idempotency_key": row.idempotency_key,
                    "user_id": row.user_id,
                    "medium": row.medium,
                    "destination": row.destination,
                    "round": row.round,
                    "step": row.step_index,
                    "status": row.status,
                    "attempts": row.attempts,
                    "provider_ref": row.provider_ref,
                    "detail": row.detail,
                    "created_at": iso(row.created_at),
                    "sent_at": iso(row.sent_at),
                },
            }
            for row in rows
        ]
    }
