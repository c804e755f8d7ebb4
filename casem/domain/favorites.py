"""Project favorites: the projects a user has bookmarked. A personal preference, not a change to the
org's data, so it records no domain event (nothing downstream — audit, automation, search — acts on it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from casem.domain.events import utcnow


@dataclass(eq=False)
class ProjectFavorite:
    user_id: str
    project_id: str
    org_id: str
    created_at: datetime = field(default_factory=utcnow)
