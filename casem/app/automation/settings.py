"""casem's per-project settings of the SLA, due-date reminder and duplicate detection flavors.

One row per project (absent: every default applies). Flavors read them here; the API writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import project_automation_settings as settings_table
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.automation import DEFAULT_LEAD_SECONDS, DuplicateSettings


@dataclass(frozen=True)
class ProjectSettings:
    sla: dict[str, dict[str, int | None]] = field(default_factory=dict)  # no targets: no SLA tracked
    lead_seconds: tuple[int, ...] = DEFAULT_LEAD_SECONDS
    duplicates: DuplicateSettings = DuplicateSettings()


async def project_settings(uow: UnitOfWork, org_id: str, project_id: str) -> ProjectSettings:
    row = (
        await uow.execute(
            sa.select(settings_table).where(
                settings_table.c.project_id == project_id, settings_table.c.org_id == org_id
            )
        )
    ).first()
    if row is None:
        return ProjectSettings()
    return ProjectSettings(
        sla=row.sla or {},
        lead_seconds=tuple(row.reminders) if row.reminders is not None else DEFAULT_LEAD_SECONDS,
        duplicates=DuplicateSettings(**(row.duplicates or {})),
    )


async def store(uow: UnitOfWork, org_id: str, actor_id: str | None, project_id: str, **values: Any) -> None:
    """Upsert one or more sections (sla, reminders, duplicates) of a project's settings."""
    stamp = {"modified_by_id": actor_id, "modified_at": datetime.now(UTC)}
    updated = await uow.execute(
        sa.update(settings_table)
        .where(settings_table.c.project_id == project_id, settings_table.c.org_id == org_id)
        .values(**values, **stamp)
    )
    if not updated.rowcount:
        await uow.execute(sa.insert(settings_table).values(project_id=project_id, org_id=org_id, **values, **stamp))
