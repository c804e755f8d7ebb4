"""Case links: create, list (by entity), delete. A case end must be a case of the caller's org."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from casem.adapters.storage.tables import case_entity_links as links
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases.service import get_case
from casem.app.ids import require_uuid
from casem.domain.case_links import (
    CaseLink,
    EntityType,
    parse_entity_type,
    parse_relationship,
    validate_entity_id,
)
from casem.domain.errors import Conflict, InvalidInput

ATTRS = "/data/attributes"


@dataclass(frozen=True)
class NewLink:
    """A link as requested; the domain checks the allowed values and names them in its 400."""

    parent_entity_type: str
    parent_entity_id: str
    child_entity_type: str
    child_entity_id: str
    relationship: str


async def _entity_id(uow: UnitOfWork, org_id: str, kind: EntityType, ident: str) -> str:
    """A case by id or key becomes its id (404 when not the org's); other entities are kept as sent."""
    if kind is EntityType.CASE:
        return (await get_case(uow, org_id, ident)).id
    return ident


async def create_link(
    uow: UnitOfWork, org_id: str, actor_id: str | None, attrs: NewLink, link_id: str | None = None
) -> CaseLink:
    parent_type = parse_entity_type(attrs.parent_entity_type, f"{ATTRS}/parent_entity_type")
    child_type = parse_entity_type(attrs.child_entity_type, f"{ATTRS}/child_entity_type")
    relationship = parse_relationship(attrs.relationship, f"{ATTRS}/relationship")
    parent_id = validate_entity_id(attrs.parent_entity_id, f"{ATTRS}/parent_entity_id")
    child_id = validate_entity_id(attrs.child_entity_id, f"{ATTRS}/child_entity_id")
    if EntityType.CASE not in (parent_type, child_type):
        raise InvalidInput("at least one end of a link must be a case", f"{ATTRS}/parent_entity_type")
    link = CaseLink.create(
        actor_id=actor_id,
        id=link_id or str(uuid.uuid4()),
        org_id=org_id,
        parent_entity_type=parent_type.value,
        parent_entity_id=await _entity_id(uow, org_id, parent_type, parent_id),
        child_entity_type=child_type.value,
        child_entity_id=await _entity_id(uow, org_id, child_type, child_id),
        relationship=relationship.value,
    )
    existing = await _touching(uow, org_id, link.parent_entity_type, link.parent_entity_id, link.relationship)
    if any(link.same_as(other) for other in existing):
        raise Conflict(
            f"{link.parent_entity_type} {link.parent_entity_id} already {link.relationship} "
            f"{link.child_entity_type} {link.child_entity_id}"
        )
    uow.add(link)
    return link


async def _touching(
    uow: UnitOfWork, org_id: str, kind: str, ident: str, relationship: str | None = None
) -> list[CaseLink]:
    """The org's links with the entity at either end (optionally of one relationship)."""
    statement = sa.select(CaseLink).where(
        links.c.org_id == org_id,
        sa.or_(
            sa.and_(links.c.parent_entity_type == kind, links.c.parent_entity_id == ident),
            sa.and_(links.c.child_entity_type == kind, links.c.child_entity_id == ident),
        ),
    )
    if relationship is not None:
        statement = statement.where(links.c.relationship == relationship)
    return await uow.scalars(statement.order_by(links.c.created_at, links.c.id))


async def list_links(
    uow: UnitOfWork, org_id: str, entity_type: str | None, entity_id: str | None, relationship: str | None
) -> list[CaseLink]:
    """The links of one entity. The client always names one; without, casem lists all the org's links."""
    wanted = parse_relationship(relationship, "relationship").value if relationship is not None else None
    if (entity_type is None) != (entity_id is None):
        raise InvalidInput("entity_type and entity_id go together: name both, or neither", "entity_type")
    if entity_type is None or entity_id is None:
        statement = sa.select(CaseLink).where(links.c.org_id == org_id)
        if wanted is not None:
            statement = statement.where(links.c.relationship == wanted)
        return await uow.scalars(statement.order_by(links.c.created_at, links.c.id))
    kind = parse_entity_type(entity_type, "entity_type")
    ident = await _entity_id(uow, org_id, kind, validate_entity_id(entity_id, "entity_id"))
    return await _touching(uow, org_id, kind.value, ident, wanted)


async def delete_link(uow: UnitOfWork, org_id: str, actor_id: str | None, link_id: str) -> None:
    link = await uow.get(CaseLink, org_id, require_uuid(link_id, "link_id"), resource="case_link")
    link.delete(actor_id)
    await uow.session.delete(link)
