"""casem → Jira / ServiceNow: what the jira-sync and servicenow-sync flavors do with each case event.

- `case.created`: when the project's settings turn `auto_creation` on, create the issue / ticket;
- `case.integration_link_requested`: retry a creation the API could not finish (the remote was down);
- a change of the case (title, description, status, priority, assignee, due date, custom attributes) or a
  new comment: push it when the project's `sync.properties` send that property out, and record the push
  (or the remote's refusal) on the case's timeline.

A change that came from this remote (`origin`, see `Case.changes_from`) is never sent back: that is the loop
prevention by origin. Remote refusals (4xx) are recorded and not retried; an unavailable remote raises for
the flavor runner's retries (rate limits are waited out first, see casem/adapters/integrations/ratelimit.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from casem.adapters.integrations import JiraClient, RemoteError, ServiceNowClient, text_to_adf
from casem.adapters.storage.tables import remote_objects, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.events import Event
from casem.app.integrations.links import LINK_REQUESTED, SERVICENOW_TABLE, create_remote_issue, find_link, project_rules
from casem.app.integrations.remotes import RemoteSystems
from casem.app.integrations.settings import SyncRules
from casem.domain.cases import Case, Status
from casem.domain.errors import NotFound
from casem.domain.integrations import (
    JIRA,
    SERVICENOW,
    IntegrationAccount,
    RemoteLink,
    came_from,
    record_sync_failed,
    record_synced,
)

# The case events the sync flavors consume.
CHANGE_EVENTS = {
    "case.title_changed": "title",
    "case.description_changed": "description",
    "case.status_changed": "status",
    "case.priority_changed": "priority",
    "case.assigned": "assignee",
    "case.unassigned": "assignee",
    "case.due_date_changed": "due_date",
    "case.custom_attributes_changed": "custom_fields",
    "case.comment_added": "comments",
}
HANDLED = frozenset({"case.created", LINK_REQUESTED, *CHANGE_EVENTS})
JIRA_CATEGORIES = {Status.OPEN.value: "new", Status.IN_PROGRESS.value: "indeterminate", Status.CLOSED.value: "done"}


def _new(event: Event, name: str) -> Any:
    return (event.changed(name) or {}).get("new")


def _auto_request(rules: SyncRules) -> dict[str, Any] | None:
    if not (rules.enabled and rules.auto_creation):
        return None
    if rules.system == JIRA:
        if not (rules.account_id and rules.project_id and rules.issue_type_id):
            return None
        return {"account_id": rules.account_id, "project_id": rules.project_id, "issue_type_id": rules.issue_type_id}
    if not rules.instance_name:
        return None
    return {"instance_name": rules.instance_name, "assignment_group": rules.assignment_group}


async def sync_case_event(uow: UnitOfWork, remotes: RemoteSystems, event: Event, system: str) -> str:
    """Apply one case event to the case's remote issue; answers what happened (for the flavor's metrics)."""
    if came_from(event.data, system):
        return "from_remote"  # it came from there: sending it back would echo
    if event.case_id is None:
        return "not_a_case"
    holder = f"flavor:{event.id}"
    if event.type == LINK_REQUESTED:
        if event.data.get("system") != system:
            return "other_system"
        result = await create_remote_issue(
            uow, remotes, event.org_id, None, event.case_id, system, None, holder, api=False
        )
        return _creation_outcome(result.error, result.skipped)
    try:
        case = await uow.get(Case, event.org_id, event.case_id, resource="case")
    except NotFound:
        return "case_gone"
    rules = await project_rules(uow, case, system)
    if event.type == "case.created":
        request = _auto_request(rules)
        if request is None or await find_link(uow, case.id, system) is not None:
            return "no_auto_creation"
        result = await create_remote_issue(
            uow, remotes, event.org_id, None, case.id, system, request, holder, api=False
        )
        return _creation_outcome(result.error, result.skipped)
    prop = CHANGE_EVENTS[event.type]
    link = await find_link(uow, case.id, system)
    if link is None or not link.completed:
        return "not_linked"
    if prop != "custom_fields" and not rules.pushes(prop):
        return "not_synced"
    account = await uow.session.get(IntegrationAccount, link.account_id)
    if account is None or account.deleted_at is not None:
        return "account_gone"
    try:
        if system == JIRA:
            async with remotes.jira(account) as client:
                pushed = await _push_to_jira(uow, client, account, case, link, rules, event, prop)
        else:
            async with remotes.servicenow(account) as client:
                pushed = await _push_to_servicenow(client, case, link, rules, event, prop)
    except RemoteError as exc:
        if exc.transient:
            raise  # the runner retries (and dead-letters after its attempts)
        record_sync_failed(case, link, [prop], exc.explanation)
        return "refused"
    if pushed is None:
        return "unchanged"
    if isinstance(pushed, str):
        record_sync_failed(case, link, [prop], pushed)
        return "refused"
    record_synced(case, link, pushed)
    return "pushed"


def _creation_outcome(error: RemoteError | None, skipped: str | None) -> str:
    if skipped:
        return "creation_skipped"
    if error is None:
        return "created"
    if error.transient:
        raise error  # the runner retries it
    return "creation_refused"


# -- Jira ------------------------------------------------------------------------------------------------------


async def _user_email(uow: UnitOfWork, org_id: str, user_id: str | None) -> str | None:
    if not user_id:
        return None
    return await uow.scalar(sa.select(users.c.email).where(users.c.id == user_id, users.c.org_id == org_id))


class NoTransition(Exception):  # noqa: N818 - reads as "raise NoTransition(...)"
    """The issue's workflow has no way to the wanted status from where it is."""


async def _jira_transition(client: JiraClient, key: str, rules: SyncRules, status: str) -> str | None:
    """Move the issue to the status mapped from casem's (or of the same category); None when it is there already."""
    target = rules.remote_status(status)
    issue = await client.get_issue(key, fields=["status"])
    current = (issue.get("fields") or {}).get("status") or {}
    category = JIRA_CATEGORIES.get(status)
    if target and str(current.get("name", "")).lower() == target.lower():
        return None
    if not target and (current.get("statusCategory") or {}).get("key") == category:
        return None
    for transition in await client.transitions(key):
        to = transition.get("to") or {}
        if (target and str(to.get("name", "")).lower() == target.lower()) or (
            not target and (to.get("statusCategory") or {}).get("key") == category
        ):
            await client.transition(key, str(transition["id"]))
            return to.get("name") or target
    wanted = f"status {target!r}" if target else f"a {category} status"
    raise NoTransition(f"the issue has no transition to {wanted} from {current.get('name', 'its status')!r}")


async def _push_to_jira(
    uow: UnitOfWork,
    client: JiraClient,
    account: IntegrationAccount,
    case: Case,
    link: RemoteLink,
    rules: SyncRules,
    event: Event,
    prop: str,
) -> dict[str, Any] | str | None:
    """What was pushed ({property: value}), a reason it could not be, or None when there was nothing to do."""
    key = str(link.remote_key)
    if prop == "title":
        title = _new(event, "title")
        await client.edit_issue(key, {"summary": title})
        return {"title": title}
    if prop == "description":
        description = _new(event, "description") or ""
        await client.edit_issue(key, {"description": text_to_adf(description) if description else None})
        return {"description": description}
    if prop == "priority":
        remote = rules.remote_priority(_new(event, "priority"))
        if remote is None:
            return None
        await client.edit_issue(key, {"priority": {"name": remote}})
        return {"priority": remote}
    if prop == "status":
        try:
            moved = await _jira_transition(client, key, rules, _new(event, "status"))
        except NoTransition as exc:
            return str(exc)
        return {"status": moved} if moved is not None else None
    if prop == "assignee":
        email = await _user_email(uow, case.org_id, _new(event, "assignee_id"))
        if email is None:
            await client.edit_issue(key, {"assignee": None})
            return {"assignee": None}
        user = await client.find_user(email)
        if user is None:
            return f"Jira shows no user with the e-mail {email}"
        await client.edit_issue(key, {"assignee": {"accountId": user["accountId"]}})
        return {"assignee": email}
    if prop == "due_date":
        due = _new(event, "due_date")
        await client.edit_issue(key, {rules.due_date_field: due})
        return {"due_date": due}
    if prop == "custom_fields":
        new = _new(event, "custom_attributes") or {}
        old = (event.changed("custom_attributes") or {}).get("old") or {}
        fields = {
            fid: new.get(attr)
            for fid, attr in rules.custom_fields.items()
            if rules.pushes(f"custom_fields.{fid}") and new.get(attr) != old.get(attr)
        }
        if not fields:
            return None
        await client.edit_issue(key, fields)
        return {"custom_fields": fields}
    if prop == "comments":
        message = str(event.data.get("message") or "")
        comment = await client.add_comment(key, message)
        await _remember_comment(uow, account, case, str(comment["id"]), str(event.data.get("cell_id")))
        return {"comment": str(comment["id"])}
    raise AssertionError(f"unhandled property {prop}")


async def _remember_comment(
    uow: UnitOfWork, account: IntegrationAccount, case: Case, remote_id: str, cell_id: str
) -> None:
    """The remote comment is this cell: its webhook, when it comes back, is not a new comment."""
    await uow.execute(
        sa.insert(remote_objects).values(
            account_id=account.id,
            remote_object_id=f"comment:{remote_id}",
            org_id=case.org_id,
            case_id=case.id,
            cell_id=cell_id,
            origin="casem",
            created_at=datetime.now(UTC),
        )
    )


# -- ServiceNow ----------------------------------------------------------------------------------------------------


async def _push_to_servicenow(
    client: ServiceNowClient, case: Case, link: RemoteLink, rules: SyncRules, event: Event, prop: str
) -> dict[str, Any] | str | None:
    sys_id = str(link.remote_id)
    if prop == "status":
        status = _new(event, "status")
        state = rules.remote_status(status)
        if state is None:
            return None
        values = {"state": state}
        if state in ("6", "7"):  # the incident's resolution data policy asks for these
            values["close_code"] = "Solved (Permanently)"
            values["close_notes"] = case.resolved_reason or f"Closed in casem ({case.key})"
        await client.update(SERVICENOW_TABLE, sys_id, values)
        return {"status": state}
    if prop == "priority":
        levels = rules.impact_urgency(_new(event, "priority"))
        if levels is None:
            return None
        await client.update(SERVICENOW_TABLE, sys_id, {"impact": levels[0], "urgency": levels[1]})
        return {"priority": {"impact": levels[0], "urgency": levels[1]}}
    if prop == "comments":
        message = str(event.data.get("message") or "")
        await client.update(SERVICENOW_TABLE, sys_id, {"comments": message})
        return {"comment": message[:80]}
    return None  # ServiceNow's sync settings have no title, description, assignee or due date


__all__ = ["CHANGE_EVENTS", "HANDLED", "SERVICENOW", "sync_case_event"]
