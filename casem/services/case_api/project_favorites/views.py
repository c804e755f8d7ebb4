"""HTTP views for project favorites (Datadog CaseManagementApi favorite_case_project,
unfavorite_case_project, list_user_case_project_favorites): the calling user's bookmarks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from sqlalchemy.exc import IntegrityError

from casem.adapters.storage.conflicts import is_unique_violation
from casem.app.project_favorites import service
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.openapi import contract
from casem.services.case_api.project_favorites.schemas import ProjectFavoritesResponse

# Registered before the projects router: /projects/favorites must not be read as a project id.
router = APIRouter(prefix="/api/v2/cases/projects", tags=["project favorites"])


@router.get("/favorites")
@contract(returns=ProjectFavoritesResponse)
async def list_user_case_project_favorites(who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        found = await service.list_favorites(uow, who.org_id, who.user_id)
    return {"data": [{"id": f.project_id, "type": "project_favorite"} for f in found]}


@router.post("/{project_id}/favorites", status_code=204)
async def favorite_case_project(project_id: str, who: Caller = Depends(caller)) -> Response:
    for attempt in range(2):
        try:
            async with who.uow() as uow:
                await service.favorite(uow, who.org_id, who.user_id, project_id)
                await uow.commit()
            break
        except IntegrityError as exc:
            # A concurrent favorite of the same project won the insert; the retry finds it and does nothing.
            if attempt or not is_unique_violation(exc):
                raise
    return Response(status_code=204)


@router.delete("/{project_id}/favorites", status_code=204)
async def unfavorite_case_project(project_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await service.unfavorite(uow, who.org_id, who.user_id, project_id)
        await uow.commit()
    return Response(status_code=204)
