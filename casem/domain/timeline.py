"""Timeline cells: comments, and one cell for every change to a case."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from casem.domain.cases import INDEXED_BY_CREATOR
from casem.domain.errors import InvalidInput
from casem.domain.events import DomainEvent, EventRecorder, utcnow

COMMENT = "COMMENT"
COMMENT_MAX = 30_000

# Case event types that become a change cell on the case's timeline, with the cell type they get.
CHANGE_CELL_TYPES: dict[str, str] = {
    "case.created": "CASE_CREATED",
    "case.title_changed": "TITLE_CHANGE",
    "case.description_changed": "DESCRIPTION_CHANGE",
    "case.status_changed": "STATUS_CHANGE",
    "case.priority_changed": "PRIORITY_CHANGE",
    "case.assigned": "ASSIGNEE_CHANGE",
    "case.unassigned": "ASSIGNEE_CHANGE",
    "case.attributes_changed": "ATTRIBUTES_CHANGE",
    "case.custom_attributes_changed": "CUSTOM_ATTRIBUTES_CHANGE",
    "case.due_date_changed": "DUE_DATE_CHANGE",
    "case.resolved_reason_changed": "RESOLVED_REASON_CHANGE",
    "case.archived": "ARCHIVE_CHANGE",
    "case.unarchived": "ARCHIVE_CHANGE",
    "case.moved": "PROJECT_CHANGE",
    "case.watcher_added": "WATCHER_CHANGE",
    "case.watcher_removed": "WATCHER_CHANGE",
    # Attachment lifecycle steps (casem/domain/attachments.py), recorded by the caseworker.
    "case.attachment_uploaded": "ATTACHMENT_CHANGE",
    "case.attachment_verified": "ATTACHMENT_CHANGE",
    "case.attachment_rejected": "ATTACHMENT_CHANGE",
    "case.attachment_available": "ATTACHMENT_CHANGE",
    "case.attachment_expired": "ATTACHMENT_CHANGE",
    "case.attachment_deleted": "ATTACHMENT_CHANGE",
    # Recorded by the automation flavors (casem/domain/automation.py), with no person as author.
    "case.workflow_requested": "AUTOMATION_WORKFLOW",
    "case.due_date_reminder": "DUE_DATE_REMINDER",
    "case.sla_breached": "SLA_BREACH",
    "case.duplicate_suggested": "DUPLICATE_SUGGESTION",
    # Recorded by the caseworker on each duplicate it merged into a primary (casem/domain/merges.py).
    "case.merged": "CASE_MERGE",
    # A case now mirrors a chat channel or thread (casem/domain/chat.py).
    "case.chat_linked": "CHAT_LINK",
    # Jira and ServiceNow (casem/domain/integrations.py): each link step and each change casem sent out.
    "case.integration_linked": "INTEGRATION_LINK",
    "case.integration_link_failed": "INTEGRATION_LINK",
    "case.integration_unlinked": "INTEGRATION_LINK",
    "case.integration_synced": "INTEGRATION_SYNC",
    "case.integration_sync_failed": "INTEGRATION_SYNC",
    "case.incident_linked": "INCIDENT_LINK",
    # A case the paging flavor paged for, and what became of its page (casem/domain/oncall.py).
    "case.page_triggered": "PAGE",
    "case.page_acknowledged": "PAGE_ACKNOWLEDGEMENT",
    "case.page_resolved": "PAGE_RESOLUTION",
    # A page's own timeline (its case in the on-call tenant): who was targeted and notified, through what,
    # when, and who acknowledged.
    "page.triggered": "PAGE_TRIGGERED",
    "page.step_reached": "PAGE_ESCALATION_STEP",
    "page.notified": "PAGE_NOTIFICATION",
    "page.acknowledged": "PAGE_ACKNOWLEDGEMENT",
    "page.escalated": "PAGE_ESCALATION",
    "page.resolved": "PAGE_RESOLUTION",
    # An import whose file won over what was stored (`casem import --on-conflict replace`).
    "case.import_replaced": "IMPORT_CHANGE",
}
# A case created by an import that brings the case's own timeline: its creation writes no cell of its own.
IMPORTED_HISTORY = "imported_history"


def validate_comment(message: Any, pointer: str = "/data/attributes/comment") -> str:
    if not isinstance(message, str) or not message.strip():
        raise InvalidInput("comment must be a non-empty string", pointer)
    if len(message) > COMMENT_MAX:
        raise InvalidInput(f"comment is {len(message)} characters long; the limit is {COMMENT_MAX}", pointer)
    return message


@dataclass(eq=False)
class TimelineCell(EventRecorder):
    id: str
    org_id: str
    case_id: str
    type: str
    content: dict[str, Any]
    author_id: str | None
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None
    deleted_at: datetime | None = None
    source_event_id: str | None = None

    @property
    def is_comment(self) -> bool:
        return self.type == COMMENT

    @property
    def shown_content(self) -> dict[str, Any]:
        """The content as users see it (the API, the console): a change cell's content is its event's data, and the
        note a `case.created` carries for casem's own workers (`INDEXED_BY_CREATOR`) is not the case's business."""
        if INDEXED_BY_CREATOR not in self.content:
            return self.content
        return {key: value for key, value in self.content.items() if key != INDEXED_BY_CREATOR}

    def _event(self, kind: str, actor_id: str | None, data: dict[str, Any]) -> None:
        self.record(
            DomainEvent(
                type=f"case.comment_{kind}",
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.case_id,
                case_id=self.case_id,
                data={"cell_id": self.id, **data},
            )
        )

    @classmethod
    def comment(cls, *, id: str, org_id: str, case_id: str, message: str, author_id: str | None) -> TimelineCell:
        cell = cls(
            id=id,
            org_id=org_id,
            case_id=case_id,
            type=COMMENT,
            content={"message": validate_comment(message)},
            author_id=author_id,
        )
        cell._event("added", author_id, {"message": cell.content["message"]})
        return cell

    @classmethod
    def remote_comment(
        cls,
        *,
        id: str,
        org_id: str,
        case_id: str,
        message: str,
        author_id: str | None,
        origin: dict[str, Any],
        created_at: datetime | None = None,
    ) -> TimelineCell:
        """A comment written on a linked Jira issue or ServiceNow ticket: its author is the casem user with the
        remote author's e-mail (None when there is none), and `origin` names the remote author and comment."""
        cell = cls(
            id=id,
            org_id=org_id,
            case_id=case_id,
            type=COMMENT,
            content={"message": validate_comment(message), "origin": origin},
            author_id=author_id,
            created_at=created_at or utcnow(),
        )
        cell._event("added", author_id, {"message": message, "origin": origin})
        return cell

    @property
    def origin(self) -> dict[str, Any] | None:
        return self.content.get("origin")

    def edit(self, message: str, actor_id: str | None, origin: dict[str, Any] | None = None) -> None:
        new = validate_comment(message)
        old = self.content.get("message")
        self.content = {"message": new, **({"origin": self.origin} if self.origin else {})}
        self.modified_at = utcnow()
        self._event("updated", actor_id, {"old": old, "message": new, **({"origin": origin} if origin else {})})

    def delete(self, actor_id: str | None, origin: dict[str, Any] | None = None) -> None:
        self.deleted_at = utcnow()
        self._event("deleted", actor_id, {"origin": origin} if origin else {})


def change_cell(event: DomainEvent, cell_id: str) -> TimelineCell | None:
    """The timeline cell that records one case change, or None for events that are not case changes."""
    fields = change_cell_fields(event, cell_id)
    return None if fields is None else TimelineCell(**fields)


def change_cell_fields(event: DomainEvent, cell_id: str) -> dict[str, Any] | None:
    """The fields of `change_cell(event, cell_id)` (every field, defaults included), or None."""
    cell_type = CHANGE_CELL_TYPES.get(event.type)
    if cell_type is None or event.case_id is None or event.data.get(IMPORTED_HISTORY):
        return None
    return {
        "id": cell_id,
        "org_id": event.org_id,
        "case_id": event.case_id,
        "type": cell_type,
        "content": {"event": event.type, **event.data},
        "author_id": event.actor_id,
        "created_at": event.time,
        "modified_at": None,
        "deleted_at": None,
        "source_event_id": event.id,
    }
