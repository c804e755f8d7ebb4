"""What the caseworker suites work in: tenant databases with one org and project, and a blob store. The `world`
fixture is in tests/caseworker/conftest.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from casem.adapters.blobs.filesystem import FilesystemBlobStore
from casem.adapters.storage.tables import cases
from casem.app.cases.service import NewCase, create_case, get_case
from casem.app.context import AppContext
from casem.domain.cases import Case


@dataclass
class World:
    ctx: AppContext
    blobs: FilesystemBlobStore
    org_id: str
    user_id: str
    project_id: str

    async def new_case(self, title: str = "Suspicious login") -> Case:
        async with self.ctx.uow() as uow:
            case = await create_case(uow, self.org_id, self.user_id, NewCase(project_id=self.project_id, title=title))
            await uow.commit()
        return case

    async def close_and_archive(self, case_id: str, days_ago: int = 0) -> str:
        """Closes and archives the case; `days_ago` > 0 back-dates both, so retention sees it as that old."""
        async with self.ctx.uow() as uow:
            loaded = await get_case(uow, self.org_id, case_id)
            loaded.transition("CLOSED", self.user_id)
            loaded.archive(self.user_id)
            await uow.commit()
        if days_ago:
            past = datetime.now(UTC) - timedelta(days=days_ago)
            async with self.ctx.uow() as uow:
                aged = sa.update(cases).where(cases.c.id == case_id).values(closed_at=past, archived_at=past)
                await uow.execute(aged)
                await uow.commit()
        return case_id
