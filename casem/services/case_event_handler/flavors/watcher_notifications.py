"""watcher-notifications: an in-app inbox entry for each watcher of a case when someone else changes
it or comments on it (served by GET /api/v2/casem/notifications). A user added as a watcher by
someone else is told so; other watchers are not."""

from __future__ import annotations

from typing import ClassVar

import sqlalchemy as sa

from casem.adapters.storage.tables import cases, watchers
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.notification_rules.personal import add_inbox_entry
from casem.domain.notifications import summarize
from casem.domain.timeline import CHANGE_CELL_TYPES
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor

# Case changes a watcher hears about: every change cell but the attachment pipeline's internal steps.
WATCHED_EVENTS = frozenset(
    {t for t in CHANGE_CELL_TYPES if not t.startswith("case.attachment_") or t == "case.attachment_available"}
    - {"case.created", "case.watcher_removed"}
    | {"case.comment_added"}
)


@flavor
class WatcherNotifications:
    name: ClassVar[str] = "watcher-notifications"
    handles: ClassVar[frozenset[str]] = WATCHED_EVENTS

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        if event.case_id is None:
            return
        case = (await uow.execute(sa.select(cases.c.key, cases.c.title).where(cases.c.id == event.case_id))).first()
        if case is None:
            return  # deleted since
        if event.type == "case.watcher_added":
            recipients = {event.data["user_id"]}
        else:
            rows = await uow.execute(
                sa.select(watchers.c.user_id).where(
                    watchers.c.case_id == event.case_id, watchers.c.org_id == event.org_id
                )
            )
            recipients = {row.user_id for row in rows}
        recipients.discard(event.actor_id)  # nobody is notified of their own change
        summary = summarize(event.type, event.data, case.key, case.title)[:1024]
        for user_id in sorted(recipients):
            # The project's in-app notification settings may have written the same entry: once is enough.
            await add_inbox_entry(
                uow,
                org_id=event.org_id,
                user_id=user_id,
                case_id=event.case_id,
                case_key=case.key,
                event_id=event.id,
                event_type=event.type,
                actor_id=event.actor_id,
                summary=summary,
                created_at=event.time,
            )
