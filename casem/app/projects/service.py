"""Projects: create, read, list, update, delete (application services over the unit of work)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import case_types, cases, projects
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.ids import UUID_RE
from casem.app.integrations.settings import validate_integration_settings
from casem.domain.cases import STANDARD_TYPE_ID
from casem.domain.errors import Conflict, InvalidInput
from casem.domain.project_settings import (
    INTEGRATION_MONITOR,
    SETTINGS_POINTER,
    merge_settings,
    validate_settings,
)
from casem.domain.projects import Project, validate_name, validate_project_key

RESERVED_KEYS = {"CASE"}  # Datadog: a project's key cannot be "CASE"


async def _check_case_types(uow: UnitOfWork, org_id: str, type_ids: list[str], pointer: str) -> list[str]:
    wanted = [t for t in type_ids if t != STANDARD_TYPE_ID]
    if wanted:
        found = set(
            await uow.scalars(
                sa.select(case_types.c.id).where(
                    case_types.c.id.in_(wanted), case_types.c.org_id == org_id, case_types.c.deleted_at.is_(None)
                )
            )
        )
        missing = [t for t in wanted if t not in found]
        if missing:
            raise InvalidInput(f"unknown case type id {missing[0]!r}", pointer)
    return list(type_ids)


async def create_project(
    uow: UnitOfWork,
    org_id: str,
    actor_id: str | None,
    *,
    key: Any,
    name: Any,
    enabled_custom_case_types: list[str] | None = None,
    team_uuid: str | None = None,
    project_id: str | None = None,
) -> Project:
    key = validate_project_key(key)
    if key in RESERVED_KEYS:
        raise InvalidInput(f"project key cannot be {key!r}", "/data/attributes/key")
    name = validate_name(name)
    types = await _check_case_types(
        uow, org_id, enabled_custom_case_types or [], "/data/attributes/enabled_custom_case_types"
    )
    taken = await uow.scalar(sa.select(projects.c.id).where(projects.c.org_id == org_id, projects.c.key == key))
    if taken:
        raise Conflict(f"a project with key {key!r} already exists in this org")
    project = Project.create(
        actor_id=actor_id,
        id=project_id or str(uuid.uuid4()),
        org_id=org_id,
        key=key,
        name=name,
        team_id=team_uuid,
        enabled_custom_case_types=types,
    )
    uow.add(project)
    return project


async def get_project(uow: UnitOfWork, org_id: str, project_id: str) -> Project:
    return await uow.get(Project, org_id, project_id, resource="project")


async def list_projects(uow: UnitOfWork, org_id: str) -> list[Project]:
    return await uow.scalars(
        sa.select(Project)
        .where(projects.c.org_id == org_id, projects.c.deleted_at.is_(None))
        .order_by(projects.c.created_at, projects.c.key)
    )


async def update_project(
    uow: UnitOfWork, org_id: str, actor_id: str | None, project_id: str, changes: dict[str, Any]
) -> Project:
    project = await get_project(uow, org_id, project_id)
    fields: dict[str, Any] = {}
    if "name" in changes and changes["name"] is not None:
        fields["name"] = validate_name(changes["name"])
    if changes.get("enabled_custom_case_types") is not None:
        fields["enabled_custom_case_types"] = await _check_case_types(
            uow, org_id, changes["enabled_custom_case_types"], "/data/attributes/enabled_custom_case_types"
        )
    if "team_uuid" in changes:
        fields["team_id"] = changes["team_uuid"]
    if changes.get("settings") is not None:
        if not isinstance(changes["settings"], dict):
            raise InvalidInput("settings must be an object", "/data/attributes/settings")
        await validate_integration_settings(uow, org_id, changes["settings"])
        fields["settings"] = await merged_settings(uow, org_id, project.settings, changes["settings"])
    if changes.get("columns_config") is not None:
        fields["columns_config"] = changes["columns_config"]
    project.update(actor_id, **fields)
    return project


async def merged_settings(
    uow: UnitOfWork, org_id: str, stored: dict[str, Any], changes: dict[str, Any]
) -> dict[str, Any]:
    """The project's settings after a PATCH of some of their sections, with every value checked."""
    merged = validate_settings(merge_settings(stored or {}, changes))
    monitor_type = (merged.get(INTEGRATION_MONITOR) or {}).get("case_type_id")
    if monitor_type is not None and (changes.get(INTEGRATION_MONITOR) or {}).get("case_type_id") is not None:
        pointer = f"{SETTINGS_POINTER}/{INTEGRATION_MONITOR}/case_type_id"
        if not UUID_RE.match(monitor_type):
            raise InvalidInput(f"case_type_id {monitor_type!r} is not a valid UUID", pointer)
        await _check_case_types(uow, org_id, [monitor_type], pointer)
    return merged


async def delete_project(uow: UnitOfWork, org_id: str, actor_id: str | None, project_id: str) -> None:
    project = await get_project(uow, org_id, project_id)
    has_cases = await uow.scalar(sa.select(sa.func.count()).select_from(cases).where(cases.c.project_id == project.id))
    if has_cases:
        raise Conflict(f"project {project.key} still holds {has_cases} case(s); move or delete them first")
    project.delete(actor_id)
