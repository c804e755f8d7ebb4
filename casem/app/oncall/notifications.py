"""A user's on-call notification channels (email, phone, push) and rules (which channel, for which urgency, after
how long)."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from casem.adapters.http import DestinationRefused, allow_list_from_env, validate_destination
from casem.adapters.secrets import secret_box_from_env
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.oncall import records
from casem.app.oncall.directory import Directory
from casem.domain.errors import InvalidInput
from casem.domain.oncall import (
    PHONE,
    PUSH,
    NotificationChannel,
    OnCallNotificationRule,
    parse_channel_config,
    parse_rule_attributes,
)


async def _user(directory: Directory, user_id: str) -> str:
    return (await directory.user(user_id)).id


async def create_channel(
    uow: UnitOfWork, directory: Directory, org_id: str, actor_id: str | None, user_id: str, attrs: dict[str, Any]
) -> tuple[NotificationChannel, str | None]:
    """The new channel, and for a push channel its signing secret (shown once; stored sealed)."""
    user = await _user(directory, user_id)
    kind, config = parse_channel_config(attrs.get("config"))
    signing_secret = None
    sealed = None
    if kind == PUSH:
        try:
            await validate_destination(config["url"], allow_list_from_env(), allow_unresolvable=True)
        except DestinationRefused as exc:
            raise InvalidInput(f"url: {exc.reason}", "/data/attributes/config/url") from None
        signing_secret = secrets.token_hex(32)
        sealed = secret_box_from_env().seal(signing_secret)
    if kind == PHONE:
        config["formatted_number"] = config["number"]
        config["verified"] = False  # casem sends no verification code: a number is used as saved
        config["sms_subscribed_at"] = None
    channel = NotificationChannel.create(
        actor_id=actor_id,
        id=str(uuid.uuid4()),
        org_id=org_id,
        user_id=user,
        kind=kind,
        config=config,
        secret=sealed,
    )
    await records.insert_channel(uow, channel)
    return channel, signing_secret


async def list_channels(uow: UnitOfWork, directory: Directory, org_id: str, user_id: str) -> list[NotificationChannel]:
    return await records.load_channels(uow, org_id, [await _user(directory, user_id)])


async def get_channel(
    uow: UnitOfWork, directory: Directory, org_id: str, user_id: str, channel_id: str
) -> NotificationChannel:
    return await records.load_channel(uow, org_id, await _user(directory, user_id), channel_id)


async def delete_channel(
    uow: UnitOfWork, directory: Directory, org_id: str, actor_id: str | None, user_id: str, channel_id: str
) -> None:
    channel = await records.load_channel(uow, org_id, await _user(directory, user_id), channel_id)
    channel.record_deleted(actor_id)
    await records.delete_channel(uow, channel)


async def _rule_channel(uow: UnitOfWork, org_id: str, user_id: str, relationships: Any) -> NotificationChannel:
    pointer = "/data/relationships/channel/data/id"
    data = (relationships or {}).get("channel", {}) if isinstance(relationships, dict) else {}
    data = data.get("data") if isinstance(data, dict) else None
    ident = data.get("id") if isinstance(data, dict) else None
    if not isinstance(ident, str) or not ident:
        raise InvalidInput("a notification rule names its channel: relationships.channel.data.id", pointer)
    return await records.load_channel(uow, org_id, user_id, ident, pointer=pointer)


async def create_rule(
    uow: UnitOfWork,
    directory: Directory,
    org_id: str,
    actor_id: str | None,
    user_id: str,
    attrs: dict[str, Any],
    relationships: Any,
) -> tuple[OnCallNotificationRule, NotificationChannel]:
    user = await _user(directory, user_id)
    channel = await _rule_channel(uow, org_id, user, relationships)
    fields = parse_rule_attributes(attrs, channel.kind)
    rule = OnCallNotificationRule.create(
        actor_id=actor_id, id=str(uuid.uuid4()), org_id=org_id, user_id=user, channel_id=channel.id, **fields
    )
    await records.insert_rule(uow, rule)
    return rule, channel


async def update_rule(
    uow: UnitOfWork,
    directory: Directory,
    org_id: str,
    actor_id: str | None,
    user_id: str,
    rule_id: str,
    body_id: str | None,
    attrs: dict[str, Any],
    relationships: Any,
) -> tuple[OnCallNotificationRule, NotificationChannel]:
    user = await _user(directory, user_id)
    rule = await records.load_rule(uow, org_id, user, rule_id)
    if body_id is not None and body_id.lower() != rule.id:
        raise InvalidInput(f"data.id {body_id!r} is not the id of the rule in the path", "/data/id")
    if relationships:
        channel = await _rule_channel(uow, org_id, user, relationships)
    else:
        channel = await records.load_channel(uow, org_id, user, rule.channel_id)
    fields = parse_rule_attributes(attrs, channel.kind, rule if channel.id == rule.channel_id else None)
    rule.change(actor_id, channel_id=channel.id, **fields)
    await records.update_rule(uow, rule)
    return rule, channel


async def get_rule(
    uow: UnitOfWork, directory: Directory, org_id: str, user_id: str, rule_id: str
) -> tuple[OnCallNotificationRule, NotificationChannel]:
    user = await _user(directory, user_id)
    rule = await records.load_rule(uow, org_id, user, rule_id)
    return rule, await records.load_channel(uow, org_id, user, rule.channel_id)


async def list_rules(
    uow: UnitOfWork, directory: Directory, org_id: str, user_id: str
) -> tuple[list[OnCallNotificationRule], dict[str, NotificationChannel]]:
    user = await _user(directory, user_id)
    channels = {c.id: c for c in await records.load_channels(uow, org_id, [user])}
    return await records.load_rules(uow, org_id, [user]), channels


async def delete_rule(
    uow: UnitOfWork, directory: Directory, org_id: str, actor_id: str | None, user_id: str, rule_id: str
) -> None:
    rule = await records.load_rule(uow, org_id, await _user(directory, user_id), rule_id)
    rule.record_deleted(actor_id)
    await records.delete_rule(uow, rule)
