"""Answer documents of the project favorite routes."""

from __future__ import annotations

from typing import Literal

from casem.services.case_api.schemas import Answer


class ProjectFavorite(Answer):
    id: str
    type: Literal["project_favorite"]


class ProjectFavoritesResponse(Answer):
    data: list[ProjectFavorite]
