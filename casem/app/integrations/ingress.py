"""What arrives from Jira and ServiceNow, checked and normalised into `RemoteEvent`s.

Jira Cloud webhooks (issue created/updated/deleted, comment created/updated/deleted) are signed:
`X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>` with the account's webhook secret. ServiceNow's
outbound REST message (a business rule on incident and journal changes, documented in docs/integrations.md)
carries the instance's shared secret in `X-Casem-Webhook-Secret`. Both are compared in constant time.

The reconciliation poll (casem/app/integrations/poller.py) normalises what it reads through the same
functions, so a change seen both ways has one id.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from casem.adapters.integrations import adf_to_text
from casem.app.integrations.remote_events import RemoteEvent
from casem.domain.integrations import JIRA, SERVICENOW, IntegrationAccount

JIRA_SIGNATURE = "X-Hub-Signature"
SERVICENOW_SECRET = "X-Casem-Webhook-Secret"
MAX_WEBHOOK_BYTES = 1_048_576

# Jira changelog fields casem syncs, and their names in casem.
JIRA_FIELDS = {
    "summary": "title",
    "description": "description",
    "status": "status",
    "priority": "priority",
    "assignee": "assignee",
    "duedate": "due_date",
}
JIRA_ISSUE_EVENTS = {
    "jira:issue_created": "issue_created",
    "jira:issue_updated": "issue_updated",
    "jira:issue_deleted": "issue_deleted",
}
JIRA_COMMENT_EVENTS = {
    "comment_created": "comment_created",
    "comment_updated": "comment_updated",
    "comment_deleted": "comment_deleted",
}


class UnusableEvent(ValueError):
    """A delivery whose body does not have the remote's documented shape (a 400 for the sender)."""


def verify_jira_signature(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len("sha256=") :].strip().lower())


def verify_servicenow_secret(secret: str, header: str | None) -> bool:
    return bool(header) and hmac.compare_digest(secret.encode(), (header or "").encode())


def jira_time(value: Any) -> datetime:
    """Jira's timestamps: `2026-01-31T10:00:00.000+0000` (or ISO 8601), or epoch milliseconds."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    if not isinstance(value, str):
        raise UnusableEvent(f"not a Jira time: {value!r}")
    for fmt in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(value, fmt).astimezone(UTC)
        except ValueError:
            continue
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        raise UnusableEvent(f"not a Jira time: {value!r}") from None


def servicenow_time(value: Any) -> datetime:
    """ServiceNow's `YYYY-MM-DD HH:MM:SS` (UTC, as the API gives raw values)."""
    try:
        return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        raise UnusableEvent(f"not a ServiceNow time: {value!r}") from None


def jira_user(bean: Any) -> dict[str, Any] | None:
    if not isinstance(bean, dict):
        return None
    return {"id": bean.get("accountId"), "name": bean.get("displayName"), "email": bean.get("emailAddress")}


def _issue(payload: dict[str, Any]) -> dict[str, Any]:
    issue = payload.get("issue")
    if not isinstance(issue, dict) or not issue.get("id") or not issue.get("key"):
        raise UnusableEvent("the delivery has no issue with an id and a key")
    return issue


def jira_changes(items: list[dict[str, Any]], fields: dict[str, Any]) -> dict[str, Any]:
    """casem's view of a Jira changelog entry: only the fields casem syncs, with their new values."""
    changes: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        name = JIRA_FIELDS.get(str(item.get("fieldId") or item.get("field") or "").lower())
        if name is None:
            continue
        if name == "status":
            status = fields.get("status") or {}
            category = (
                (status.get("statusCategory") or {}).get("key") if status.get("name") == item.get("toString") else None
            )
            changes[name] = {"name": item.get("toString"), "category": category}
        elif name == "assignee":
            assignee = fields.get("assignee") or {}
            to = item.get("to")
            if to is None:
                changes[name] = None
            else:
                email = assignee.get("emailAddress") if assignee.get("accountId") == to else None
                changes[name] = {"id": to, "email": email, "name": item.get("toString")}
        elif name == "due_date":
            changes[name] = item.get("to")
        else:
            changes[name] = item.get("toString")
    return changes


def jira_comment(comment: Any) -> dict[str, Any]:
    if not isinstance(comment, dict) or not comment.get("id"):
        raise UnusableEvent("the delivery has no comment with an id")
    return {
        "id": str(comment["id"]),
        "body": adf_to_text(comment.get("body")),
        "author": jira_user(comment.get("author")),
        "created": comment.get("created"),
        "updated": comment.get("updated"),
    }


def jira_events(account: IntegrationAccount, tenant: str, payload: Any, source: str = "webhook") -> list[RemoteEvent]:
    """The events of one Jira webhook delivery ([] for events casem does not follow)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("webhookEvent"), str):
        raise UnusableEvent("not a Jira webhook delivery: no webhookEvent")
    kind_name = payload["webhookEvent"]
    if kind_name not in JIRA_ISSUE_EVENTS and kind_name not in JIRA_COMMENT_EVENTS:
        return []
    issue = _issue(payload)
    prefix = f"{JIRA}:{account.id}"
    base = {
        "system": JIRA,
        "tenant": tenant,
        "org_id": account.org_id,
        "account_id": account.id,
        "issue_id": str(issue["id"]),
        "issue_key": str(issue["key"]),
        "source": source,
    }
    when = jira_time(payload["timestamp"]) if "timestamp" in payload else datetime.now(UTC)
    if kind_name in JIRA_COMMENT_EVENTS:
        kind = JIRA_COMMENT_EVENTS[kind_name]
        comment = jira_comment(payload.get("comment"))
        if kind == "comment_created":
            event_id, actor = f"{prefix}:comment:{comment['id']}:created", comment["author"]
        elif kind == "comment_updated":
            event_id = f"{prefix}:comment:{comment['id']}:updated:{comment['updated']}"
            actor = jira_user((payload.get("comment") or {}).get("updateAuthor")) or comment["author"]
        else:
            event_id, actor = f"{prefix}:comment:{comment['id']}:deleted", jira_user(payload.get("user"))
        occurred = jira_time(comment["updated"]) if comment.get("updated") else when
        return [RemoteEvent(id=event_id, kind=kind, occurred_at=occurred, actor=actor, comment=comment, **base)]
    kind = JIRA_ISSUE_EVENTS[kind_name]
    actor = jira_user(payload.get("user"))
    if kind == "issue_updated":
        changelog = payload.get("changelog")
        if not isinstance(changelog, dict) or not changelog.get("id"):
            return []  # an update without a changelog (a comment's echo, a watcher) changes no synced field
        changes = jira_changes(changelog.get("items") or [], issue.get("fields") or {})
        event_id = f"{prefix}:changelog:{changelog['id']}"
        return [RemoteEvent(id=event_id, kind=kind, occurred_at=when, actor=actor, changes=changes, **base)]
    return [
        RemoteEvent(
            id=f"{prefix}:issue:{issue['id']}:{kind.split('_')[1]}", kind=kind, occurred_at=when, actor=actor, **base
        )
    ]


# -- ServiceNow -------------------------------------------------------------------------------------------------


def servicenow_changes(record: dict[str, Any]) -> dict[str, Any]:
    """casem's view of an incident: the synced properties' current values (a snapshot, applied where it differs)."""
    changes: dict[str, Any] = {}
    if record.get("state"):
        changes["status"] = {"name": str(record["state"]), "category": None}
    if record.get("priority"):
        changes["priority"] = str(record["priority"])
    if "short_description" in record:
        changes["title"] = record.get("short_description")
    if "description" in record:
        changes["description"] = record.get("description")
    email = record.get("assigned_to_email", record.get("assigned_to.email"))
    if email is not None:
        changes["assignee"] = {"email": email} if email else None
    return changes


def servicenow_events(
    account: IntegrationAccount, tenant: str, payload: Any, source: str = "webhook"
) -> list[RemoteEvent]:
    """The events of one ServiceNow outbound REST message (see docs/integrations.md for its shape)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("event"), str):
        raise UnusableEvent("not a casem ServiceNow message: no event")
    if payload.get("table", "incident") != "incident":
        return []
    for name in ("sys_id", "number", "sys_mod_count", "sys_updated_on"):
        if not payload.get(name):
            raise UnusableEvent(f"the message has no {name}")
    prefix = f"{SERVICENOW}:{account.id}"
    base = {
        "system": SERVICENOW,
        "tenant": tenant,
        "org_id": account.org_id,
        "account_id": account.id,
        "issue_id": str(payload["sys_id"]),
        "issue_key": str(payload["number"]),
        "source": source,
    }
    kind_name = payload["event"]
    if kind_name == "comment.added":
        journal = payload.get("comment")
        if not isinstance(journal, dict) or not journal.get("sys_id"):
            raise UnusableEvent("a comment message without the journal entry")
        author = {"id": None, "name": journal.get("sys_created_by"), "email": journal.get("author_email") or None}
        comment = {
            "id": str(journal["sys_id"]),
            "body": str(journal.get("value") or ""),
            "author": author,
            "created": journal.get("sys_created_on"),
            "updated": journal.get("sys_created_on"),
        }
        return [
            RemoteEvent(
                id=f"{prefix}:journal:{journal['sys_id']}",
                kind="comment_created",
                occurred_at=servicenow_time(journal.get("sys_created_on") or payload["sys_updated_on"]),
                actor=author,
                comment=comment,
                **base,
            )
        ]
    kinds = {
        "incident.inserted": "issue_created",
        "incident.updated": "issue_updated",
        "incident.deleted": "issue_deleted",
    }
    if kind_name not in kinds:
        return []
    actor = {"id": None, "name": payload.get("sys_updated_by"), "email": None}
    record = payload.get("record") if isinstance(payload.get("record"), dict) else {}
    return [
        RemoteEvent(
            id=f"{prefix}:incident:{payload['sys_id']}:mod:{payload['sys_mod_count']}",
            kind=kinds[kind_name],
            occurred_at=servicenow_time(payload["sys_updated_on"]),
            actor=actor,
            changes=servicenow_changes(record) if kind_name != "incident.deleted" else {},
            **base,
        )
    ]
