"""Case automation: project automation rules (Datadog's CaseAutomationRule), SLA targets, due-date reminder
lead times and duplicate detection settings, and the pure logic the automation flavors apply.

An automation rule has one trigger (the case event it listens for, optionally narrowed by trigger data)
and one action. Datadog's actions are EXECUTE_WORKFLOW and ASSIGN_AGENT; casem adds the common case
changes (ASSIGN_USER, SET_PRIORITY, SET_STATUS, ADD_COMMENT), which the automation-rules flavor applies
through the same application services as the API. Trigger and action types are free strings on the wire,
but the official client's enums only know Datadog's values: use the extensions over plain HTTP.

Loop guard: an action is taken with the rule's id as actor, so (1) a rule never fires on an event whose
actor is itself; (2) every event an action records is remembered with its chain depth, and a rule fired by
such an event acts one step deeper; past MAX_CHAIN_DEPTH it is held back (a `skipped_depth` run). A
person's change starts a new chain at depth 1. Together these end ping-pong between rules (A's comment
fires B, whose comment fires A, ...) after at most MAX_CHAIN_DEPTH automated steps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from casem.domain import chat
from casem.domain.cases import Priority, Status
from casem.domain.errors import InvalidInput
from casem.domain.events import DomainEvent, utcnow
from casem.domain.timeline import validate_comment

ATTRS = "/data/attributes"
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# -- rules -------------------------------------------------------------------------------------------------

ENABLED, DISABLED = "ENABLED", "DISABLED"
STATES = frozenset({ENABLED, DISABLED})
NAME_MAX = 255
MAX_CHAIN_DEPTH = 3  # rule → rule → rule; a fourth automated step in one chain is held back

CASE_CREATED = "CASE_CREATED"
STATUS_TRANSITIONED = "STATUS_TRANSITIONED"
ATTRIBUTE_VALUE_CHANGED = "ATTRIBUTE_VALUE_CHANGED"
COMMENT_ADDED = "COMMENT_ADDED"
PRIORITY_CHANGED = "PRIORITY_CHANGED"  # casem extension: any change of priority
# casem extensions for chat (casem/domain/chat.py): an excerpt reached the case's timeline, narrowed by a
# `keyword` it mentions, the `case_status_name` the case had then and the `platform`; a chat user acted on
# the case, narrowed by `chat_action` (ACKNOWLEDGE, CLOSE, ...) and `platform`.
CHAT_EXCERPT_ADDED = "CHAT_EXCERPT_ADDED"
CHAT_ACTION = "CHAT_ACTION"
# Accepted for compatibility; casem records no such events, so they never fire.
NEVER_FIRING = frozenset({"EVENT_CORRELATION_SIGNAL_CORRELATED", "CASE_REVIEW_APPROVED"})
TRIGGER_TYPES = frozenset(
    {
        CASE_CREATED,
        STATUS_TRANSITIONED,
        ATTRIBUTE_VALUE_CHANGED,
        COMMENT_ADDED,
        PRIORITY_CHANGED,
        CHAT_EXCERPT_ADDED,
        CHAT_ACTION,
    }
)
CHAT_TRIGGER_DATA_KEYS = frozenset({"keyword", "case_status_name", "platform", "chat_action"})
TRIGGER_DATA_KEYS = frozenset(
    {"approval_type", "change_type", "field", "from_status_name", "to_status_name", *CHAT_TRIGGER_DATA_KEYS}
)
CHANGE_TYPES = frozenset({"VALUE_ADDED", "VALUE_DELETED", "ANY_CHANGES"})

EXECUTE_WORKFLOW = "EXECUTE_WORKFLOW"
ASSIGN_AGENT = "ASSIGN_AGENT"
ASSIGN_USER = "ASSIGN_USER"
SET_PRIORITY = "SET_PRIORITY"
SET_STATUS = "SET_STATUS"
ADD_COMMENT = "ADD_COMMENT"
# The data member each action requires.
ACTION_REQUIRES: dict[str, tuple[str, ...]] = {
    EXECUTE_WORKFLOW: ("handle",),
    ASSIGN_AGENT: ("agent_type", "assigned_agent_id"),
    ASSIGN_USER: ("assignee_id",),
    SET_PRIORITY: ("priority",),
    SET_STATUS: ("status_name",),
    ADD_COMMENT: ("comment",),
}
ACTION_DATA_KEYS = frozenset(k for keys in ACTION_REQUIRES.values() for k in keys)
# Actions the caseworker carries out later: the flavor records `case.workflow_requested` for them.
WORKFLOW_ACTIONS = frozenset({EXECUTE_WORKFLOW, ASSIGN_AGENT})

# ATTRIBUTE_VALUE_CHANGED fields that are case fields: the event that changes each and its change key.
CASE_FIELDS: dict[str, tuple[str, str]] = {
    "status": ("case.status_changed", "status"),
    "priority": ("case.priority_changed", "priority"),
    "assignee": ("case.assigned", "assignee_id"),
    "title": ("case.title_changed", "title"),
    "description": ("case.description_changed", "description"),
    "due_date": ("case.due_date_changed", "due_date"),
    "resolved_reason": ("case.resolved_reason_changed", "resolved_reason"),
}
ATTRIBUTE_EVENTS = {"case.attributes_changed": "attributes", "case.custom_attributes_changed": "custom_attributes"}
TRIGGER_EVENTS = frozenset(
    {
        "case.created",
        "case.comment_added",
        "case.unassigned",
        chat.EXCERPT_ADDED,
        chat.CHAT_ACTION,
        *ATTRIBUTE_EVENTS,
        *(e for e, _ in CASE_FIELDS.values()),
    }
)


@dataclass
class AutomationRule:
    id: str
    org_id: str
    project_id: str
    name: str
    state: str
    trigger: dict[str, Any]
    action: dict[str, Any]
    created_by_id: str | None = None
    modified_by_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None

    @property
    def enabled(self) -> bool:
        return self.state == ENABLED


def validate_name(name: Any, pointer: str = f"{ATTRS}/name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name must be a non-empty string", pointer)
    if len(name) > NAME_MAX:
        raise InvalidInput(f"name is {len(name)} characters long; the limit is {NAME_MAX}", pointer)
    return name


def validate_state(state: Any, pointer: str = f"{ATTRS}/state") -> str:
    if state not in STATES:
        raise InvalidInput("state must be ENABLED or DISABLED", pointer)
    return str(state)


def status_of(name: Any, pointer: str) -> str:
    """A status named the way Datadog's UI writes it ("In Progress") or as casem stores it (IN_PROGRESS)."""
    normalized = re.sub(r"[\s-]+", "_", name.strip()).upper() if isinstance(name, str) else name
    try:
        return Status(normalized).value
    except ValueError:
        raise InvalidInput(f"unknown status {name!r}: must be one of OPEN, IN_PROGRESS, CLOSED", pointer) from None


def validate_trigger(trigger: Any, pointer: str = f"{ATTRS}/trigger") -> dict[str, Any]:
    kind = trigger.get("type") if isinstance(trigger, dict) else None
    if kind not in TRIGGER_TYPES | NEVER_FIRING:
        allowed = ", ".join(sorted(TRIGGER_TYPES | NEVER_FIRING))
        raise InvalidInput(f"trigger type must be one of {allowed}", f"{pointer}/type")
    data = trigger.get("data") or {}
    if not isinstance(data, dict) or set(data) - TRIGGER_DATA_KEYS:
        raise InvalidInput(f"trigger data may only hold {', '.join(sorted(TRIGGER_DATA_KEYS))}", f"{pointer}/data")
    if not all(isinstance(v, str) for v in data.values()):
        raise InvalidInput("trigger data values must be strings", f"{pointer}/data")
    for key in ("from_status_name", "to_status_name"):
        if key in data:
            status_of(data[key], f"{pointer}/data/{key}")
    if "change_type" in data and data["change_type"] not in CHANGE_TYPES:
        raise InvalidInput(
            f"change_type must be one of {', '.join(sorted(CHANGE_TYPES))}", f"{pointer}/data/change_type"
        )
    if kind == ATTRIBUTE_VALUE_CHANGED and not (data.get("field") or "").strip():
        raise InvalidInput("an ATTRIBUTE_VALUE_CHANGED trigger needs data.field", f"{pointer}/data/field")
    _validate_chat_trigger(kind, data, f"{pointer}/data")
    return {"type": kind, "data": dict(data)}


def _validate_chat_trigger(kind: str, data: Mapping[str, Any], pointer: str) -> None:
    chat_keys = set(data) & CHAT_TRIGGER_DATA_KEYS
    allowed = {
        CHAT_EXCERPT_ADDED: {"keyword", "case_status_name", "platform"},
        CHAT_ACTION: {"chat_action", "platform"},
    }
    extra = chat_keys - allowed.get(kind, set())
    if extra:
        raise InvalidInput(f"a {kind} trigger does not take data.{sorted(extra)[0]}", f"{pointer}/{sorted(extra)[0]}")
    if "keyword" in data:
        chat.validate_keyword(data["keyword"], f"{pointer}/keyword")
    if "case_status_name" in data:
        status_of(data["case_status_name"], f"{pointer}/case_status_name")
    if "platform" in data:
        chat.validate_platform(data["platform"], f"{pointer}/platform")
    if "chat_action" in data and data["chat_action"] not in chat.ACTIONS:
        raise InvalidInput(f"chat_action must be one of {', '.join(chat.ACTIONS)}", f"{pointer}/chat_action")


def validate_action(action: Any, pointer: str = f"{ATTRS}/action") -> dict[str, Any]:
    kind = action.get("type") if isinstance(action, dict) else None
    if kind not in ACTION_REQUIRES:
        raise InvalidInput(f"action type must be one of {', '.join(sorted(ACTION_REQUIRES))}", f"{pointer}/type")
    data = action.get("data") or {}
    if not isinstance(data, dict) or set(data) - ACTION_DATA_KEYS:
        raise InvalidInput(f"action data may only hold {', '.join(sorted(ACTION_DATA_KEYS))}", f"{pointer}/data")
    for key in ACTION_REQUIRES[kind]:
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"a {kind} action needs data.{key}", f"{pointer}/data/{key}")
    where = f"{pointer}/data"
    if kind == ASSIGN_USER and not UUID.match(data["assignee_id"]):
        raise InvalidInput(f"assignee_id {data['assignee_id']!r} is not a valid UUID", f"{where}/assignee_id")
    if kind == SET_PRIORITY and data["priority"] not in Priority.__members__:
        raise InvalidInput(f"priority must be one of {', '.join(Priority.__members__)}", f"{where}/priority")
    if kind == SET_STATUS:
        data = {**data, "status_name": status_of(data["status_name"], f"{where}/status_name")}
    if kind == ADD_COMMENT:
        validate_comment(data["comment"], f"{where}/comment")
    if kind == ASSIGN_USER:
        data = {**data, "assignee_id": data["assignee_id"].lower()}
    return {"type": kind, "data": dict(data)}


def _values(value: Any) -> set[str]:
    """A field's value as a set, so scalars and multi-valued attributes compare the same way."""
    if isinstance(value, dict) and "value" in value:
        value = value["value"]  # a custom attribute is stored as {type, is_multi, value}: compare the value
    if value is None or value == "" or value == []:
        return set()
    if isinstance(value, list):
        return {str(v) for v in value}
    return {str(value)}


def _changed(change_type: str, old: Any, new: Any) -> bool:
    before, after = _values(old), _values(new)
    if change_type == "VALUE_ADDED":
        return bool(after - before)
    if change_type == "VALUE_DELETED":
        return bool(before - after)
    return before != after


def trigger_fires(trigger: Mapping[str, Any], event_type: str, data: Mapping[str, Any]) -> bool:
    """Whether a case event fires a rule's trigger (data narrows: every member given must match)."""
    kind, spec = trigger.get("type"), trigger.get("data") or {}
    changes = data.get("changes") or {}
    if kind == CASE_CREATED:
        return event_type == "case.created"
    if kind == COMMENT_ADDED:
        return event_type == "case.comment_added"
    if kind == PRIORITY_CHANGED:
        return event_type == "case.priority_changed"
    if kind == CHAT_EXCERPT_ADDED:
        return event_type == chat.EXCERPT_ADDED and _chat_excerpt_matches(spec, data)
    if kind == CHAT_ACTION:
        if event_type != chat.CHAT_ACTION or ("chat_action" in spec and spec["chat_action"] != data.get("action")):
            return False
        return "platform" not in spec or spec["platform"] == (data.get("conversation") or {}).get("platform")
    if kind == STATUS_TRANSITIONED:
        if event_type != "case.status_changed":
            return False
        change = changes.get("status") or {}
        for key, side in (("from_status_name", "old"), ("to_status_name", "new")):
            if key in spec and status_of(spec[key], key) != change.get(side):
                return False
        return True
    if kind == ATTRIBUTE_VALUE_CHANGED:
        name, change_type = spec.get("field", ""), spec.get("change_type", "ANY_CHANGES")
        if name in CASE_FIELDS:
            wanted, key = CASE_FIELDS[name]
            events = {wanted, "case.unassigned"} if name == "assignee" else {wanted}
            if event_type not in events:
                return False
            change = changes.get(key) or {}
            return _changed(change_type, change.get("old"), change.get("new"))
        if event_type not in ATTRIBUTE_EVENTS:
            return False
        change = changes.get(ATTRIBUTE_EVENTS[event_type]) or {}
        old, new = change.get("old") or {}, change.get("new") or {}
        return _changed(change_type, old.get(name), new.get(name))
    return False  # NEVER_FIRING kinds


def _chat_excerpt_matches(spec: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    if "platform" in spec and spec["platform"] != (data.get("conversation") or {}).get("platform"):
        return False
    if "case_status_name" in spec and status_of(spec["case_status_name"], "case_status_name") != data.get(
        "case_status"
    ):
        return False
    return "keyword" not in spec or chat.mentions(str(data.get("said") or ""), spec["keyword"])


# -- SLA targets -------------------------------------------------------------------------------------------

ACKNOWLEDGE, CLOSE = "acknowledge", "close"
BREACH_KINDS = (ACKNOWLEDGE, CLOSE)
SLA_TARGET_MAX_SECONDS = 365 * 24 * 3600
# Events that count as someone acknowledging a case (its first response), when a person makes them.
ACKNOWLEDGING_EVENTS = frozenset(
    {"case.comment_added", "case.assigned", "case.status_changed", "case.priority_changed"}
)


def _seconds(value: Any, pointer: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= SLA_TARGET_MAX_SECONDS:
        raise InvalidInput(f"must be a whole number of seconds from 1 to {SLA_TARGET_MAX_SECONDS}, or null", pointer)
    return value


def validate_sla(targets: Any, pointer: str = f"{ATTRS}/targets") -> dict[str, dict[str, int | None]]:
    """Per priority: seconds from creation to acknowledge and to close (null: no target for that kind)."""
    if not isinstance(targets, dict):
        raise InvalidInput("targets must be an object keyed by priority", pointer)
    cleaned: dict[str, dict[str, int | None]] = {}
    for priority, target in targets.items():
        if priority not in Priority.__members__:
            raise InvalidInput(f"priority must be one of {', '.join(Priority.__members__)}", f"{pointer}/{priority}")
        if not isinstance(target, dict) or set(target) - {"acknowledge_seconds", "close_seconds"}:
            raise InvalidInput("a target holds acknowledge_seconds and close_seconds", f"{pointer}/{priority}")
        cleaned[priority] = {
            f"{kind}_seconds": _seconds(target.get(f"{kind}_seconds"), f"{pointer}/{priority}/{kind}_seconds")
            for kind in BREACH_KINDS
        }
    return cleaned


def sla_deadlines(
    targets: Mapping[str, Mapping[str, int | None]] | None, priority: str, started_at: datetime
) -> dict[str, datetime | None]:
    """When a case of this priority, opened at `started_at`, must be acknowledged and closed."""
    target = (targets or {}).get(priority) or {}
    return {
        kind: started_at + timedelta(seconds=seconds) if (seconds := target.get(f"{kind}_seconds")) else None
        for kind in BREACH_KINDS
    }


# -- due-date reminders ------------------------------------------------------------------------------------

DEFAULT_LEAD_SECONDS = (24 * 3600, 0)  # a day before, and at the due date
MAX_LEADS = 10


def validate_reminders(lead_seconds: Any, pointer: str = f"{ATTRS}/lead_times_seconds") -> list[int]:
    """Lead times before the due date (0 is "at the due date"); distinct, largest first."""
    if not isinstance(lead_seconds, list) or len(lead_seconds) > MAX_LEADS:
        raise InvalidInput(f"lead_times_seconds must be a list of at most {MAX_LEADS} numbers", pointer)
    for i, value in enumerate(lead_seconds):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SLA_TARGET_MAX_SECONDS:
            raise InvalidInput(f"lead times are whole seconds from 0 to {SLA_TARGET_MAX_SECONDS}", f"{pointer}/{i}")
    return sorted(set(lead_seconds), reverse=True)


def due_instant(due: date) -> datetime:
    """A case is due at the start (00:00 UTC) of its due date: the "at" reminder says it is due today."""
    return datetime.combine(due, time(0), tzinfo=UTC)


# -- duplicate detection -----------------------------------------------------------------------------------

DEFAULT_THRESHOLD = 0.6
DEFAULT_WINDOW_SECONDS = 7 * 24 * 3600
ATTRIBUTE_WEIGHT = 0.2  # bonus for overlapping attributes (their Jaccard), on top of the title similarity
STOPWORDS = frozenset({"a", "an", "the", "on", "in", "of", "for", "to", "and", "or", "is", "at", "with", "from"})
TOKEN = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class DuplicateSettings:
    enabled: bool = True
    threshold: float = DEFAULT_THRESHOLD
    window_seconds: int = DEFAULT_WINDOW_SECONDS
    # Merge each suggested duplicate into its candidate at once (the caseworker's merge workflow).
    auto_merge: bool = False


def validate_duplicates(values: Mapping[str, Any], pointer: str = ATTRS) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for flag in ("enabled", "auto_merge"):
        if flag in values:
            if not isinstance(values[flag], bool):
                raise InvalidInput(f"{flag} must be a boolean", f"{pointer}/{flag}")
            cleaned[flag] = values[flag]
    if "threshold" in values:
        threshold = values["threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
            raise InvalidInput("threshold must be a number in (0, 1]", f"{pointer}/threshold")
        cleaned["threshold"] = float(threshold)
    if "window_seconds" in values:
        window = values["window_seconds"]
        if isinstance(window, bool) or not isinstance(window, int) or not 60 <= window <= SLA_TARGET_MAX_SECONDS:
            raise InvalidInput(
                f"window_seconds must be from 60 to {SLA_TARGET_MAX_SECONDS}", f"{pointer}/window_seconds"
            )
        cleaned["window_seconds"] = window
    return cleaned


def title_tokens(title: str) -> frozenset[str]:
    """A title's normalized words: lower case, alphanumeric runs, without stop words."""
    return frozenset(t for t in TOKEN.findall(title.lower()) if t not in STOPWORDS)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def _pairs(attributes: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {(k, str(v)) for k, values in (attributes or {}).items() for v in (values or [])}


@dataclass(frozen=True)
class Similarity:
    title: float
    attributes: float
    shared: tuple[tuple[str, str], ...]
    conflicting: bool  # a key both cases set, with no value in common

    @property
    def score(self) -> float:
        # Overlapping attributes only add confidence: cases without attributes are scored on their titles.
        return round(min(1.0, self.title + ATTRIBUTE_WEIGHT * self.attributes), 3)


def similarity(
    title_a: str, attributes_a: Mapping[str, Any], title_b: str, attributes_b: Mapping[str, Any]
) -> Similarity:
    pairs_a, pairs_b = _pairs(attributes_a), _pairs(attributes_b)
    # A key with no values (an empty list) says nothing, so it cannot contradict the other case.
    shared_keys = {k for k, v in (attributes_a or {}).items() if v} & {k for k, v in (attributes_b or {}).items() if v}
    conflicting = any(not {str(v) for v in attributes_a[k]} & {str(v) for v in attributes_b[k]} for k in shared_keys)
    union = pairs_a | pairs_b
    return Similarity(
        title=jaccard(title_tokens(title_a), title_tokens(title_b)),
        attributes=len(pairs_a & pairs_b) / len(union) if union else 0.0,
        shared=tuple(sorted(pairs_a & pairs_b)),
        conflicting=conflicting,
    )


def is_possible_duplicate(sim: Similarity, threshold: float) -> bool:
    """Titles alike enough, and no attribute (service, env, ...) that says they are about different things."""
    return sim.title >= threshold and not sim.conflicting


# -- notification requests ---------------------------------------------------------------------------------

NOTIFICATION_REQUESTED = "notification.requested"


def notification_request(
    *, org_id: str, case_id: str, key: str, reason: str, summary: str, recipients: list[str], source_event_id: str
) -> DomainEvent:
    """A system notice about a case (a reminder, an SLA breach) for the notification channels to deliver.

    Its recipients are the case's assignee; watchers hear of the case event itself through their inbox.
    """
    return DomainEvent(
        type=NOTIFICATION_REQUESTED,
        org_id=org_id,
        actor_id=None,
        subject_id=case_id,
        case_id=case_id,
        data={
            "reason": reason,
            "summary": summary,
            "key": key,
            "recipients": recipients,
            "source_event_id": source_event_id,
        },
    )


def record_with_notice(case: Any, event: DomainEvent, reason: str, summary: str) -> None:
    """Record a system event on the case (its timeline cell) and the notice that tells its assignee."""
    case.record(event)
    case.record(
        notification_request(
            org_id=case.org_id,
            case_id=case.id,
            key=case.key,
            reason=reason,
            summary=summary,
            recipients=[case.assignee_id] if case.assignee_id else [],
            source_event_id=event.id,
        )
    )


SLA_BREACHED = "case.sla_breached"
DUE_DATE_REMINDER = "case.due_date_reminder"


def record_sla_breach(case: Any, *, kind: str, priority: str, due: datetime, started: datetime, now: datetime) -> None:
    """The case missed its time-to-`kind` target: a timeline cell and a notice for its assignee."""
    summary = f"{case.key} breached its {priority} time-to-{kind} target (due {due.isoformat()})"
    event = DomainEvent(
        type=SLA_BREACHED,
        org_id=case.org_id,
        actor_id=None,
        subject_id=case.id,
        case_id=case.id,
        time=now,
        data={
            "kind": kind,
            "priority": priority,
            "due_at": due.isoformat(),
            "target_seconds": int((due - started).total_seconds()),
            "key": case.key,
            "project_id": case.project_id,
            "summary": summary,
        },
    )
    record_with_notice(case, event, "sla_breached", summary)


def reminder_summary(key: str, title: str, due_date: date | None, lead: int) -> str:
    if lead == 0:
        return f"{key} is due today ({due_date}): {title}"
    hours = lead / 3600
    ahead = f"{hours / 24:g} day(s)" if lead % 86400 == 0 else f"{hours:g} hour(s)"
    return f"{key} is due in {ahead} ({due_date}): {title}"


def record_due_date_reminder(case: Any, *, lead_seconds: int, reminder_id: str, now: datetime) -> None:
    """A reminder of the case's due date: a timeline cell (and inbox entries) and a notice for its assignee."""
    summary = reminder_summary(case.key, case.title, case.due_date, lead_seconds)
    event = DomainEvent(
        type=DUE_DATE_REMINDER,
        org_id=case.org_id,
        actor_id=None,
        subject_id=case.id,
        case_id=case.id,
        time=now,
        data={
            "key": case.key,
            "project_id": case.project_id,
            "due_date": case.due_date.isoformat() if case.due_date else None,
            "lead_seconds": lead_seconds,
            "reminder_id": reminder_id,
            "summary": summary,
        },
    )
    record_with_notice(case, event, "due_date_reminder", summary)
