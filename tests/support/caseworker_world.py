"""What the caseworker suites work in: tenant databases with one org and project, and a blob store. The `world`
fixture is in tests/caseworker/conftest.py."""

from __future__ import annotations

from dataclasses import dataclass

from casem.adapters.blobs.filesystem import FilesystemBlobStore
from casem.app.cases.service import NewCase, create_case
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
