"""Case views: a project's saved case query (a reusable, filtered list of its cases)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from casem.domain.events import DomainEvent, EventRecorder, utcnow
from casem.domain.notifications import validate_query
from casem.domain.projects import validate_name

__all__ = ["CaseView", "validate_name", "validate_view_query"]


def validate_view_query(query: Any, pointer: str = "/data/attributes/query") -> str:
    """A view's query must parse as a case search query (the empty query lists every case)."""
    return validate_query(query, pointer)


@dataclass(eq=False)
class CaseView(EventRecorder):
    id: str
    org_id: str
    project_id: str
    name: str
    query: str
    np_rule_id: str | None = None  # the notification rule that watches this view's cases, if any
    created_by_id: str | None = None
    modified_by_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None

    def _event(self, kind: str, actor_id: str | None, data: dict[str, Any]) -> None:
        self.record(
            DomainEvent(
                type=f"case_view.{kind}",
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.id,
                subject_type="case_view",
                data={"project_id": self.project_id, **data},
            )
        )

    @classmethod
    def create(cls, *, actor_id: str | None, **fields: Any) -> CaseView:
        view = cls(created_by_id=actor_id, **fields)
        view._event("created", actor_id, {"name": view.name, "query": view.query, "np_rule_id": view.np_rule_id})
        return view

    def update(self, actor_id: str | None, **changes: Any) -> bool:
        """Apply the changed fields; False (and no event) when nothing differs."""
        effective = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if not effective:
            return False
        for name, value in effective.items():
            setattr(self, name, value)
        self.modified_at = utcnow()
        self.modified_by_id = actor_id
        self._event("updated", actor_id, {"changes": effective})
        return True

    def delete(self, actor_id: str | None) -> None:
        self._event("deleted", actor_id, {"name": self.name})
