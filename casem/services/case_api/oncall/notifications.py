"""A user's On-Call notification channels and rules (Datadog's OnCallApi).

Push channels are casem's: Datadog's push channels come from its mobile app; casem's post a signed webhook
(`config: {type: push, application_name, device_name, url}`), whose signing secret the creating call answers once
in `meta.signing_secret`.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response

from casem.app.oncall import notifications as service
from casem.domain.oncall import EMAIL, PHONE, NotificationChannel, OnCallNotificationRule
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import iso, parse_body
from casem.services.case_api.oncall.answers import (
    ChannelResponse,
    ChannelsResponse,
    NotificationRuleResponse,
    NotificationRulesResponse,
)
from casem.services.case_api.oncall.common import on_call, on_call_tenant, parse_include
from casem.services.case_api.openapi import contract
from casem.services.case_api.schemas import Strict

router = APIRouter(tags=["on-call notifications"], dependencies=[Depends(on_call_tenant)])


class ChannelAttributes(Strict):
    config: Any = None


class ChannelData(Strict):
    type: Literal["notification_channels"]
    attributes: ChannelAttributes | None = None


class ChannelRequest(Strict):
    data: ChannelData


class RuleAttributes(Strict):
    category: Any = None
    channel_settings: Any = None
    delay_minutes: Any = None


class RuleCreateData(Strict):
    type: Literal["notification_rules"]
    attributes: RuleAttributes | None = None
    relationships: dict[str, Any] | None = None


class RuleCreateRequest(Strict):
    data: RuleCreateData


class RuleUpdateData(RuleCreateData):
    id: str | None = None


class RuleUpdateRequest(Strict):
    data: RuleUpdateData


def channel_resource(channel: NotificationChannel) -> dict[str, Any]:
    config = channel.config
    if channel.kind == EMAIL:
        shown: dict[str, Any] = {"type": EMAIL, "address": config["address"], "formats": config["formats"]}
    elif channel.kind == PHONE:
        shown = {
            "type": PHONE,
            "number": config["number"],
            "formatted_number": config.get("formatted_number", config["number"]),
            "region": config["region"],
            "verified": config.get("verified", False),
            "sms_subscribed_at": config.get("sms_subscribed_at"),
        }
    else:  # the webhook URL stays out of answers: like a secret, it is write-only
        shown = {"type": "push", "application_name": config["application_name"], "device_name": config["device_name"]}
    return {
        "id": channel.id,
        "type": "notification_channels",
        "attributes": {"active": channel.active, "config": shown},
    }


def rule_resource(rule: OnCallNotificationRule) -> dict[str, Any]:
    attributes: dict[str, Any] = {"category": rule.category, "delay_minutes": rule.delay_minutes}
    if rule.method:
        attributes["channel_settings"] = {"type": PHONE, "method": rule.method}
    return {
        "id": rule.id,
        "type": "notification_rules",
        "attributes": attributes,
        "relationships": {"channel": {"data": {"id": rule.channel_id, "type": "notification_channels"}}},
    }


@router.post("/api/v2/on-call/users/{user_id}/notification-channels", status_code=201)
@contract(body=ChannelRequest, returns=ChannelResponse)
async def create_channel(user_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    data = (await parse_body(request, ChannelRequest)).data
    attrs = data.attributes.model_dump() if data.attributes else {}
    async with on_call(who) as (uow, directory):
        channel, secret = await service.create_channel(uow, directory, who.org_id, who.user_id, user_id, attrs)
        await uow.commit()
    document: dict[str, Any] = {"data": channel_resource(channel)}
    if secret is not None:
        document["meta"] = {"signing_secret": secret, "created_at": iso(channel.created_at)}
    return document


@router.get("/api/v2/on-call/users/{user_id}/notification-channels")
@contract(returns=ChannelsResponse)
async def list_channels(user_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with on_call(who, read_only=True) as (uow, directory):
        channels = await service.list_channels(uow, directory, who.org_id, user_id)
    return {"data": [channel_resource(c) for c in channels]}


@router.get("/api/v2/on-call/users/{user_id}/notification-channels/{channel_id}")
@contract(returns=ChannelResponse)
async def get_channel(user_id: str, channel_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with on_call(who, read_only=True) as (uow, directory):
        channel = await service.get_channel(uow, directory, who.org_id, user_id, channel_id)
    return {"data": channel_resource(channel)}


@router.delete("/api/v2/on-call/users/{user_id}/notification-channels/{channel_id}", status_code=204)
async def delete_channel(user_id: str, channel_id: str, who: Caller = Depends(caller)) -> Response:
    async with on_call(who) as (uow, directory):
        await service.delete_channel(uow, directory, who.org_id, who.user_id, user_id, channel_id)
        await uow.commit()
    return Response(status_code=204)


def _rule_document(rule: OnCallNotificationRule, channel: NotificationChannel, include: set[str]) -> dict:
    return {"data": rule_resource(rule), "included": [channel_resource(channel)] if "channel" in include else []}


@router.post("/api/v2/on-call/users/{user_id}/notification-rules", status_code=201)
@contract(body=RuleCreateRequest, returns=NotificationRuleResponse)
async def create_rule(user_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    data = (await parse_body(request, RuleCreateRequest)).data
    attrs = data.attributes.model_dump(exclude_unset=True) if data.attributes else {}
    async with on_call(who) as (uow, directory):
        rule, channel = await service.create_rule(
            uow, directory, who.org_id, who.user_id, user_id, attrs, data.relationships
        )
        await uow.commit()
    return _rule_document(rule, channel, set())


@router.get("/api/v2/on-call/users/{user_id}/notification-rules")
@contract(returns=NotificationRulesResponse)
async def list_rules(user_id: str, include: str | None = None, who: Caller = Depends(caller)) -> dict[str, Any]:
    wanted = parse_include(include, ("channel",))
    async with on_call(who, read_only=True) as (uow, directory):
        rules, channels = await service.list_rules(uow, directory, who.org_id, user_id)
    used = dict.fromkeys(r.channel_id for r in rules)
    return {
        "data": [rule_resource(r) for r in rules],
        "included": [channel_resource(channels[c]) for c in used if c in channels] if "channel" in wanted else [],
    }


@router.get("/api/v2/on-call/users/{user_id}/notification-rules/{rule_id}")
@contract(returns=NotificationRuleResponse)
async def get_rule(
    user_id: str, rule_id: str, include: str | None = None, who: Caller = Depends(caller)
) -> dict[str, Any]:
    wanted = parse_include(include, ("channel",))
    async with on_call(who, read_only=True) as (uow, directory):
        rule, channel = await service.get_rule(uow, directory, who.org_id, user_id, rule_id)
    return _rule_document(rule, channel, wanted)


@router.put("/api/v2/on-call/users/{user_id}/notification-rules/{rule_id}")
@contract(body=RuleUpdateRequest, returns=NotificationRuleResponse)
async def update_rule(
    user_id: str, rule_id: str, request: Request, include: str | None = None, who: Caller = Depends(caller)
) -> dict[str, Any]:
    wanted = parse_include(include, ("channel",))
    data = (await parse_body(request, RuleUpdateRequest)).data
    attrs = data.attributes.model_dump(exclude_unset=True) if data.attributes else {}
    async with on_call(who) as (uow, directory):
        rule, channel = await service.update_rule(
            uow, directory, who.org_id, who.user_id, user_id, rule_id, data.id, attrs, data.relationships
        )
        await uow.commit()
    return _rule_document(rule, channel, wanted)


@router.delete("/api/v2/on-call/users/{user_id}/notification-rules/{rule_id}", status_code=204)
async def delete_rule(user_id: str, rule_id: str, who: Caller = Depends(caller)) -> Response:
    async with on_call(who) as (uow, directory):
        await service.delete_rule(uow, directory, who.org_id, who.user_id, user_id, rule_id)
        await uow.commit()
    return Response(status_code=204)
