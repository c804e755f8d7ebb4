"""HTTP views for /api/v2/cases (Datadog CaseManagementApi case operations)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases import search, service, updates
from casem.domain.cases import STANDARD_TYPE_ID, STANDARD_TYPE_NAME, Case
from casem.domain.errors import InvalidInput
from casem.services.case_api.cases.schemas import (
    AggregateRequest,
    AssignRequest,
    AttributesUpdateRequest,
    BulkUpdateRequest,
    CaseAggregateResponse,
    CaseCountResponse,
    CaseCreateRequest,
    CaseEmptyRequest,
    CaseResponse,
    CasesResponse,
    CustomAttributeUpdateRequest,
    DescriptionUpdateRequest,
    DueDateUpdateRequest,
    MoveRequest,
    PriorityUpdateRequest,
    ResolvedReasonUpdateRequest,
    StatusUpdateRequest,
    TitleUpdateRequest,
)
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import iso, parse_body
from casem.services.case_api.openapi import contract

router = APIRouter(prefix="/api/v2/cases", tags=["cases"])


def _user(user_id: str | None) -> dict[str, Any]:
    return {"data": {"id": user_id, "type": "user"} if user_id else None}


def serialize_case(case: Case) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "key": case.key,
        "title": case.title,
        "description": case.description,
        "status": case.status,
        "status_group": case.status_group,
        "priority": case.priority,
        "type_id": case.type_id,
        "attributes": case.attributes,
        "custom_attributes": case.custom_attributes,
        "created_at": iso(case.created_at),
        "modified_at": iso(case.modified_at),
        "closed_at": iso(case.closed_at),
        "archived_at": iso(case.archived_at),
        "due_date": case.due_date.isoformat() if case.due_date else None,
        "resolved_reason": case.resolved_reason,
    }
    # Datadog's JiraIssue / ServiceNowTicket: the link's status and, once created, where the issue is.
    if case.jira_issue:
        attributes["jira_issue"] = case.jira_issue
    if case.service_now_ticket:
        attributes["service_now_ticket"] = case.service_now_ticket
    if case.type_id == STANDARD_TYPE_ID:
        # `type` is Datadog's legacy enum with a single value; custom types are identified by type_id only.
        attributes["type"] = STANDARD_TYPE_NAME
    return {
        "id": case.id,
        "type": "case",
        "attributes": attributes,
        "relationships": {
            "assignee": _user(case.assignee_id),
            "created_by": _user(case.created_by_id),
            "modified_by": _user(case.modified_by_id),
            "project": {"data": {"id": case.project_id, "type": "project"}},
        },
    }


@router.post("", status_code=201)
@contract(body=CaseCreateRequest, returns=CaseResponse)
async def create_case(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, CaseCreateRequest)
    attrs, rels = body.data.attributes, body.data.relationships
    if rels.project.data is None:
        raise InvalidInput("a case needs a project", "/data/relationships/project/data")
    new = service.NewCase(
        project_id=rels.project.data.id,
        title=attrs.title,
        type_id=attrs.type_id,
        description=attrs.description,
        priority=attrs.priority,
        status=attrs.status_name,
        assignee_id=rels.assignee.data.id if rels.assignee and rels.assignee.data else None,
        custom_attributes=attrs.custom_attributes,
    )
    async with who.uow() as uow:
        case = await service.create_case(uow, who.org_id, who.user_id, new)
        await uow.commit()
    return {"data": serialize_case(case)}


# Static paths first: /count and /bulk must not be taken for a case id by /{case_id}.
@router.get("")
@contract(returns=CasesResponse)
async def search_cases(
    who: Caller = Depends(caller),
    # Strings here: SearchParams.parse checks them with casem's own messages (a JSON:API 400 naming the parameter).
    page_size: str | None = Query(None, alias="page[size]", description="Cases per page."),
    page_number: str | None = Query(None, alias="page[number]", description="The page, from 0."),
    sort_field: str | None = Query(None, alias="sort[field]", description="The field cases are sorted by."),
    sort_asc: str | None = Query(None, alias="sort[asc]", description="true: ascending; false: descending."),
    filter: str | None = Query(None, description="A search query over the cases."),  # noqa: A002 - Datadog's name
) -> dict[str, Any]:
    params = search.SearchParams.parse(
        page_size=page_size, page_number=page_number, sort_field=sort_field, sort_asc=sort_asc, filter=filter
    )
    async with who.uow(read_only=True) as uow:
        found, total = await who.context.case_search.search(uow, who.org_id, params)
    return {
        "data": [serialize_case(c) for c in found],
        "meta": {"page": {"current": params.page_number, "size": params.page_size, "total": total}},
    }


@router.get("/count")
@contract(returns=CaseCountResponse)
async def count_cases(
    who: Caller = Depends(caller),
    query_filter: str | None = Query(None, description="A search query: only the cases it finds are counted."),
    group_bys: str | None = Query(None, description="Comma-separated fields to count the cases by."),
    limit: str | None = Query(None, description="The most groups answered per field."),
) -> dict[str, Any]:
    groups_by = search.parse_group_bys(group_bys)
    most = search.int_param(limit, "limit", search.COUNT_LIMIT_DEFAULT, 1, search.COUNT_LIMIT_MAX)
    async with who.uow(read_only=True) as uow:
        total, counted = await who.context.case_search.count(uow, who.org_id, query_filter, groups_by, most)
    groups = [
        {"group": g.group, "group_values": [{"value": v, "count": n} for v, n in g.group_values]} for g in counted
    ]
    # `total` is beyond Datadog's CaseCountResponseAttributes; the official client keeps it as an extra member.
    return {"data": {"id": "case_count", "type": "case_count", "attributes": {"groups": groups, "total": total}}}


@router.post("/aggregate")
@contract(body=AggregateRequest, returns=CaseAggregateResponse)
async def aggregate_cases(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, AggregateRequest)
    attrs = body.data.attributes
    groups, limit = attrs.group_by.groups, attrs.group_by.limit or search.COUNT_LIMIT_DEFAULT
    async with who.uow(read_only=True) as uow:
        result = await who.context.case_search.aggregate(uow, who.org_id, attrs.query_filter, groups, limit)
    return result.to_jsonapi("case_aggregate")


@router.post("/bulk", status_code=200, response_class=Response)
@contract(body=BulkUpdateRequest)
async def bulk_update_cases(request: Request, who: Caller = Depends(caller)) -> Response:
    body = await parse_body(request, BulkUpdateRequest)
    attrs = body.data.attributes
    action = updates.parse_bulk_action(attrs.type, attrs.payload)
    async with who.uow() as uow:
        # Hold the cases until commit: the unit of work finds pending events through the session's identity
        # map, which only weakly references cases already flushed (loading the next case autoflushes).
        changed = await updates.bulk_update(uow, who.org_id, who.user_id, attrs.case_ids, action)
        await uow.commit()
        del changed
    # Datadog's BulkUpdateCases answers 200 with no documented body.
    return Response(status_code=200)


@router.get("/{case_id}")
@contract(returns=CaseResponse)
async def get_case(case_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        case = await service.get_case(uow, who.org_id, case_id)
    return {"data": serialize_case(case)}


# -- updates: each answers 200 with the case as it is after the change (unchanged for a no-op) ------


async def _commit(uow: UnitOfWork, case: Case) -> dict[str, Any]:
    await uow.commit()
    return {"data": serialize_case(case)}


@router.post("/{case_id}/title")
@contract(body=TitleUpdateRequest, returns=CaseResponse)
async def update_case_title(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, TitleUpdateRequest)
    async with who.uow() as uow:
        case = await updates.retitle(uow, who.org_id, who.user_id, case_id, body.data.attributes.title)
        return await _commit(uow, case)


@router.post("/{case_id}/description")
@contract(body=DescriptionUpdateRequest, returns=CaseResponse)
async def update_case_description(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, DescriptionUpdateRequest)
    async with who.uow() as uow:
        case = await updates.describe(uow, who.org_id, who.user_id, case_id, body.data.attributes.description)
        return await _commit(uow, case)


@router.post("/{case_id}/status")
@contract(body=StatusUpdateRequest, returns=CaseResponse)
async def update_status(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, StatusUpdateRequest)
    status = updates.resolve_status(body.data.attributes.status, body.data.attributes.status_name)
    async with who.uow() as uow:
        case = await updates.transition(uow, who.org_id, who.user_id, case_id, status)
        return await _commit(uow, case)


@router.post("/{case_id}/priority")
@contract(body=PriorityUpdateRequest, returns=CaseResponse)
async def update_priority(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, PriorityUpdateRequest)
    async with who.uow() as uow:
        case = await updates.prioritize(uow, who.org_id, who.user_id, case_id, body.data.attributes.priority)
        return await _commit(uow, case)


@router.post("/{case_id}/attributes")
@contract(body=AttributesUpdateRequest, returns=CaseResponse)
async def update_attributes(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, AttributesUpdateRequest)
    async with who.uow() as uow:
        case = await updates.set_attributes(uow, who.org_id, who.user_id, case_id, body.data.attributes.attributes)
        return await _commit(uow, case)


@router.post("/{case_id}/custom_attributes/{custom_attribute_key}")
@contract(body=CustomAttributeUpdateRequest, returns=CaseResponse)
async def update_case_custom_attribute(
    case_id: str, custom_attribute_key: str, request: Request, who: Caller = Depends(caller)
) -> dict[str, Any]:
    body = await parse_body(request, CustomAttributeUpdateRequest)
    value = body.data.attributes.model_dump()
    async with who.uow() as uow:
        case = await updates.set_custom_attribute(uow, who.org_id, who.user_id, case_id, custom_attribute_key, value)
        return await _commit(uow, case)


@router.delete("/{case_id}/custom_attributes/{custom_attribute_key}")
@contract(returns=CaseResponse)
async def delete_case_custom_attribute(
    case_id: str, custom_attribute_key: str, who: Caller = Depends(caller)
) -> dict[str, Any]:
    async with who.uow() as uow:
        case = await updates.delete_custom_attribute(uow, who.org_id, who.user_id, case_id, custom_attribute_key)
        return await _commit(uow, case)


@router.post("/{case_id}/due_date")
@contract(body=DueDateUpdateRequest, returns=CaseResponse)
async def update_case_due_date(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, DueDateUpdateRequest)
    async with who.uow() as uow:
        case = await updates.set_due_date(uow, who.org_id, who.user_id, case_id, body.data.attributes.due_date)
        return await _commit(uow, case)


@router.post("/{case_id}/resolved_reason")
@contract(body=ResolvedReasonUpdateRequest, returns=CaseResponse)
async def update_case_resolved_reason(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, ResolvedReasonUpdateRequest)
    reason = body.data.attributes.security_resolved_reason
    async with who.uow() as uow:
        case = await updates.set_resolved_reason(uow, who.org_id, who.user_id, case_id, reason)
        return await _commit(uow, case)


@router.post("/{case_id}/assign")
@contract(body=AssignRequest, returns=CaseResponse)
async def assign_case(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, AssignRequest)
    async with who.uow() as uow:
        case = await updates.assign(uow, who.org_id, who.user_id, case_id, body.data.attributes.assignee_id)
        return await _commit(uow, case)


@router.post("/{case_id}/unassign")
@contract(body=CaseEmptyRequest, returns=CaseResponse)
async def unassign_case(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    await parse_body(request, CaseEmptyRequest)
    async with who.uow() as uow:
        case = await updates.unassign(uow, who.org_id, who.user_id, case_id)
        return await _commit(uow, case)


@router.post("/{case_id}/archive")
@contract(body=CaseEmptyRequest, returns=CaseResponse)
async def archive_case(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    await parse_body(request, CaseEmptyRequest)
    async with who.uow() as uow:
        case = await updates.archive(uow, who.org_id, who.user_id, case_id)
        return await _commit(uow, case)


@router.post("/{case_id}/unarchive")
@contract(body=CaseEmptyRequest, returns=CaseResponse)
async def unarchive_case(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    await parse_body(request, CaseEmptyRequest)
    async with who.uow() as uow:
        case = await updates.unarchive(uow, who.org_id, who.user_id, case_id)
        return await _commit(uow, case)


@router.patch("/{case_id}/relationships/project")
@contract(body=MoveRequest, returns=CaseResponse)
async def move_case_to_project(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, MoveRequest)
    async with who.uow() as uow:
        case = await updates.move(uow, who.org_id, who.user_id, case_id, body.data.id)
        return await _commit(uow, case)
