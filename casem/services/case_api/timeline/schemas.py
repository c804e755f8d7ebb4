"""Request documents for case comments (Datadog's CaseCommentRequest and CaseUpdateCommentRequest)."""

from __future__ import annotations

from typing import Any, Literal

from casem.services.case_api.schemas import Strict


class CommentAttributes(Strict):
    # Any: the domain validates the message so a wrong type gets the same precise error as an empty one.
    comment: Any


class CommentData(Strict):
    type: Literal["case"]
    attributes: CommentAttributes


class CommentRequest(Strict):
    """Both the create and the update document: {"data": {"type": "case", "attributes": {"comment": ...}}}."""

    data: CommentData
