"""HTTP views for case comments and timelines (Datadog CaseManagementApi comment_case, update_case_comment,
delete_case_comment and list_case_timeline).

A timeline lists comments and one cell per case change (STATUS_CHANGE, PRIORITY_CHANGE, ...). The official
client's TimelineCellType only knows COMMENT: it keeps change cells but flags them `_unparsed` instead of
failing, so `list_case_timeline` works unchanged while every change is still visible.

A deleted comment stays in the timeline as a tombstone: `deleted_at` set and its message withheld, so
page boundaries do not move under a reader and the timeline keeps its audit trail.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from casem.app.timeline import service
from casem.domain.identity import User
from casem.domain.timeline import TimelineCell
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import error_response, iso, parse_body
from casem.services.case_api.openapi import contract
from casem.services.case_api.timeline.schemas import CommentRequest, TimelineResponse

router = APIRouter(prefix="/api/v2/cases/{case_id}", tags=["timeline"])


def _author(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    content = {"id": user.id, "handle": user.handle, "email": user.email}
    if user.name is not None:
        content["name"] = user.name
    return {"type": "USER", "content": content}


def serialize_cell(cell: TimelineCell, authors: dict[str, User]) -> dict[str, Any]:
    if cell.deleted_at is not None:
        content: dict[str, Any] = {}
    elif cell.is_comment:
        content = {"message": cell.content.get("message", "")}
        if cell.origin:  # a comment written on a linked Jira issue or ServiceNow ticket, and by whom
            content["origin"] = cell.origin
    else:
        content = dict(cell.shown_content)
    attributes: dict[str, Any] = {"type": cell.type, "cell_content": content, "created_at": iso(cell.created_at)}
    author = _author(authors.get(cell.author_id or ""))
    if author is not None:
        attributes["author"] = author
    # The client types these as non-nullable datetimes: omit them rather than send null.
    for name in ("modified_at", "deleted_at"):
        value = getattr(cell, name)
        if value is not None:
            attributes[name] = iso(value)
    return {"id": cell.id, "type": "timeline_cell", "attributes": attributes}


def _not_author(exc: service.NotAuthor) -> JSONResponse:
    # Same org, so the comment's existence is no secret: a 403 says why, where another org gets a 404.
    return error_response(403, "Forbidden", exc.detail)


@router.post("/comment")
@contract(body=CommentRequest, returns=TimelineResponse)
async def comment_case(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, CommentRequest)
    async with who.uow() as uow:
        cell = await service.add_comment(uow, who.org_id, who.user_id, case_id, body.data.attributes.comment)
        authors = await service.authors_of(uow, who.org_id, [cell])
        await uow.commit()
    return {"data": [serialize_cell(cell, authors)]}


@router.put("/comment/{cell_id}", response_model=None)
@contract(body=CommentRequest, returns=TimelineResponse)
async def update_case_comment(
    case_id: str, cell_id: str, request: Request, who: Caller = Depends(caller)
) -> dict[str, Any] | JSONResponse:
    body = await parse_body(request, CommentRequest)
    async with who.uow() as uow:
        try:
            cell = await service.edit_comment(
                uow, who.org_id, who.user_id, case_id, cell_id, body.data.attributes.comment
            )
        except service.NotAuthor as exc:
            return _not_author(exc)
        authors = await service.authors_of(uow, who.org_id, [cell])
        await uow.commit()
    return {"data": [serialize_cell(cell, authors)]}


@router.delete("/comment/{cell_id}", status_code=204)
async def delete_case_comment(case_id: str, cell_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        try:
            await service.delete_comment(uow, who.org_id, who.user_id, case_id, cell_id)
        except service.NotAuthor as exc:
            return _not_author(exc)
        await uow.commit()
    return Response(status_code=204)


@router.get("/timelines")
@contract(returns=TimelineResponse)
async def list_case_timeline(
    case_id: str,
    page_size: Annotated[int, Query(alias="page[size]", ge=1, le=service.MAX_PAGE_SIZE)] = service.DEFAULT_PAGE_SIZE,
    page_number: Annotated[int, Query(alias="page[number]", ge=0, le=service.MAX_PAGE_NUMBER)] = 0,
    sort_ascending: Annotated[bool, Query(alias="sort[ascending]")] = False,
    who: Caller = Depends(caller),
) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        page = await service.list_timeline(
            uow, who.org_id, case_id, page_size=page_size, page_number=page_number, ascending=sort_ascending
        )
    return {"data": [serialize_cell(c, page.authors) for c in page.cells]}
