"""Notification rules of a project, the org's named notification endpoints, the watcher inbox and
the delivery log. Rules live in a project of the caller's org: another org's project is a 404."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from casem.adapters.http import DestinationPolicy, DestinationRefused, validate_destination
from casem.adapters.secrets import SecretBox
from casem.adapters.storage.tables import (
    notification_deliveries,
    notification_endpoints,
    notification_rules,
    notifications,
)
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.ids import UUID_RE
from casem.app.projects.service import get_project
from casem.domain.errors import Conflict, InvalidInput, NotFound
from casem.domain.notifications import NotificationRule, validate_query, validate_recipients, validate_triggers

ATTRS = "/data/attributes"


def _rule(row: sa.Row) -> NotificationRule:
    return NotificationRule(**row._mapping)


def _validated(attrs: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "triggers" in attrs:
        values["triggers"] = validate_triggers(attrs["triggers"])
    if "recipients" in attrs:
        values["recipients"] = validate_recipients(attrs["recipients"])
    if "query" in attrs:
        values["query"] = validate_query(attrs["query"] or "")
    if "is_enabled" in attrs:
        if not isinstance(attrs["is_enabled"], bool):
            raise InvalidInput("is_enabled must be a boolean", f"{ATTRS}/is_enabled")
        values["is_enabled"] = attrs["is_enabled"]
    return values


async def create_rule(
    uow: UnitOfWork,
    org_id: str,
    actor_id: str | None,
    project_id: str,
    attrs: dict[str, Any],
    rule_id: str | None = None,
) -> NotificationRule:
    project = await get_project(uow, org_id, project_id)
    values = {"query": "", "is_enabled": True, **_validated(attrs)}
    rule = NotificationRule(
        id=rule_id or str(uuid.uuid4()), org_id=org_id, project_id=project.id, created_by_id=actor_id, **values
    )
    await uow.execute(sa.insert(notification_rules).values(**vars(rule)))
    return rule


async def list_rules(uow: UnitOfWork, org_id: str, project_id: str) -> list[NotificationRule]:
    project = await get_project(uow, org_id, project_id)
    rows = await uow.execute(
        sa.select(notification_rules)
        .where(notification_rules.c.org_id == org_id, notification_rules.c.project_id == project.id)
        .order_by(notification_rules.c.created_at, notification_rules.c.id)
    )
    return [_rule(row) for row in rows]


async def get_rule(uow: UnitOfWork, org_id: str, project_id: str, rule_id: str) -> NotificationRule:
    project = await get_project(uow, org_id, project_id)
    if not UUID_RE.match(rule_id):
        raise NotFound("notification_rule", rule_id)
    row = (
        await uow.execute(
            sa.select(notification_rules).where(
                notification_rules.c.id == rule_id.lower(),
                notification_rules.c.org_id == org_id,
                notification_rules.c.project_id == project.id,
            )
        )
    ).first()
    if row is None:
        raise NotFound("notification_rule", rule_id)
    return _rule(row)


async def update_rule(
    uow: UnitOfWork, org_id: str, project_id: str, rule_id: str, attrs: dict[str, Any]
) -> NotificationRule:
    """PUT: the members sent replace the rule's; members not sent are kept."""
    rule = await get_rule(uow, org_id, project_id, rule_id)
    values = _validated(attrs)
    if values:
        values["modified_at"] = datetime.now(UTC)
        await uow.execute(sa.update(notification_rules).where(notification_rules.c.id == rule.id).values(**values))
        for name, value in values.items():
            setattr(rule, name, value)
    return rule


async def delete_rule(uow: UnitOfWork, org_id: str, project_id: str, rule_id: str) -> None:
    rule = await get_rule(uow, org_id, project_id, rule_id)
    await uow.execute(sa.delete(notification_rules).where(notification_rules.c.id == rule.id))


# -- named endpoints --------------------------------------------------------------------------------


async def create_endpoint(
    uow: UnitOfWork,
    org_id: str,
    kind: str,
    name: str,
    url: str,
    secret: str | None,
    *,
    policy: DestinationPolicy,
    box: SecretBox,
) -> dict:
    """A webhook or Teams connector the org's rules refer to by name. A webhook without a secret gets
    a generated one (answered once, at creation: the database keeps it sealed with `box`).

    The URL must pass the outbound guard with `policy` (the org's allow-list joined with the operator's,
    `casem.app.outbound.service.destination_policy`, read beforehand): it is resolved here, before this
    unit of work touches the database, so no write transaction waits on DNS."""
    if not name.strip() or len(name) > 255:
        raise InvalidInput("name must be 1 to 255 characters", f"{ATTRS}/name")
    if len(url) > 2048:
        raise InvalidInput("url must be at most 2048 characters", f"{ATTRS}/url")
    if secret is not None and not 16 <= len(secret) <= 255:
        raise InvalidInput("secret must be 16 to 255 characters", f"{ATTRS}/secret")
    try:
        await validate_destination(url, policy=policy)
    except DestinationRefused as exc:
        raise InvalidInput(f"url is refused: {exc.reason}", f"{ATTRS}/url") from None
    if kind == "HTTP" and secret is None:
        secret = secrets.token_hex(32)
    exists = await uow.scalar(
        sa.select(sa.func.count())
        .select_from(notification_endpoints)
        .where(
            notification_endpoints.c.org_id == org_id,
            notification_endpoints.c.kind == kind,
            notification_endpoints.c.name == name,
        )
    )
    if exists:
        raise Conflict(f"a {kind} endpoint named {name!r} already exists")
    values = {
        "id": str(uuid.uuid4()),
        "org_id": org_id,
        "kind": kind,
        "name": name,
        "url": url,
        "secret": secret,
        "created_at": datetime.now(UTC),
    }
    sealed = box.seal(secret) if secret is not None else None
    await uow.execute(sa.insert(notification_endpoints).values({**values, "secret": sealed}))
    return values


async def list_endpoints(uow: UnitOfWork, org_id: str) -> list[sa.Row]:
    return list(
        await uow.execute(
            sa.select(notification_endpoints)
            .where(notification_endpoints.c.org_id == org_id)
            .order_by(notification_endpoints.c.kind, notification_endpoints.c.name)
        )
    )


async def delete_endpoint(uow: UnitOfWork, org_id: str, endpoint_id: str) -> None:
    result = await uow.execute(
        sa.delete(notification_endpoints).where(
            notification_endpoints.c.id == endpoint_id, notification_endpoints.c.org_id == org_id
        )
    )
    if not result.rowcount:
        raise NotFound("notification_endpoint", endpoint_id)


# -- the watcher inbox --------------------------------------------------------------------------------


async def inbox(
    uow: UnitOfWork, org_id: str, user_id: str, *, unread_only: bool, size: int, number: int
) -> tuple[list[sa.Row], int]:
    """A page of the user's notifications, newest first, and how many are unread."""
    mine = [notifications.c.org_id == org_id, notifications.c.user_id == user_id]
    scope = [*mine, notifications.c.read_at.is_(None)] if unread_only else mine
    rows = await uow.execute(
        sa.select(notifications)
        .where(*scope)
        .order_by(notifications.c.created_at.desc(), notifications.c.id)
        .limit(size)
        .offset(size * number)
    )
    unread = await uow.scalar(
        sa.select(sa.func.count()).select_from(notifications).where(*mine, notifications.c.read_at.is_(None))
    )
    return list(rows), unread


async def mark_read(uow: UnitOfWork, org_id: str, user_id: str, notification_id: str | None) -> int:
    """Mark one notification (or, with None, all of them) read; another user's is a 404."""
    scope = [notifications.c.org_id == org_id, notifications.c.user_id == user_id]
    if notification_id is not None:
        scope.append(notifications.c.id == notification_id)
    result = await uow.execute(
        sa.update(notifications).where(*scope, notifications.c.read_at.is_(None)).values(read_at=datetime.now(UTC))
    )
    if notification_id is not None and not result.rowcount:
        exists = await uow.scalar(sa.select(sa.func.count()).select_from(notifications).where(*scope))
        if not exists:
            raise NotFound("notification", notification_id)
    return result.rowcount or 0


async def deliveries(uow: UnitOfWork, org_id: str, case_id: str | None, size: int) -> list[sa.Row]:
    scope = [notification_deliveries.c.org_id == org_id]
    if case_id:
        scope.append(notification_deliveries.c.case_id == case_id)
    return list(
        await uow.execute(
            sa.select(notification_deliveries)
            .where(*scope)
            .order_by(notification_deliveries.c.created_at.desc(), notification_deliveries.c.id)
            .limit(size)
        )
    )
