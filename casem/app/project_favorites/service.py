"""Project favorites of a user: favoriting and unfavoriting are idempotent; a deleted project drops out."""

from __future__ import annotations

import sqlalchemy as sa

from casem.adapters.storage.tables import project_favorites, projects
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.projects.service import get_project
from casem.domain.favorites import ProjectFavorite


async def _existing(uow: UnitOfWork, user_id: str, project_id: str) -> ProjectFavorite | None:
    return await uow.scalar(
        sa.select(ProjectFavorite).where(
            project_favorites.c.user_id == user_id, project_favorites.c.project_id == project_id
        )
    )


async def favorite(uow: UnitOfWork, org_id: str, user_id: str, project_id: str) -> bool:
    """Bookmark the project for the user; False when it already was."""
    project = await get_project(uow, org_id, project_id)
    if await _existing(uow, user_id, project.id) is not None:
        return False
    uow.add(ProjectFavorite(user_id=user_id, project_id=project.id, org_id=org_id))
    return True


async def unfavorite(uow: UnitOfWork, org_id: str, user_id: str, project_id: str) -> bool:
    """Drop the bookmark; False when there was none (the project itself must still be the org's)."""
    project = await get_project(uow, org_id, project_id)
    existing = await _existing(uow, user_id, project.id)
    if existing is None:
        return False
    await uow.session.delete(existing)
    return True


async def list_favorites(uow: UnitOfWork, org_id: str, user_id: str) -> list[ProjectFavorite]:
    return await uow.scalars(
        sa.select(ProjectFavorite)
        .join(projects, projects.c.id == project_favorites.c.project_id)
        .where(
            project_favorites.c.org_id == org_id,
            project_favorites.c.user_id == user_id,
            projects.c.deleted_at.is_(None),
        )
        .order_by(project_favorites.c.created_at, project_favorites.c.project_id)
    )
