"""Request documents for case comments (Datadog's CaseCommentRequest and CaseUpdateCommentRequest)."""

from __future__ import annotations

from typing import Any, Literal

from casem.services.case_api.schemas import Answer, Strict


class CommentAttributes(Strict):
    # Any: the domain validates the message so a wrong type gets the same precise error as an empty one.
    comment: Any


class CommentData(Strict):
    type: Literal["case"]
    attributes: CommentAttributes


class CommentRequest(Strict):
    """Both the create and the update document: {"data": {"type": "case", "attributes": {"comment": ...}}}."""

    data: CommentData


# -- answers (serialize_cell in views.py) ------------------------------------------------------------------------


class CellAuthorContent(Answer):
    id: str
    handle: str
    email: str
    name: str | None = None


class CellAuthor(Answer):
    type: Literal["USER"]
    content: CellAuthorContent


class TimelineCellAttributes(Answer):
    type: str
    cell_content: dict[str, Any]
    created_at: str
    author: CellAuthor | None = None
    modified_at: str | None = None
    deleted_at: str | None = None


class TimelineCellResource(Answer):
    id: str
    type: Literal["timeline_cell"]
    attributes: TimelineCellAttributes


class TimelineResponse(Answer):
    data: list[TimelineCellResource]
