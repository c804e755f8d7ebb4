"""Maintenance windows: an org's scheduled periods during which the cases matching a query are under
maintenance (case notifications and automation for them are meant to be held back)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from casem.domain.errors import InvalidInput
from casem.domain.events import DomainEvent, EventRecorder, utcnow
from casem.domain.notifications import validate_query
from casem.domain.projects import validate_name

__all__ = ["MaintenanceWindow", "validate_name", "validate_query", "validate_period"]


def _utc(value: datetime) -> datetime:
    # A time without an offset is taken as UTC, as the storage layer does.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def validate_period(start_at: datetime, end_at: datetime, pointer: str = "/data/attributes/end_at") -> None:
    if _utc(end_at) <= _utc(start_at):
        raise InvalidInput(f"end_at ({end_at.isoformat()}) must be after start_at ({start_at.isoformat()})", pointer)


@dataclass(eq=False)
class MaintenanceWindow(EventRecorder):
    id: str
    org_id: str
    name: str
    query: str
    start_at: datetime
    end_at: datetime
    created_by_id: str | None = None
    updated_by_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None

    def __post_init__(self) -> None:
        self.start_at, self.end_at = _utc(self.start_at), _utc(self.end_at)

    def _event(self, kind: str, actor_id: str | None, data: dict[str, Any]) -> None:
        self.record(
            DomainEvent(
                type=f"maintenance_window.{kind}",
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.id,
                subject_type="maintenance_window",
                data=data,
            )
        )

    def _period(self) -> dict[str, str]:
        return {"start_at": self.start_at.isoformat(), "end_at": self.end_at.isoformat()}

    @classmethod
    def create(cls, *, actor_id: str | None, **fields: Any) -> MaintenanceWindow:
        window = cls(created_by_id=actor_id, **fields)
        validate_period(window.start_at, window.end_at)
        window._event("created", actor_id, {"name": window.name, "query": window.query, **window._period()})
        return window

    def update(self, actor_id: str | None, **changes: Any) -> bool:
        """Apply the changed fields (the resulting period must still end after it starts)."""
        changes = {k: _utc(v) if k in ("start_at", "end_at") else v for k, v in changes.items()}
        effective = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if not effective:
            return False
        validate_period(effective.get("start_at", self.start_at), effective.get("end_at", self.end_at))
        for name, value in effective.items():
            setattr(self, name, value)
        self.modified_at = utcnow()
        self.updated_by_id = actor_id
        recorded = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in effective.items()}
        self._event("updated", actor_id, {"changes": recorded})
        return True

    def delete(self, actor_id: str | None) -> None:
        self._event("deleted", actor_id, {"name": self.name})
