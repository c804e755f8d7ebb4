"""Cases: the central aggregate. Pure Python: no framework, driver or transport."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from casem.domain.errors import InvalidInput
from casem.domain.events import DomainEvent, EventRecorder, utcnow

STANDARD_TYPE_ID = "00000000-0000-0000-0000-000000000001"
STANDARD_TYPE_NAME = "STANDARD"

E = TypeVar("E", bound=StrEnum)

# Events about a case that change none of its fields.
WORKFLOW_REQUESTED = "case.workflow_requested"
DUPLICATE_SUGGESTED = "case.duplicate_suggested"
MERGED = "case.merged"
PURGED = "case.purged"
CREATED = "case.created"
# In a `case.created` event's data: its creator writes the case's search document itself (see `record_opened`).
INDEXED_BY_CREATOR = "indexed_by_creator"
# Why a status change happened, when a rule and not a person made it.
AUTO_CLOSED = "auto_closed_inactive"

TITLE_MAX = 255
DESCRIPTION_MAX = 30_000  # Datadog rejects descriptions past this size.


class Status(StrEnum):
    OPEN = "OPEN"
    IN_PROGRESS = "IN_PROGRESS"
    CLOSED = "CLOSED"

    @property
    def group(self) -> str:
        return f"SG_{self.value}"


class Priority(StrEnum):
    NOT_DEFINED = "NOT_DEFINED"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"
    P5 = "P5"


def parse_enum(enum: type[E], value: Any, pointer: str) -> E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise InvalidInput(f"invalid value {value!r}: must be one of {allowed}", pointer) from None


def validate_title(title: Any, pointer: str = "/data/attributes/title") -> str:
    if not isinstance(title, str) or not title.strip():
        raise InvalidInput("title must be a non-empty string", pointer)
    if len(title) > TITLE_MAX:
        raise InvalidInput(f"title is {len(title)} characters long; the limit is {TITLE_MAX}", pointer)
    return title


def validate_description(description: Any, pointer: str = "/data/attributes/description") -> str:
    if not isinstance(description, str):
        raise InvalidInput("description must be a string", pointer)
    if len(description) > DESCRIPTION_MAX:
        raise InvalidInput(
            f"description is {len(description)} characters long; the limit is {DESCRIPTION_MAX}", pointer
        )
    return description


def validate_attributes(attributes: Any, pointer: str = "/data/attributes/attributes") -> dict[str, list[str]]:
    """Case attributes: a map of string keys to lists of strings (Datadog's CaseObjectAttributes)."""
    if not isinstance(attributes, dict):
        raise InvalidInput("attributes must be an object of string lists", pointer)
    cleaned: dict[str, list[str]] = {}
    for key, values in attributes.items():
        if not key or len(key) > 255:
            raise InvalidInput("attribute keys must be 1 to 255 characters", pointer)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidInput(f"attribute {key!r} must be a list of strings", f"{pointer}/{key}")
        if len(values) > 100 or any(len(v) > 1024 for v in values):
            raise InvalidInput(f"attribute {key!r} has too many or too long values", f"{pointer}/{key}")
        cleaned[key] = list(values)
    return cleaned


def indexed_by_creator(event_type: str, data: Mapping[str, Any]) -> bool:
    """The event is a `case.created` whose creator writes the case's search document itself (case-indexer)."""
    return event_type == CREATED and data.get(INDEXED_BY_CREATOR) is True


@dataclass(eq=False)
class Case(EventRecorder):
    id: str
    org_id: str
    project_id: str
    number: int
    key: str
    title: str
    type_id: str
    created_by_id: str | None
    description: str = ""
    status: str = Status.OPEN.value
    priority: str = Priority.NOT_DEFINED.value
    assignee_id: str | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict)
    custom_attributes: dict[str, Any] = field(default_factory=dict)
    due_date: date | None = None
    resolved_reason: str | None = None
    archived_at: datetime | None = None
    closed_at: datetime | None = None
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None
    modified_by_id: str | None = None
    intake_key: str | None = None
    # Datadog's `jira_issue` / `service_now_ticket` attributes: the link's status and result, as served
    # (kept by casem/domain/integrations.py with the case's link to its remote issue).
    jira_issue: dict[str, Any] | None = None
    service_now_ticket: dict[str, Any] | None = None

    # -- creation -------------------------------------------------------------
    @classmethod
    def open(cls, *, actor_id: str | None, history_imported: bool = False, **fields: Any) -> Case:
        """A new case. `history_imported`: an import brings the case's timeline (its creation cell included),
        so the creation records its event but no timeline cell."""
        case = cls(created_by_id=actor_id, **fields)
        case.record_opened(history_imported=history_imported)
        return case

    def record_opened(self, *, history_imported: bool = False, indexed_by_creator: bool = False) -> None:
        """Record the `case.created` event of this new case (`open` does; so does batch creation, which
        builds its cases without the per-attribute bookkeeping of the mapped constructor). `indexed_by_creator`:
        whoever creates it writes its search document too and answers for it (case-indexer), so the event says
        so and the search-indexing flavor leaves that document alone."""
        data = self.snapshot()
        if history_imported:
            data["imported_history"] = True
        if indexed_by_creator:
            data[INDEXED_BY_CREATOR] = True
        self.record(
            DomainEvent(
                type=CREATED,
                org_id=self.org_id,
                actor_id=self.created_by_id,
                subject_id=self.id,
                case_id=self.id,
                time=self.created_at,
                data=data,
            )
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "project_id": self.project_id,
            "title": self.title,
            "description": self.description,
            "type_id": self.type_id,
            "status": self.status,
            "priority": self.priority,
            "assignee_id": self.assignee_id,
            "attributes": self.attributes,
            "custom_attributes": self.custom_attributes,
            "due_date": self.due_date.isoformat() if self.due_date else None,
            "created_at": self.created_at.isoformat(),
        }

    @property
    def status_group(self) -> str:
        return Status(self.status).group

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    # -- changes --------------------------------------------------------------
    def _change(
        self,
        event_type: str,
        actor_id: str | None,
        changes: dict[str, tuple[Any, Any]],
        extra: dict[str, Any] | None = None,
    ) -> bool:
        """Apply field changes; record one event carrying old and new values (and `extra`, e.g. why the change
        happened). No-op changes record nothing."""
        effective = {name: (old, new) for name, (old, new) in changes.items() if old != new}
        if not effective:
            return False
        now = utcnow()
        for name, (_old, new) in effective.items():
            setattr(self, name, new)
        self.modified_at = now
        self.modified_by_id = actor_id
        data: dict[str, Any] = {
            "changes": {name: {"old": _jsonable(old), "new": _jsonable(new)} for name, (old, new) in effective.items()},
            "key": self.key,
            "project_id": self.project_id,
        }
        data.update(extra or {})
        origin = self.__dict__.get("_origin")
        if origin:
            data["origin"] = origin
        self.record(
            DomainEvent(
                type=event_type,
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.id,
                case_id=self.id,
                time=now,
                data=data,
            )
        )
        return True

    @contextmanager
    def changes_from(self, origin: dict[str, Any]) -> Iterator[Case]:
        """Changes made inside this block came from elsewhere (a Jira issue, a ServiceNow ticket): their events
        carry `origin`, so the timeline says where they came from and no sync sends them back there."""
        self.__dict__["_origin"] = origin
        try:
            yield self
        finally:
            self.__dict__.pop("_origin", None)

    def retitle(self, title: str, actor_id: str | None) -> bool:
        return self._change("case.title_changed", actor_id, {"title": (self.title, validate_title(title))})

    def describe(self, description: str, actor_id: str | None) -> bool:
        new = validate_description(description)
        return self._change("case.description_changed", actor_id, {"description": (self.description, new)})

    def transition(self, status: str, actor_id: str | None) -> bool:
        new = parse_enum(Status, status, "/data/attributes/status").value
        changes: dict[str, tuple[Any, Any]] = {"status": (self.status, new)}
        if new == Status.CLOSED and self.status != Status.CLOSED:
            changes["closed_at"] = (self.closed_at, utcnow())
        elif new != Status.CLOSED and self.closed_at is not None:
            changes["closed_at"] = (self.closed_at, None)
        return self._change("case.status_changed", actor_id, changes)

    def close_for_inactivity(self, inactive_seconds: int, last_activity_at: datetime, limit_text: str) -> bool:
        """The project's auto-close closed the case: nobody touched it for `inactive_seconds`. The status change
        carries why, so its timeline cell says so; a closed case is left alone (idempotent)."""
        if self.status == Status.CLOSED:
            return False
        return self._change(
            "case.status_changed",
            None,
            {"status": (self.status, Status.CLOSED.value), "closed_at": (self.closed_at, utcnow())},
            {
                "reason": AUTO_CLOSED,
                "message": f"closed automatically: no activity for {limit_text} (last activity "
                f"{last_activity_at.isoformat()})",
                "inactive_seconds": inactive_seconds,
                "last_activity_at": last_activity_at.isoformat(),
            },
        )

    def prioritize(self, priority: str, actor_id: str | None) -> bool:
        new = parse_enum(Priority, priority, "/data/attributes/priority").value
        return self._change("case.priority_changed", actor_id, {"priority": (self.priority, new)})

    def assign(self, assignee_id: str | None, actor_id: str | None) -> bool:
        kind = "case.assigned" if assignee_id else "case.unassigned"
        return self._change(kind, actor_id, {"assignee_id": (self.assignee_id, assignee_id)})

    def set_attributes(self, attributes: dict[str, list[str]], actor_id: str | None) -> bool:
        new = validate_attributes(attributes)
        return self._change("case.attributes_changed", actor_id, {"attributes": (self.attributes, new)})

    def set_custom_attributes(self, values: dict[str, Any], actor_id: str | None) -> bool:
        return self._change(
            "case.custom_attributes_changed", actor_id, {"custom_attributes": (self.custom_attributes, values)}
        )

    def set_due_date(self, due: date | None, actor_id: str | None) -> bool:
        return self._change("case.due_date_changed", actor_id, {"due_date": (self.due_date, due)})

    def set_resolved_reason(self, reason: str, actor_id: str | None) -> bool:
        if not isinstance(reason, str) or len(reason) > 255:
            raise InvalidInput(
                "resolved_reason must be a string of at most 255 characters", "/data/attributes/resolved_reason"
            )
        return self._change(
            "case.resolved_reason_changed", actor_id, {"resolved_reason": (self.resolved_reason, reason)}
        )

    def archive(self, actor_id: str | None) -> bool:
        if self.archived_at is not None:
            return False
        return self._change("case.archived", actor_id, {"archived_at": (None, utcnow())})

    def unarchive(self, actor_id: str | None) -> bool:
        return self._change("case.unarchived", actor_id, {"archived_at": (self.archived_at, None)})

    def move_to(self, project_id: str, number: int, key: str, actor_id: str | None) -> bool:
        return self._change(
            "case.moved",
            actor_id,
            {"project_id": (self.project_id, project_id), "number": (self.number, number), "key": (self.key, key)},
        )

    def record_fact(self, event_type: str, actor_id: str | None, data: dict[str, Any], **kwargs: Any) -> DomainEvent:
        """Record an event about the case that changes none of its fields (a suggestion, a request, a notice),
        carrying the case's key and project like every case event; returns it."""
        event = DomainEvent(
            type=event_type,
            org_id=self.org_id,
            actor_id=actor_id,
            subject_id=self.id,
            case_id=self.id,
            data={**data, "key": self.key, "project_id": self.project_id},
            **kwargs,
        )
        self.record(event)
        return event

    def request_workflow(self, actor_id: str | None, request: dict[str, Any]) -> None:
        """An automation asks the caseworker to run a workflow (EXECUTE_WORKFLOW, ASSIGN_AGENT) for this case."""
        self.record_fact(WORKFLOW_REQUESTED, actor_id, request)

    def suggest_duplicate(self, candidate_id: str, candidate_key: str, detail: dict[str, Any]) -> None:
        """Duplicate detection found an open case this one looks like (a timeline cell says so)."""
        data = {"message": f"possible duplicate of {candidate_key}", "candidate_id": candidate_id}
        self.record_fact(DUPLICATE_SUGGESTED, None, {**data, "candidate_key": candidate_key, **detail})

    def record_merged_into(
        self, primary: Case, merge_id: str, cells_copied: int, watchers_added: list[str], actor_id: str | None
    ) -> None:
        """This case was merged into `primary` (closed, its timeline copied there); the search-indexing flavor
        re-reads its document on this event."""
        self.record_fact(
            MERGED,
            actor_id,
            {
                "message": f"merged into {primary.key}",
                "merge_id": merge_id,
                "primary_id": primary.id,
                "primary_key": primary.key,
                "cells_copied": cells_copied,
                "watchers_added": watchers_added,
                "status": self.status,
                "resolved_reason": self.resolved_reason,
            },
        )

    def record_purged(self, retention_days: int, counts: dict[str, int]) -> None:
        """Retention removed the case; the event goes out on the outbox (no timeline cell: the timeline is gone)."""
        self.record_fact(PURGED, None, {"retention_days": retention_days, "counts": counts})

    def record_deleted(self, actor_id: str | None) -> None:
        self.record(
            DomainEvent(
                type="case.deleted",
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.id,
                case_id=self.id,
                data={"key": self.key, "project_id": self.project_id},
            )
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
