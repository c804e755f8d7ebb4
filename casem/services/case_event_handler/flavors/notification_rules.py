"""notification-rules: evaluates the project's notification rules against each case event, and tells people
what the project's notification settings and the system's notices (reminders, SLA breaches) say they hear of.

For every enabled rule whose trigger fires and whose query matches the case, each recipient gets a
delivery row and a `notification.delivery_requested` event, both written by this flavor's unit of
work (the event through the outbox), so the delivery flavors receive it from the same stream. One
event sends at most one message per (channel, target), however many rules name that target.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, ClassVar

import sqlalchemy as sa

from casem.adapters.storage.tables import case_types, cases, notification_rules, projects, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.chat.mirror import mirror_deliveries
from casem.app.notification_rules.personal import PersonalNotice, add_inbox_entry, people_to_notify
from casem.domain.automation import NOTIFICATION_REQUESTED
from casem.domain.chat import MIRRORED_EVENTS
from casem.domain.notifications import (
    EMAIL,
    ENDPOINT_KINDS,
    FAILED,
    RECIPIENT_CHANNELS,
    RULE_EVENTS,
    SLACK,
    CaseView,
    Delivery,
    NotificationRule,
    endpoint_name,
    query_matches,
    render,
    rule_fires,
    summarize,
)
from casem.domain.project_settings import DESTINATION_EMAIL, DESTINATION_IN_APP
from casem.services.case_event_handler.deliveries import endpoint
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor


async def case_view(uow: UnitOfWork, case_id: str) -> CaseView | None:
    """The case as a rule query sees it (None once it is deleted)."""
    assignee = users.alias("assignee")
    row = (
        await uow.execute(
            sa.select(
                cases, projects.c.key.label("project_key"), case_types.c.name.label("type_name"), assignee.c.email
            )
            .join(projects, projects.c.id == cases.c.project_id)
            .outerjoin(case_types, case_types.c.id == cases.c.type_id)
            .outerjoin(assignee, assignee.c.id == cases.c.assignee_id)
            .where(cases.c.id == case_id)
        )
    ).first()
    if row is None:
        return None
    return CaseView(
        id=row.id,
        key=row.key,
        title=row.title,
        description=row.description or "",
        status=row.status,
        priority=row.priority,
        project_id=row.project_id,
        project_key=row.project_key,
        type_id=row.type_id,
        type_name=row.type_name,
        assignee_id=row.assignee_id,
        assignee_email=row.email,
        attributes=row.attributes or {},
        archived=row.archived_at is not None,
    )


def case_url(services: HandlerServices, key: str) -> str:
    base = services.settings.get("app_url") or os.environ.get("CASEM_APP_URL", "http://localhost:8080")
    return f"{str(base).rstrip('/')}/cases/{key}"


async def project_rules(uow: UnitOfWork, org_id: str, project_id: str) -> list[NotificationRule]:
    rows = await uow.execute(
        sa.select(notification_rules)
        .where(
            notification_rules.c.org_id == org_id,
            notification_rules.c.project_id == project_id,
            notification_rules.c.is_enabled.is_(True),
        )
        .order_by(notification_rules.c.created_at, notification_rules.c.id)
    )
    return [NotificationRule(**row._mapping) for row in rows]


@flavor
class NotificationRules:
    name: ClassVar[str] = "notification-rules"
    # Rule events, the events a case linked to a chat conversation posts there (casem/app/chat/mirror.py), and
    # personal notices the project's notification settings ask for.
    handles: ClassVar[frozenset[str]] = RULE_EVENTS | MIRRORED_EVENTS | {NOTIFICATION_REQUESTED}

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        if event.case_id is None:
            return
        case = await case_view(uow, event.case_id)
        if case is None:
            return  # deleted since: nobody is told about a case that no longer exists
        for mirrored in await mirror_deliveries(uow, event, case.key):
            uow.add(mirrored)
        sent_to: set[tuple[str, str]] = set()
        meta = {"id": event.id, "time": event.envelope.get("time"), "actor_id": event.actor_id}
        url = case_url(services, case.key)
        for notice in await people_to_notify(uow, event, case.project_id, case.assignee_id):
            await self._tell(uow, event, case, url, meta, notice, sent_to)
        for rule in await project_rules(uow, event.org_id, case.project_id):
            if not rule_fires(rule, event.type, event.data) or not query_matches(rule.query, case):
                continue
            for recipient in rule.recipients:
                channel = RECIPIENT_CHANNELS.get(recipient["type"])
                if channel is None:
                    continue  # PAGERDUTY_SERVICE: the paging flavor's concern
                target, error = await self._target(uow, event.org_id, channel, recipient)
                identity = (channel, repr(sorted(target.items())))
                if identity in sent_to:
                    continue
                sent_to.add(identity)
                fields: dict[str, Any] = {
                    "org_id": event.org_id,
                    "rule_id": rule.id,
                    "source_event_id": event.id,
                    "case_id": event.case_id,
                    "channel": channel,
                    "target": target,
                    "payload": render(channel, event.type, event.data, case, url, meta),
                }
                if error is None:
                    uow.add(Delivery.request(**fields))
                else:
                    # Nothing to send to: keep a visible failed row, and request no delivery.
                    failed = Delivery(id=str(uuid.uuid4()), **fields)
                    failed.status, failed.last_error = FAILED, error
                    uow.add(failed)

    async def _tell(
        self,
        uow: UnitOfWork,
        event: Event,
        case: CaseView,
        url: str,
        meta: dict[str, Any],
        notice: PersonalNotice,
        sent_to: set[tuple[str, str]],
    ) -> None:
        """One person on each of their destinations: a delivery for email and Slack, an inbox entry in-app."""
        for destination in notice.destinations:
            if destination == DESTINATION_IN_APP:
                await add_inbox_entry(
                    uow,
                    org_id=event.org_id,
                    user_id=notice.person.user_id,
                    case_id=case.id,
                    case_key=case.key,
                    event_id=event.id,
                    event_type=event.type,
                    actor_id=event.actor_id,
                    summary=summarize(event.type, event.data, case.key, case.title),
                    created_at=event.time,
                )
                continue
            channel = EMAIL if destination == DESTINATION_EMAIL else SLACK
            # Slack: a direct message to the Slack user with the person's email (slack-delivery looks them up).
            target = {"email": notice.person.email} if channel == EMAIL else {"user_email": notice.person.email}
            identity = (channel, repr(sorted(target.items())))
            if identity in sent_to:
                continue
            sent_to.add(identity)
            payload = render(channel, event.type, event.data, case, url, {**meta, "reason": notice.reason})
            uow.add(
                Delivery.request(
                    org_id=event.org_id,
                    rule_id=None,
                    source_event_id=event.id,
                    case_id=event.case_id,
                    channel=channel,
                    target=target,
                    payload=payload,
                )
            )

    async def _target(
        self, uow: UnitOfWork, org_id: str, channel: str, recipient: dict[str, Any]
    ) -> tuple[dict[str, Any], str | None]:
        data = recipient.get("data") or {}
        if channel == EMAIL:
            return {"email": data["email"]}, None
        if channel == SLACK:
            return {"channel": data.get("channel_id") or data["channel"], "workspace": data.get("workspace")}, None
        kind = recipient["type"]
        assert kind in ENDPOINT_KINDS
        name = endpoint_name(recipient) or ""
        found = await endpoint(uow, org_id, kind, name)
        if found is None:
            return {"name": name}, f"the org has no {kind} endpoint named {name!r}"
        return {"name": name, "url": found.url}, None
