"""Case timelines: comments (add, edit, delete) and the paged list of comment and change cells."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import timeline_cells, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases.service import get_case
from casem.app.ids import require_uuid
from casem.app.paging import MAX_PAGE_NUMBER as PAGE_NUMBER_LIMIT
from casem.domain.errors import DomainError, NotFound
from casem.domain.identity import User
from casem.domain.timeline import TimelineCell

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_PAGE_NUMBER = PAGE_NUMBER_LIMIT  # keeps OFFSET within a 64-bit integer on every engine


class NotAuthor(DomainError):  # noqa: N818 - reads as "raise NotAuthor(...)"
    """Someone other than a comment's author tried to edit or delete it (same org: a 403, not a 404)."""

    def __init__(self, action: str) -> None:
        super().__init__(f"only the author of a comment can {action} it")
        self.detail = str(self)


@dataclass(frozen=True)
class TimelinePage:
    cells: list[TimelineCell]
    authors: dict[str, User]


async def add_comment(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str, message: Any) -> TimelineCell:
    case = await get_case(uow, org_id, case_id)
    # `message` is whatever the client sent: the domain validates its type, emptiness and size.
    cell = TimelineCell.comment(
        id=str(uuid.uuid4()), org_id=org_id, case_id=case.id, message=message, author_id=actor_id
    )
    uow.add(cell)
    return cell


async def _comment_of(uow: UnitOfWork, org_id: str, case_id: str, cell_id: str) -> TimelineCell:
    """A live comment of the case: change cells, deleted comments and other cases' cells are not found."""
    cell_id = require_uuid(cell_id, "cell_id")
    case = await get_case(uow, org_id, case_id)
    cell = await uow.get(TimelineCell, org_id, cell_id, resource="comment")
    if cell.case_id != case.id or not cell.is_comment:
        raise NotFound("comment", cell_id)
    return cell


async def edit_comment(
    uow: UnitOfWork, org_id: str, actor_id: str, case_id: str, cell_id: str, message: Any
) -> TimelineCell:
    cell = await _comment_of(uow, org_id, case_id, cell_id)
    if cell.author_id != actor_id:
        raise NotAuthor("edit")
    cell.edit(message, actor_id)
    return cell


async def delete_comment(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str, cell_id: str) -> None:
    cell = await _comment_of(uow, org_id, case_id, cell_id)
    if cell.author_id != actor_id:
        raise NotAuthor("delete")
    cell.delete(actor_id)


async def authors_of(uow: UnitOfWork, org_id: str, cells: list[TimelineCell]) -> dict[str, User]:
    ids = {c.author_id for c in cells if c.author_id}
    if not ids:
        return {}
    found = await uow.scalars(sa.select(User).where(users.c.id.in_(ids), users.c.org_id == org_id))
    return {u.id: u for u in found}


async def list_timeline(
    uow: UnitOfWork,
    org_id: str,
    case_id: str,
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    page_number: int = 0,
    ascending: bool = False,
) -> TimelinePage:
    case = await get_case(uow, org_id, case_id)
    order = (
        (timeline_cells.c.created_at.asc(), timeline_cells.c.id.asc())
        if ascending
        else (timeline_cells.c.created_at.desc(), timeline_cells.c.id.desc())
    )
    cells = await uow.scalars(
        sa.select(TimelineCell)
        .where(timeline_cells.c.case_id == case.id, timeline_cells.c.org_id == org_id)
        .order_by(*order)
        .limit(page_size)
        .offset(page_number * page_size)
    )
    return TimelinePage(cells=cells, authors=await authors_of(uow, org_id, cells))
