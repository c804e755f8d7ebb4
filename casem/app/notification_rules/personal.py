"""Notifications addressed to people rather than to a rule's recipients: the project's notification settings
(Datadog's ProjectNotificationSettings) and the notices of reminders and SLA breaches (`notification.requested`).

`people_to_notify` answers who hears of a case event, and on which destinations (1 email, 2 Slack, 3 in-app);
the notification-rules flavor turns each answer into a delivery (email and Slack, sent by their delivery
flavors) or an inbox entry (in-app). `add_inbox_entry` is the one way to write an inbox row: the watcher flavor
and this one may both write the same (user, event) row, and the second write is a no-op.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from casem.adapters.storage.tables import notifications, projects, users, watchers
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.events import Event
from casem.domain.automation import NOTIFICATION_REQUESTED
from casem.domain.project_settings import (
    DESTINATION_EMAIL,
    NOTIFICATION,
    NotificationSettings,
    mentions,
    settings_audience,
)


@dataclass(frozen=True)
class Person:
    user_id: str
    email: str
    handle: str


@dataclass(frozen=True)
class PersonalNotice:
    """One person told about one event on some destinations, and why (the settings flag or the notice's reason)."""

    person: Person
    destinations: tuple[int, ...]
    reason: str


async def project_settings_of(uow: UnitOfWork, project_id: str) -> dict[str, Any]:
    return (await uow.scalar(sa.select(projects.c.settings).where(projects.c.id == project_id))) or {}


async def people(uow: UnitOfWork, org_id: str, user_ids: Iterable[str]) -> dict[str, Person]:
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    rows = await uow.execute(
        sa.select(users.c.id, users.c.email, users.c.handle).where(
            users.c.id.in_(ids), users.c.org_id == org_id, users.c.disabled.is_(False)
        )
    )
    return {r.id: Person(r.id, r.email, r.handle) for r in rows}


async def mentioned_users(uow: UnitOfWork, org_id: str, text: str) -> set[str]:
    """The org's users a comment mentions by handle or email."""
    handles = mentions(text)
    if not handles:
        return set()
    rows = await uow.execute(
        sa.select(users.c.id).where(
            users.c.org_id == org_id, sa.or_(sa.func.lower(users.c.handle).in_(handles), users.c.email.in_(handles))
        )
    )
    return {r.id for r in rows}


async def people_to_notify(
    uow: UnitOfWork, event: Event, project_id: str, assignee_id: str | None
) -> list[PersonalNotice]:
    """Who hears of `event` personally, on which destinations."""
    settings = await project_settings_of(uow, project_id)
    notification = NotificationSettings.of(settings)
    if event.type == NOTIFICATION_REQUESTED:
        # A reminder or an SLA breach, for the people the notice names (the assignee). The project's settings
        # choose the destinations; with none configured, email. Settings present but disabled: nobody.
        if NOTIFICATION in settings and not notification.enabled:
            return []
        destinations = notification.destinations or (DESTINATION_EMAIL,)
        found = await people(uow, event.org_id, event.data.get("recipients") or [])
        reason = str(event.data.get("reason") or "notice")
        return [PersonalNotice(p, destinations, reason) for p in found.values()]
    if not notification.enabled or not notification.destinations:
        return []
    watcher_ids = await uow.scalars(
        sa.select(watchers.c.user_id).where(watchers.c.case_id == event.case_id, watchers.c.org_id == event.org_id)
    )
    mentioned = (
        await mentioned_users(uow, event.org_id, str(event.data.get("message") or ""))
        if event.type == "case.comment_added"
        else set()
    )
    audiences = settings_audience(
        notification,
        event.type,
        event.data,
        assignee_id=assignee_id,
        watcher_ids=watcher_ids,
        actor_id=event.actor_id,
        mentioned_ids=mentioned,
    )
    found = await people(uow, event.org_id, (u for a in audiences for u in a.user_ids))
    return [
        PersonalNotice(found[user_id], notification.destinations, audience.reason)
        for audience in audiences
        for user_id in sorted(audience.user_ids)
        if user_id in found
    ]


async def add_inbox_entry(
    uow: UnitOfWork,
    *,
    org_id: str,
    user_id: str,
    case_id: str,
    case_key: str,
    event_id: str,
    event_type: str,
    actor_id: str | None,
    summary: str,
    created_at: datetime,
) -> None:
    """An inbox entry, once per (user, event) whoever writes it first."""
    values = {
        "id": str(uuid.uuid4()),
        "org_id": org_id,
        "user_id": user_id,
        "case_id": case_id,
        "case_key": case_key,
        "event_id": event_id,
        "event_type": event_type,
        "actor_id": actor_id,
        "summary": summary[:1024],
        "created_at": created_at,
    }
    insert = pg_insert if uow.db.dialect == "postgresql" else sqlite_insert
    await uow.execute(
        insert(notifications).values(**values).on_conflict_do_nothing(index_elements=["user_id", "event_id"])
    )
