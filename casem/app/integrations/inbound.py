"""Jira / ServiceNow → casem: what case-third-party-reader does with each remote change.

The change is applied to the case linked to the remote issue, as far as the project's sync settings pull
that property in: comments become timeline comments (authored by the casem user with the remote author's
e-mail, and saying who wrote them where), status and priority go through the project's mapping, the
assignee is matched by e-mail, and title, description and due date are taken as they are. Every change
carries its `origin`, so the timeline says where it came from and the sync flavors never send it back.

Not applied, and answered as the outcome: a change for an issue no case is linked to (`unlinked`), one made
by casem's own integration user (`own_change`: casem's push coming back), a field change older than one
already applied (`stale`), or a property the settings do not pull (`not_synced`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import remote_objects, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.integrations.links import link_by_remote, project_rules
from casem.app.integrations.remote_events import RemoteEvent
from casem.app.integrations.settings import SyncRules
from casem.domain.cases import DESCRIPTION_MAX, TITLE_MAX, Case
from casem.domain.errors import InvalidInput, NotFound
from casem.domain.integrations import IntegrationAccount, record_unlinked, remote_origin
from casem.domain.timeline import COMMENT_MAX, TimelineCell


async def _user_by_email(uow: UnitOfWork, org_id: str, email: str | None) -> str | None:
    if not email:
        return None
    return await uow.scalar(
        sa.select(users.c.id).where(users.c.org_id == org_id, sa.func.lower(users.c.email) == email.lower()).limit(1)
    )


def _object_key(event: RemoteEvent) -> str:
    prefix = "comment" if event.system == "jira" else "journal"
    return f"{prefix}:{(event.comment or {}).get('id')}"


async def apply_remote_event(uow: UnitOfWork, event: RemoteEvent) -> str:
    account = await uow.session.get(IntegrationAccount, event.account_id)
    if account is None or account.org_id != event.org_id or account.system != event.system:
        return "unknown_account"
    link = await link_by_remote(uow, account.id, event.issue_id)
    if link is None:
        return "unlinked"
    actor = event.actor or {}
    if account.is_own_user(actor.get("id")) or account.is_own_user(actor.get("name")):
        return "own_change"
    try:
        case = await uow.get(Case, account.org_id, link.case_id, resource="case")
    except NotFound:
        return "case_gone"
    rules = await project_rules(uow, case, event.system)
    origin = remote_origin(event.system, link.remote_key or event.issue_key, event.id, actor)
    actor_id = await _user_by_email(uow, case.org_id, actor.get("email"))
    if event.kind == "issue_deleted":
        record_unlinked(case, link, actor_id, reason=f"the issue was deleted in {event.system}")
        await uow.session.delete(link)
        return "unlinked_deleted"
    if event.is_comment:
        if not rules.pulls("comments"):
            return "not_synced"
        return await _apply_comment(uow, account, case, event, origin, actor_id)
    if event.kind == "issue_created":
        return "unchanged"  # the case came first (casem created or linked the issue)
    if link.is_stale(event.occurred_at):
        return "stale"
    changed = _apply_fields(case, rules, event, origin, actor_id, await _assignee(uow, case, event))
    link.applied_remote_change(event.occurred_at)
    return "applied" if changed else "unchanged"


async def _assignee(uow: UnitOfWork, case: Case, event: RemoteEvent) -> tuple[bool, str | None]:
    """(whether the change names an assignee casem can follow, the casem user it is)."""
    if "assignee" not in event.changes:
        return False, None
    value = event.changes["assignee"]
    if value is None:
        return True, None
    user = await _user_by_email(uow, case.org_id, (value or {}).get("email"))
    return user is not None, user


def _apply_fields(
    case: Case,
    rules: SyncRules,
    event: RemoteEvent,
    origin: dict[str, Any],
    actor_id: str | None,
    assignee: tuple[bool, str | None],
) -> bool:
    changed = False
    changes = event.changes
    with case.changes_from(origin):
        if (
            "title" in changes
            and rules.pulls("title")
            and isinstance(changes["title"], str)
            and changes["title"].strip()
        ):
            changed |= case.retitle(changes["title"][:TITLE_MAX], actor_id)
        if "description" in changes and rules.pulls("description"):
            changed |= case.describe(str(changes["description"] or "")[:DESCRIPTION_MAX], actor_id)
        if "status" in changes and rules.pulls("status"):
            status = changes["status"] or {}
            local = rules.local_status(status.get("name"), status.get("category"))
            if local is not None:
                changed |= case.transition(local, actor_id)
        if "priority" in changes and rules.pulls("priority"):
            local = rules.local_priority(changes["priority"])
            if local is not None:
                changed |= case.prioritize(local, actor_id)
        if rules.pulls("assignee") and assignee[0]:
            changed |= case.assign(assignee[1], actor_id)
        if "due_date" in changes and rules.pulls("due_date"):
            changed |= case.set_due_date(_date(changes["due_date"]), actor_id)
    return changed


def _date(value: Any) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


async def _apply_comment(
    uow: UnitOfWork,
    account: IntegrationAccount,
    case: Case,
    event: RemoteEvent,
    origin: dict[str, Any],
    actor_id: str | None,
) -> str:
    comment = event.comment or {}
    key = _object_key(event)
    known = (
        await uow.execute(
            sa.select(remote_objects.c.cell_id, remote_objects.c.origin).where(
                remote_objects.c.account_id == account.id, remote_objects.c.remote_object_id == key
            )
        )
    ).first()
    body = str(comment.get("body") or "")[:COMMENT_MAX]
    comment_origin = {**origin, "comment_id": comment.get("id")}
    if event.kind == "comment_created":
        if known is not None:
            return "known_comment"  # casem wrote it, or it was applied already
        if not body.strip():
            return "empty_comment"
        cell = TimelineCell.remote_comment(
            id=str(uuid.uuid4()),
            org_id=case.org_id,
            case_id=case.id,
            message=body,
            author_id=actor_id,
            origin=comment_origin,
            created_at=event.occurred_at,
        )
        uow.add(cell)
        await uow.execute(
            sa.insert(remote_objects).values(
                account_id=account.id,
                remote_object_id=key,
                org_id=case.org_id,
                case_id=case.id,
                cell_id=cell.id,
                origin=event.system,
                created_at=datetime.now(UTC),
            )
        )
        return "applied"
    if known is None or known.origin != event.system:
        return "not_a_remote_comment"  # edits in Jira of comments casem wrote stay casem's
    cell = await uow.session.get(TimelineCell, known.cell_id)
    if cell is None or cell.deleted_at is not None:
        return "comment_gone"
    if event.kind == "comment_deleted":
        cell.delete(actor_id, comment_origin)
        return "applied"
    try:
        cell.edit(body, actor_id, comment_origin)
    except InvalidInput:
        return "empty_comment"
    return "applied"
