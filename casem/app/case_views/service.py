"""Case views: saved queries over a project's cases; create, read, list, update, delete."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import case_views, notification_rules
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.ids import UUID_RE, require_uuid
from casem.app.projects.service import get_project
from casem.domain.case_views import CaseView, validate_name, validate_view_query
from casem.domain.errors import InvalidInput, NotFound

ATTRS = "/data/attributes"


async def _check_rule(uow: UnitOfWork, org_id: str, project_id: str, rule_id: str) -> str:
    """The view's notification rule must be one of its project's (another org's is not found)."""
    if UUID_RE.match(rule_id):
        found = await uow.scalar(
            sa.select(notification_rules.c.id).where(
                notification_rules.c.id == rule_id.lower(),
                notification_rules.c.org_id == org_id,
                notification_rules.c.project_id == project_id,
            )
        )
        if found is not None:
            return found
    raise NotFound("notification_rule", rule_id)


async def create_view(
    uow: UnitOfWork,
    org_id: str,
    actor_id: str | None,
    *,
    name: str,
    project_id: str,
    query: str,
    np_rule_id: str | None,
    view_id: str | None = None,
) -> CaseView:
    name = validate_name(name, f"{ATTRS}/name")
    query = validate_view_query(query, f"{ATTRS}/query")
    project = await get_project(uow, org_id, project_id)
    rule_id = await _check_rule(uow, org_id, project.id, np_rule_id) if np_rule_id else None
    view = CaseView.create(
        actor_id=actor_id,
        id=view_id or str(uuid.uuid4()),
        org_id=org_id,
        project_id=project.id,
        name=name,
        query=query,
        np_rule_id=rule_id,
    )
    uow.add(view)
    return view


async def get_view(uow: UnitOfWork, org_id: str, view_id: str) -> CaseView:
    return await uow.get(CaseView, org_id, require_uuid(view_id, "view_id"), resource="case_view")


async def list_views(uow: UnitOfWork, org_id: str, project_id: str | None) -> list[CaseView]:
    """The views of one project; of every project of the org when none is named."""
    statement = sa.select(CaseView).where(case_views.c.org_id == org_id)
    if project_id is not None:
        project = await get_project(uow, org_id, project_id)
        statement = statement.where(case_views.c.project_id == project.id)
    return await uow.scalars(statement.order_by(case_views.c.created_at, case_views.c.id))


async def update_view(
    uow: UnitOfWork, org_id: str, actor_id: str | None, view_id: str, changes: dict[str, Any]
) -> CaseView:
    view = await get_view(uow, org_id, view_id)
    fields: dict[str, Any] = {}
    if "name" in changes:
        fields["name"] = validate_name(changes["name"], f"{ATTRS}/name")
    if "query" in changes:
        if changes["query"] is None:
            raise InvalidInput("query must be a string", f"{ATTRS}/query")
        fields["query"] = validate_view_query(changes["query"], f"{ATTRS}/query")
    if "np_rule_id" in changes:
        rule_id = changes["np_rule_id"]
        fields["np_rule_id"] = await _check_rule(uow, org_id, view.project_id, rule_id) if rule_id else None
    view.update(actor_id, **fields)
    return view


async def delete_view(uow: UnitOfWork, org_id: str, actor_id: str | None, view_id: str) -> None:
    view = await get_view(uow, org_id, view_id)
    view.delete(actor_id)
    await uow.session.delete(view)
