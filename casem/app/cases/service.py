"""Cases: creation with gap-free per-project keys, and lookup by id or key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import case_types, cases, custom_attribute_configs, projects, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.ids import UUID_RE
from casem.domain.case_types import CustomAttributeConfig
from casem.domain.cases import (
    STANDARD_TYPE_ID,
    Case,
    Priority,
    Status,
    parse_enum,
    validate_description,
    validate_title,
)
from casem.domain.errors import InvalidInput, NotFound
from casem.domain.projects import Project


@dataclass
class NewCase:
    project_id: str
    title: Any
    type_id: str = STANDARD_TYPE_ID
    description: Any = None
    priority: Any = None
    status: Any = None
    assignee_id: str | None = None
    attributes: dict[str, list[str]] | None = None
    custom_attributes: dict[str, Any] | None = None
    intake_key: str | None = None
    case_id: str | None = None


async def allocate_number(uow: UnitOfWork, org_id: str, project_id: str) -> tuple[int, str]:
    """Next case number of a project, in the caller's transaction.

    UPDATE ... RETURNING takes the project row's write lock (PostgreSQL) or the database write lock
    (SQLite, BEGIN IMMEDIATE), so concurrent creates queue and numbers never repeat or skip: a rolled
    back create rolls the counter back with it.
    """
    row = (
        await uow.execute(
            sa.update(projects)
            .where(projects.c.id == project_id, projects.c.org_id == org_id, projects.c.deleted_at.is_(None))
            .values(case_counter=projects.c.case_counter + 1)
            .returning(projects.c.case_counter, projects.c.key)
        )
    ).one_or_none()
    if row is None:
        raise NotFound("project", project_id)
    return row.case_counter, f"{row.key}-{row.case_counter}"


async def check_type(uow: UnitOfWork, org_id: str, type_id: str, pointer: str) -> str:
    if type_id == STANDARD_TYPE_ID:
        return type_id
    if not UUID_RE.match(type_id):
        raise InvalidInput(f"type_id {type_id!r} is not a valid UUID", pointer)
    found = await uow.scalar(
        sa.select(case_types.c.id).where(
            case_types.c.id == type_id, case_types.c.org_id == org_id, case_types.c.deleted_at.is_(None)
        )
    )
    if not found:
        raise NotFound("case type", type_id)
    return type_id


async def check_user(uow: UnitOfWork, org_id: str, user_id: str, pointer: str) -> str:
    if not UUID_RE.match(user_id):
        raise InvalidInput(f"user id {user_id!r} is not a valid UUID", pointer)
    found = await uow.scalar(sa.select(users.c.id).where(users.c.id == user_id, users.c.org_id == org_id))
    if not found:
        raise NotFound("user", user_id)
    return user_id


async def attribute_configs(uow: UnitOfWork, org_id: str, type_id: str) -> dict[str, CustomAttributeConfig]:
    configs = await uow.scalars(
        sa.select(CustomAttributeConfig).where(
            custom_attribute_configs.c.org_id == org_id,
            custom_attribute_configs.c.case_type_id == type_id,
            custom_attribute_configs.c.deleted_at.is_(None),
        )
    )
    return {c.key: c for c in configs}


async def coerce_custom_attributes(
    uow: UnitOfWork, org_id: str, type_id: str, values: dict[str, Any], pointer: str
) -> dict[str, Any]:
    """Validate custom attribute values against the case type's configs (Datadog's CustomAttributeValue)."""
    return coerce_with_configs(await attribute_configs(uow, org_id, type_id), values, pointer)


def coerce_with_configs(
    configs: dict[str, CustomAttributeConfig], values: dict[str, Any], pointer: str
) -> dict[str, Any]:
    coerced: dict[str, Any] = {}
    for key, raw in values.items():
        config = configs.get(key)
        if config is None:
            raise InvalidInput(f"custom attribute {key!r} is not configured for this case type", f"{pointer}/{key}")
        # Accept either the bare value or Datadog's {type, is_multi, value} object.
        value = raw.get("value") if isinstance(raw, dict) else raw
        coerced[key] = config.coerce(value, f"{pointer}/{key}")
    return coerced


async def create_case(uow: UnitOfWork, org_id: str, actor_id: str | None, new: NewCase) -> Case:
    if new.intake_key:
        existing = await uow.scalar(
            sa.select(Case).where(cases.c.org_id == org_id, cases.c.intake_key == new.intake_key)
        )
        if existing is not None:
            return existing
    title = validate_title(new.title)
    description = validate_description(new.description) if new.description is not None else ""
    priority = parse_enum(Priority, new.priority, "/data/attributes/priority") if new.priority else Priority.NOT_DEFINED
    status = parse_enum(Status, new.status, "/data/attributes/status_name") if new.status else Status.OPEN
    if not UUID_RE.match(new.project_id):
        raise InvalidInput(f"project id {new.project_id!r} is not a valid UUID", "/data/relationships/project")
    type_id = await check_type(uow, org_id, new.type_id, "/data/attributes/type_id")
    project = await uow.get(Project, org_id, new.project_id, resource="project")
    if (
        type_id != STANDARD_TYPE_ID
        and project.enabled_custom_case_types
        and type_id not in (project.enabled_custom_case_types)
    ):
        raise InvalidInput(f"case type {type_id} is not enabled in project {project.key}", "/data/attributes/type_id")
    assignee = (
        await check_user(uow, org_id, new.assignee_id, "/data/relationships/assignee") if new.assignee_id else None
    )
    custom = (
        await coerce_custom_attributes(
            uow, org_id, type_id, new.custom_attributes, "/data/attributes/custom_attributes"
        )
        if new.custom_attributes
        else {}
    )
    number, key = await allocate_number(uow, org_id, project.id)
    case = Case.open(
        actor_id=actor_id,
        id=new.case_id or str(uuid.uuid4()),
        org_id=org_id,
        project_id=project.id,
        number=number,
        key=key,
        title=title,
        description=description,
        type_id=type_id,
        status=status.value,
        priority=priority.value,
        assignee_id=assignee,
        attributes=dict(new.attributes or {}),
        custom_attributes=custom,
        intake_key=new.intake_key,
    )
    if status is Status.CLOSED:
        case.closed_at = case.created_at
    uow.add(case)
    return case


async def lock_case(uow: UnitOfWork, case_id: str) -> None:
    """Take the case row's write lock until commit, for a change recorded by another aggregate of the case
    (an attachment step): its event then takes its place in the case's commit order."""
    query = sa.select(cases.c.id).where(cases.c.id == case_id)
    await uow.execute(query.with_for_update() if uow.db.dialect == "postgresql" else query)


async def get_case(uow: UnitOfWork, org_id: str, case_id_or_key: str) -> Case:
    """A case by uuid or by its key (PROJ-12); another org's case is not found.

    In a unit of work that writes, the case row stays locked until commit: every change to a case (comments
    included) is serialised, so a case's events reach the outbox in the order their transactions commit.
    """
    lock = not uow.read_only
    if UUID_RE.match(case_id_or_key):
        return await uow.get(Case, org_id, case_id_or_key.lower(), resource="case", lock=lock)
    query = sa.select(Case).where(cases.c.org_id == org_id, cases.c.key == case_id_or_key.upper())
    found = await uow.scalar(query.with_for_update() if lock else query)
    if found is None:
        raise NotFound("case", case_id_or_key)
    return found
