from __future__ import annotations

from typing import Any, Literal

from casem.services.case_api.schemas import Relationship, Strict


class ProjectCreateAttributes(Strict):
    key: str
    name: str
    enabled_custom_case_types: list[str] | None = None
    team_uuid: str | None = None


class ProjectCreate(Strict):
    type: Literal["project"]
    attributes: ProjectCreateAttributes
    relationships: dict[str, Relationship] | None = None


class ProjectCreateRequest(Strict):
    data: ProjectCreate


class ProjectUpdateAttributes(Strict):
    name: str | None = None
    enabled_custom_case_types: list[str] | None = None
    team_uuid: str | None = None
    settings: dict[str, Any] | None = None
    columns_config: dict[str, Any] | None = None


class ProjectUpdate(Strict):
    type: Literal["project"]
    attributes: ProjectUpdateAttributes


class ProjectUpdateRequest(Strict):
    data: ProjectUpdate
