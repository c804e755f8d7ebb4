"""Projects: where cases live. A project's key prefixes its case keys (PROJ-1, PROJ-2, ...)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from casem.domain.errors import InvalidInput
from casem.domain.events import DomainEvent, EventRecorder, utcnow

PROJECT_KEY = re.compile(r"^[A-Z][A-Z0-9]{0,9}$")
NAME_MAX = 255


def validate_project_key(key: Any, pointer: str = "/data/attributes/key") -> str:
    if not isinstance(key, str) or not PROJECT_KEY.match(key):
        raise InvalidInput(
            "project key must be 1 to 10 upper-case letters or digits, starting with a letter (e.g. SEC)",
            pointer,
        )
    return key


def validate_name(name: Any, pointer: str = "/data/attributes/name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name must be a non-empty string", pointer)
    if len(name) > NAME_MAX:
        raise InvalidInput(f"name is {len(name)} characters long; the limit is {NAME_MAX}", pointer)
    return name


@dataclass(eq=False)
class Project(EventRecorder):
    id: str
    org_id: str
    key: str
    name: str
    created_by_id: str | None = None
    team_id: str | None = None
    restricted: bool = False
    enabled_custom_case_types: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    columns_config: dict[str, Any] = field(default_factory=dict)
    case_counter: int = 0
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None
    deleted_at: datetime | None = None

    def _event(self, kind: str, actor_id: str | None, data: dict[str, Any]) -> None:
        self.record(
            DomainEvent(
                type=f"project.{kind}",
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.id,
                subject_type="project",
                data={"key": self.key, **data},
            )
        )

    @classmethod
    def create(cls, *, actor_id: str | None, **fields: Any) -> Project:
        project = cls(created_by_id=actor_id, **fields)
        project._event("created", actor_id, {"name": project.name})
        return project

    def update(self, actor_id: str | None, **changes: Any) -> bool:
        effective = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if not effective:
            return False
        for name, value in effective.items():
            setattr(self, name, value)
        self.modified_at = utcnow()
        self._event("updated", actor_id, {"changes": effective})
        return True

    def delete(self, actor_id: str | None) -> None:
        self.deleted_at = utcnow()
        self._event("deleted", actor_id, {})
