"""HTTP views of notifications.

Datadog-compatible (CaseManagementApi create/get/update/delete_project_notification_rule):

    POST   /api/v2/cases/projects/{project_id}/notification_rules                 201 the rule
    GET    /api/v2/cases/projects/{project_id}/notification_rules                 200 the project's rules
    PUT    /api/v2/cases/projects/{project_id}/notification_rules/{rule_id}       204 (members sent replace)
    DELETE /api/v2/cases/projects/{project_id}/notification_rules/{rule_id}       204

casem's own, beside them:

    GET    /api/v2/casem/notifications?filter[unread]=true&page[size]=&page[number]=
                                               the caller's watcher inbox, newest first; meta.unread_count
    POST   /api/v2/casem/notifications/{id}/read                                  204 mark one read
    POST   /api/v2/casem/notifications/read                                       204 mark all read
    POST   /api/v2/casem/notification_endpoints    201 a named webhook (HTTP) or Teams connector
                                                   (MS_TEAMS_CHANNEL) that rule recipients name;
                                                   a webhook's HMAC secret is answered only here
    GET    /api/v2/casem/notification_endpoints                                   200 (no secrets)
    DELETE /api/v2/casem/notification_endpoints/{id}                              204
    GET    /api/v2/casem/notification_deliveries?case_id=                         200 delivery log
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from casem.app.cases.service import get_case
from casem.app.notification_rules import service
from casem.app.outbound.service import destination_policy
from casem.app.paging import MAX_PAGE_NUMBER
from casem.domain.notifications import NotificationRule
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import iso, parse_body
from casem.services.case_api.notification_rules.schemas import (
    DeliveriesResponse,
    EndpointCreateRequest,
    EndpointResponse,
    EndpointsResponse,
    InboxResponse,
    NotificationRuleResponse,
    NotificationRulesResponse,
    RuleCreateRequest,
    RuleUpdateRequest,
)
from casem.services.case_api.openapi import contract

router = APIRouter(prefix="/api/v2/cases/projects/{project_id}/notification_rules", tags=["notification rules"])
casem_router = APIRouter(prefix="/api/v2/casem", tags=["casem"])


def serialize_rule(rule: NotificationRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "type": "notification_rule",
        "attributes": {
            "is_enabled": rule.is_enabled,
            "query": rule.query,
            "recipients": rule.recipients,
            "triggers": rule.triggers,
        },
    }


def _attributes(model: Any) -> dict[str, Any]:
    # Members sent, without the nulls pydantic fills in for absent optional recipient/trigger data.
    return model.model_dump(exclude_unset=True, exclude_none=True) if model is not None else {}


@router.post("", status_code=201)
@contract(body=RuleCreateRequest, returns=NotificationRuleResponse)
async def create_project_notification_rule(
    project_id: str, request: Request, who: Caller = Depends(caller)
) -> dict[str, Any]:
    body = await parse_body(request, RuleCreateRequest)
    async with who.uow() as uow:
        rule = await service.create_rule(uow, who.org_id, who.user_id, project_id, _attributes(body.data.attributes))
        await uow.commit()
    return {"data": serialize_rule(rule)}


@router.get("")
@contract(returns=NotificationRulesResponse)
async def get_project_notification_rules(project_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        rules = await service.list_rules(uow, who.org_id, project_id)
    return {"data": [serialize_rule(r) for r in rules]}


@router.put("/{notification_rule_id}", status_code=204)
@contract(body=RuleUpdateRequest)
async def update_project_notification_rule(
    project_id: str, notification_rule_id: str, request: Request, who: Caller = Depends(caller)
) -> Response:
    body = await parse_body(request, RuleUpdateRequest)
    async with who.uow() as uow:
        await service.update_rule(uow, who.org_id, project_id, notification_rule_id, _attributes(body.data.attributes))
        await uow.commit()
    return Response(status_code=204)


@router.delete("/{notification_rule_id}", status_code=204)
async def delete_project_notification_rule(
    project_id: str, notification_rule_id: str, who: Caller = Depends(caller)
) -> Response:
    async with who.uow() as uow:
        await service.delete_rule(uow, who.org_id, project_id, notification_rule_id)
        await uow.commit()
    return Response(status_code=204)


# -- casem's own -----------------------------------------------------------------------------------


@casem_router.get("/notifications")
@contract(returns=InboxResponse)
async def list_notifications(
    unread: bool = Query(False, alias="filter[unread]"),
    page_size: int = Query(50, alias="page[size]", ge=1, le=500),
    page_number: int = Query(0, alias="page[number]", ge=0, le=MAX_PAGE_NUMBER),
    who: Caller = Depends(caller),
) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        rows, unread_count = await service.inbox(
            uow, who.org_id, who.user_id, unread_only=unread, size=page_size, number=page_number
        )
    return {
        "data": [
            {
                "id": r.id,
                "type": "notification",
                "attributes": {
                    "summary": r.summary,
                    "event_type": r.event_type,
                    "case_key": r.case_key,
                    "created_at": iso(r.created_at),
                    "read_at": iso(r.read_at),
                },
                "relationships": {
                    "case": {"data": {"id": r.case_id, "type": "case"}},
                    "actor": {"data": {"id": r.actor_id, "type": "users"} if r.actor_id else None},
                },
            }
            for r in rows
        ],
        "meta": {"unread_count": unread_count, "page": {"size": page_size, "number": page_number}},
    }


@casem_router.post("/notifications/read", status_code=204)
async def mark_all_notifications_read(who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await service.mark_read(uow, who.org_id, who.user_id, None)
        await uow.commit()
    return Response(status_code=204)


@casem_router.post("/notifications/{notification_id}/read", status_code=204)
async def mark_notification_read(notification_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await service.mark_read(uow, who.org_id, who.user_id, notification_id)
        await uow.commit()
    return Response(status_code=204)


def serialize_endpoint(values: Any, *, with_secret: bool = False) -> dict[str, Any]:
    attributes = {"kind": values["kind"], "name": values["name"], "url": values["url"]}
    if with_secret:
        attributes["secret"] = values["secret"]
    return {"id": values["id"], "type": "notification_endpoint", "attributes": attributes}


@casem_router.post("/notification_endpoints", status_code=201)
@contract(body=EndpointCreateRequest, returns=EndpointResponse, errors={409})
async def create_notification_endpoint(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    attrs = (await parse_body(request, EndpointCreateRequest)).data.attributes
    async with who.uow(read_only=True) as uow:
        policy = await destination_policy(uow, who.context.outbound, who.org_id)
    async with who.uow() as uow:
        created = await service.create_endpoint(
            uow,
            who.org_id,
            attrs.kind,
            attrs.name,
            attrs.url,
            attrs.secret,
            policy=policy,
            box=who.context.secret_box(),
        )
        await uow.commit()
    return {"data": serialize_endpoint(created, with_secret=True)}


@casem_router.get("/notification_endpoints")
@contract(returns=EndpointsResponse)
async def list_notification_endpoints(who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        rows = await service.list_endpoints(uow, who.org_id)
    return {"data": [serialize_endpoint(r._mapping) for r in rows]}


@casem_router.delete("/notification_endpoints/{endpoint_id}", status_code=204)
async def delete_notification_endpoint(endpoint_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await service.delete_endpoint(uow, who.org_id, endpoint_id)
        await uow.commit()
    return Response(status_code=204)


@casem_router.get("/notification_deliveries")
@contract(returns=DeliveriesResponse, errors={404})  # case_id names a case
async def list_notification_deliveries(
    case_id: str | None = Query(None, description="A case id or key; omit for the whole org."),
    page_size: int = Query(50, alias="page[size]", ge=1, le=500),
    who: Caller = Depends(caller),
) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        resolved = (await get_case(uow, who.org_id, case_id)).id if case_id else None
        rows = await service.deliveries(uow, who.org_id, resolved, page_size)
    return {
        "data": [
            {
                "id": r.id,
                "type": "notification_delivery",
                "attributes": {
                    "channel": r.channel,
                    "target": r.target,
                    "status": r.status,
                    "attempts": r.attempts,
                    "last_error": r.last_error,
                    "created_at": iso(r.created_at),
                    "sent_at": iso(r.sent_at),
                },
                "relationships": {
                    "case": {"data": {"id": r.case_id, "type": "case"} if r.case_id else None},
                    "rule": {"data": {"id": r.rule_id, "type": "notification_rule"} if r.rule_id else None},
                },
            }
            for r in rows
        ],
    }
