"""Notifications: project notification rules (Datadog's CaseNotificationRule), what each delivery
channel is sent, and the in-app inbox summaries of case changes. Pure: no I/O, no framework.

A rule has triggers (which case events fire it), an optional case query (the search language of
casem/domain/search_query.py, evaluated here against one case) and recipients. Every recipient
becomes one delivery on its channel: EMAIL → email, SLACK_CHANNEL → slack, MS_TEAMS_CHANNEL →
msteams, HTTP → webhook. PAGERDUTY_SERVICE recipients are accepted and stored for the `paging`
flavor; no delivery flavor here sends them.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from casem.domain.errors import InvalidInput
from casem.domain.events import DomainEvent, EventRecorder, utcnow
from casem.domain.search_query import (
    And,
    Field,
    MatchAll,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    Text,
    normalize_field_value,
    parse_query,
)

# -- triggers ------------------------------------------------------------------------------------

CASE_CREATED = "CASE_CREATED"
STATUS_TRANSITIONED = "STATUS_TRANSITIONED"
ATTRIBUTE_VALUE_CHANGED = "ATTRIBUTE_VALUE_CHANGED"
EVENT_CORRELATION_SIGNAL_CORRELATED = "EVENT_CORRELATION_SIGNAL_CORRELATED"
# casem extensions (the model's trigger type is a free string): the common cases without a field.
PRIORITY_CHANGED = "PRIORITY_CHANGED"
CASE_ASSIGNED = "CASE_ASSIGNED"
COMMENT_ADDED = "COMMENT_ADDED"
# casem extensions: the system's notices (a `notification.requested` with this reason) sent to a rule's recipients.
DUE_DATE_REMINDER = "DUE_DATE_REMINDER"
SLA_BREACHED = "SLA_BREACHED"
NOTICE_REASONS = {DUE_DATE_REMINDER: "due_date_reminder", SLA_BREACHED: "sla_breached"}
NOTICE_EVENT = "notification.requested"

TRIGGER_TYPES = frozenset(
    {
        CASE_CREATED,
        STATUS_TRANSITIONED,
        ATTRIBUTE_VALUE_CHANGED,
        EVENT_CORRELATION_SIGNAL_CORRELATED,  # accepted for compatibility; casem correlates no signals
        PRIORITY_CHANGED,
        CASE_ASSIGNED,
        COMMENT_ADDED,
        DUE_DATE_REMINDER,
        SLA_BREACHED,
    }
)
TRIGGER_DATA_KEYS = frozenset(
    {"change_type", "field", "from_status", "from_status_name", "to_status", "to_status_name"}
)
CHANGE_TYPES = frozenset({"added", "removed", "changed"})

# ATTRIBUTE_VALUE_CHANGED fields that are case fields, and the event that changes each.
FIELD_EVENTS: dict[str, tuple[str, ...]] = {
    "status": ("case.status_changed",),
    "priority": ("case.priority_changed",),
    "assignee": ("case.assigned", "case.unassigned"),
    "title": ("case.title_changed",),
    "description": ("case.description_changed",),
    "due_date": ("case.due_date_changed",),
    "resolved_reason": ("case.resolved_reason_changed",),
}
FIELD_CHANGE_KEY = {"assignee": "assignee_id"}
ATTRIBUTE_EVENTS = ("case.attributes_changed", "case.custom_attributes_changed")

# Every event a rule can fire on: the notification-rules flavor declares exactly these.
RULE_EVENTS = frozenset(
    {"case.created", "case.comment_added", *ATTRIBUTE_EVENTS, *(e for evs in FIELD_EVENTS.values() for e in evs)}
)

# -- recipients ----------------------------------------------------------------------------------

EMAIL, SLACK, MSTEAMS, WEBHOOK = "email", "slack", "msteams", "webhook"
CHANNELS = (EMAIL, SLACK, MSTEAMS, WEBHOOK)
RECIPIENT_CHANNELS = {"EMAIL": EMAIL, "SLACK_CHANNEL": SLACK, "MS_TEAMS_CHANNEL": MSTEAMS, "HTTP": WEBHOOK}
RECIPIENT_TYPES = frozenset({*RECIPIENT_CHANNELS, "PAGERDUTY_SERVICE"})
RECIPIENT_DATA_KEYS = frozenset(
    {
        "channel",
        "channel_id",
        "channel_name",
        "connector_name",
        "email",
        "name",
        "service_name",
        "team_id",
        "team_name",
        "tenant_id",
        "tenant_name",
        "workspace",
        "workspace_id",
    }
)
EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")

# Kinds of named outgoing endpoints (an org's webhooks and Teams connectors), referenced by recipients.
ENDPOINT_KINDS = {"HTTP": WEBHOOK, "MS_TEAMS_CHANNEL": MSTEAMS}


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def endpoint_name(recipient: Mapping[str, Any]) -> str | None:
    """The org endpoint a webhook or Teams recipient names (HTTP: `name`; Teams: connector, else channel)."""
    data = recipient.get("data") or {}
    if recipient.get("type") == "HTTP":
        return _str(data, "name")
    return _str(data, "connector_name") or _str(data, "channel_name")


def validate_triggers(triggers: Any, pointer: str = "/data/attributes/triggers") -> list[dict[str, Any]]:
    if not isinstance(triggers, list) or not triggers:
        raise InvalidInput("triggers must be a non-empty list", pointer)
    cleaned = []
    for i, trigger in enumerate(triggers):
        where = f"{pointer}/{i}"
        kind = trigger.get("type") if isinstance(trigger, dict) else None
        if kind not in TRIGGER_TYPES:
            raise InvalidInput(f"trigger type must be one of {', '.join(sorted(TRIGGER_TYPES))}", f"{where}/type")
        data = trigger.get("data") or {}
        if not isinstance(data, dict) or set(data) - TRIGGER_DATA_KEYS:
            raise InvalidInput(f"trigger data may only hold {', '.join(sorted(TRIGGER_DATA_KEYS))}", f"{where}/data")
        if not all(isinstance(v, str) for v in data.values()):
            raise InvalidInput("trigger data values must be strings", f"{where}/data")
        if "change_type" in data and data["change_type"] not in CHANGE_TYPES:
            raise InvalidInput("change_type must be added, removed or changed", f"{where}/data/change_type")
        cleaned.append({"type": kind, "data": dict(data)})
    return cleaned


def validate_recipients(recipients: Any, pointer: str = "/data/attributes/recipients") -> list[dict[str, Any]]:
    if not isinstance(recipients, list) or not recipients:
        raise InvalidInput("recipients must be a non-empty list", pointer)
    cleaned = []
    for i, recipient in enumerate(recipients):
        where = f"{pointer}/{i}"
        kind = recipient.get("type") if isinstance(recipient, dict) else None
        if kind not in RECIPIENT_TYPES:
            raise InvalidInput(f"recipient type must be one of {', '.join(sorted(RECIPIENT_TYPES))}", f"{where}/type")
        data = recipient.get("data") or {}
        if not isinstance(data, dict) or set(data) - RECIPIENT_DATA_KEYS:
            raise InvalidInput("recipient data has unknown members", f"{where}/data")
        if not all(isinstance(v, str) for v in data.values()):
            raise InvalidInput("recipient data values must be strings", f"{where}/data")
        if kind == "EMAIL" and not EMAIL_RE.match(data.get("email") or ""):
            raise InvalidInput("an EMAIL recipient needs a valid data.email", f"{where}/data/email")
        if kind == "SLACK_CHANNEL" and not (_str(data, "channel_id") or _str(data, "channel")):
            raise InvalidInput("a SLACK_CHANNEL recipient needs data.channel or data.channel_id", f"{where}/data")
        if kind == "PAGERDUTY_SERVICE" and not _str(data, "service_name"):
            raise InvalidInput("a PAGERDUTY_SERVICE recipient needs data.service_name", f"{where}/data")
        if kind in ENDPOINT_KINDS and not endpoint_name({"type": kind, "data": data}):
            need = "data.name" if kind == "HTTP" else "data.connector_name or data.channel_name"
            raise InvalidInput(f"a {kind} recipient needs {need} (the endpoint it is sent to)", f"{where}/data")
        cleaned.append({"type": kind, "data": dict(data)})
    return cleaned


def validate_query(query: Any, pointer: str = "/data/attributes/query") -> str:
    if not isinstance(query, str):
        raise InvalidInput("query must be a string", pointer)
    try:
        parse_query(query)
    except QuerySyntaxError as exc:
        raise InvalidInput(str(exc), pointer) from None
    return query


@dataclass(eq=False)
class NotificationRule:
    id: str
    org_id: str
    project_id: str
    triggers: list[dict[str, Any]]
    recipients: list[dict[str, Any]]
    query: str = ""
    is_enabled: bool = True
    created_by_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None


# -- matching ------------------------------------------------------------------------------------


def _emptyish(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _change_type(old: Any, new: Any) -> str:
    if _emptyish(old):
        return "added"
    return "removed" if _emptyish(new) else "changed"


def _status_matches(wanted_id: str | None, wanted_name: str | None, actual: Any) -> bool:
    wanted = wanted_id or wanted_name
    return wanted is None or normalize_field_value("status", wanted) == str(actual)


def trigger_matches(trigger: Mapping[str, Any], event_type: str, data: Mapping[str, Any]) -> bool:
    """Whether one trigger fires on one case event (`data` is the event's data)."""
    kind, spec = trigger["type"], trigger.get("data") or {}
    changes: dict[str, Any] = data.get("changes") or {}
    if kind == CASE_CREATED:
        return event_type == "case.created"
    if kind == PRIORITY_CHANGED:
        return event_type == "case.priority_changed"
    if kind == CASE_ASSIGNED:
        return event_type == "case.assigned"
    if kind == COMMENT_ADDED:
        return event_type == "case.comment_added"
    if kind in NOTICE_REASONS:
        return event_type == NOTICE_EVENT and data.get("reason") == NOTICE_REASONS[kind]
    if kind == STATUS_TRANSITIONED:
        if event_type != "case.status_changed":
            return False
        status = changes.get("status") or {}
        return _status_matches(spec.get("from_status"), spec.get("from_status_name"), status.get("old")) and (
            _status_matches(spec.get("to_status"), spec.get("to_status_name"), status.get("new"))
        )
    if kind == ATTRIBUTE_VALUE_CHANGED:
        return _attribute_change(spec, event_type, changes)
    return False  # EVENT_CORRELATION_SIGNAL_CORRELATED: no casem event is a correlated signal


def _attribute_change(spec: Mapping[str, Any], event_type: str, changes: Mapping[str, Any]) -> bool:
    name = spec.get("field")
    wanted = spec.get("change_type")
    pairs: list[tuple[Any, Any]] = []
    if name is None:  # any field or attribute change
        if event_type in ATTRIBUTE_EVENTS or any(event_type in evs for evs in FIELD_EVENTS.values()):
            pairs = [(c.get("old"), c.get("new")) for c in changes.values()]
    elif name in FIELD_EVENTS:
        if event_type in FIELD_EVENTS[name]:
            change = changes.get(FIELD_CHANGE_KEY.get(name, name)) or {}
            pairs = [(change.get("old"), change.get("new"))]
    elif event_type in ATTRIBUTE_EVENTS:
        # A case attribute or custom attribute key: compare that key's values before and after.
        change = changes.get("attributes") or changes.get("custom_attributes") or {}
        old, new = (change.get("old") or {}).get(name), (change.get("new") or {}).get(name)
        if old != new:
            pairs = [(old, new)]
    return any(old != new and (wanted is None or _change_type(old, new) == wanted) for old, new in pairs)


def rule_fires(rule: NotificationRule, event_type: str, data: Mapping[str, Any]) -> bool:
    return rule.is_enabled and any(trigger_matches(t, event_type, data) for t in rule.triggers)


@dataclass(frozen=True)
class CaseView:
    """What a rule query and a rendered notification see of a case."""

    id: str
    key: str
    title: str
    description: str
    status: str
    priority: str
    project_id: str
    project_key: str
    type_id: str
    type_name: str | None
    assignee_id: str | None
    assignee_email: str | None
    attributes: dict[str, list[str]]
    archived: bool


def query_matches(query: str, case: CaseView) -> bool:
    return _matches(parse_query(query or ""), case)


def _matches(node: Node, case: CaseView) -> bool:
    if isinstance(node, MatchAll):
        return True
    if isinstance(node, Not):
        return not _matches(node.child, case)
    if isinstance(node, And):
        return all(_matches(c, case) for c in node.children)
    if isinstance(node, Or):
        return any(_matches(c, case) for c in node.children)
    if isinstance(node, Text):
        haystack = " ".join((case.title, case.description, case.key)).casefold()
        return node.value.casefold() in haystack
    assert isinstance(node, Field)
    value = normalize_field_value(node.name, node.value).casefold()
    candidates: list[str | None]
    match node.name:
        case "status":
            candidates = [case.status]
        case "priority":
            candidates = [case.priority]
        case "project":
            candidates = [case.project_key, case.project_id]
        case "assignee":
            candidates = [case.assignee_id, case.assignee_email]
        case "type":
            candidates = [case.type_id, case.type_name]
        case "key":
            candidates = [case.key]
        case "archived":
            candidates = [str(case.archived).lower()]
        case _:
            candidates = list(case.attributes.get(node.name, []))
    return any(c is not None and c.casefold() == value for c in candidates)


# -- rendering -----------------------------------------------------------------------------------

_SUBJECTS = {
    "case.created": "{key} created: {title}",
    "case.status_changed": "{key} status changed from {old} to {new}",
    "case.priority_changed": "{key} priority changed from {old} to {new}",
    "case.assigned": "{key} was assigned",
    "case.unassigned": "{key} was unassigned",
    "case.title_changed": "{key} was renamed to {new}",
    "case.description_changed": "{key} description was updated",
    "case.attributes_changed": "{key} attributes changed",
    "case.custom_attributes_changed": "{key} custom attributes changed",
    "case.due_date_changed": "{key} due date changed to {new}",
    "case.resolved_reason_changed": "{key} resolution changed to {new}",
    "case.archived": "{key} was archived",
    "case.unarchived": "{key} was unarchived",
    "case.moved": "{key} moved to another project",
    "case.comment_added": "New comment on {key}",
    "case.watcher_added": "{key}: a watcher was added",
}
_MAIN_FIELD = {
    "case.status_changed": "status",
    "case.priority_changed": "priority",
    "case.title_changed": "title",
    "case.due_date_changed": "due_date",
    "case.resolved_reason_changed": "resolved_reason",
}


def summarize(event_type: str, data: Mapping[str, Any], key: str, title: str) -> str:
    """One line about a case event, for inbox entries and message subjects."""
    if event_type == NOTICE_EVENT and data.get("summary"):
        return str(data["summary"])  # a reminder or SLA notice says it all
    change = (data.get("changes") or {}).get(_MAIN_FIELD.get(event_type, ""), {})
    template = _SUBJECTS.get(event_type, "{key} changed ({event})")
    return template.format(
        key=key, title=title, old=change.get("old") or "none", new=change.get("new") or "none", event=event_type
    )


# Buttons on Slack notifications; case-chat-interactions' Slack bridge acts on them as the clicking user.
SLACK_BUTTONS = (("casem_acknowledge", "Acknowledge"), ("casem_assign_to_me", "Assign to me"), ("casem_close", "Close"))


def slack_case_buttons(case_id: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": f"casem_case:{case_id}",
        "elements": [
            {"type": "button", "action_id": action, "text": {"type": "plain_text", "text": label}, "value": case_id}
            for action, label in SLACK_BUTTONS
        ],
    }


def render(
    channel: str, event_type: str, data: Mapping[str, Any], case: CaseView, case_url: str, event_meta: dict[str, Any]
) -> dict[str, Any]:
    """The payload one channel is sent for a case event (the delivery flavors only transport it)."""
    subject = summarize(event_type, data, case.key, case.title)
    lines = [subject, f"Title: {case.title}", f"Status: {case.status}  Priority: {case.priority}"]
    if event_type == "case.comment_added" and data.get("message"):
        lines.append(f"Comment: {data['message']}")
    lines.append(case_url)
    text = "\n".join(lines)
    if channel == EMAIL:
        return {"subject": f"[casem] {subject}", "text": text}
    if channel == SLACK:
        return {
            "text": subject,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*<{case_url}|{case.key}>* {subject}"}},
                {
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": f"Status: {case.status} · Priority: {case.priority}"}],
                },
                slack_case_buttons(case.id),
            ],
        }
    if channel == MSTEAMS:
        # Office 365 connector MessageCard, what a Teams incoming webhook accepts.
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": subject,
            "themeColor": "632CA6",
            "title": subject,
            "sections": [
                {
                    "activityTitle": case.title,
                    "facts": [
                        {"name": "Case", "value": case.key},
                        {"name": "Status", "value": case.status},
                        {"name": "Priority", "value": case.priority},
                    ],
                    "text": data.get("message") or "",
                }
            ],
            "potentialAction": [
                {"@type": "OpenUri", "name": "Open case", "targets": [{"os": "default", "uri": case_url}]}
            ],
        }
    # Generic webhook: a stable JSON document about the event and the case.
    return {
        "event": {**event_meta, "type": event_type, "data": dict(data)},
        "case": {
            "id": case.id,
            "key": case.key,
            "title": case.title,
            "status": case.status,
            "priority": case.priority,
            "project_id": case.project_id,
            "assignee_id": case.assignee_id,
            "url": case_url,
        },
        "summary": subject,
    }


# -- deliveries ----------------------------------------------------------------------------------

PENDING, SENT, FAILED = "pending", "sent", "failed"
DELIVERY_REQUESTED = "notification.delivery_requested"


@dataclass(eq=False)
class Delivery(EventRecorder):
    """One message on one channel to one target. Requesting it records `notification.delivery_requested`,
    which reaches the channel's delivery flavor through the outbox and the relay."""

    id: str
    org_id: str
    rule_id: str | None
    source_event_id: str
    case_id: str | None
    channel: str
    target: dict[str, Any]
    payload: dict[str, Any]
    status: str = PENDING
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    sent_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def request(
        cls,
        *,
        org_id: str,
        rule_id: str | None,
        source_event_id: str,
        case_id: str | None,
        channel: str,
        target: dict[str, Any],
        payload: dict[str, Any],
    ) -> Delivery:
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        delivery = cls(
            id=str(uuid.uuid4()),
            org_id=org_id,
            rule_id=rule_id,
            source_event_id=source_event_id,
            case_id=case_id,
            channel=channel,
            target=target,
            payload=payload,
        )
        delivery.record(
            DomainEvent(
                type=DELIVERY_REQUESTED,
                org_id=org_id,
                actor_id=None,
                subject_type="notification_delivery",
                subject_id=delivery.id,
                case_id=case_id,  # keyed by case on the bus: a case's notifications keep their order
                data={
                    "delivery_id": delivery.id,
                    "channel": channel,
                    "target": target,
                    "payload": payload,
                    "rule_id": rule_id,
                    "source_event_id": source_event_id,
                },
            )
        )
        return delivery

    def failed(self, error: str) -> None:
        self.status = FAILED
        self.attempts += 1
        self.last_error = error[:2000]
        self.updated_at = utcnow()

    def sent(self) -> None:
        self.status = SENT
        self.attempts += 1
        self.last_error = None
        self.sent_at = self.updated_at = utcnow()
