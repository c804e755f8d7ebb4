"""Answer documents of the attachment routes (serialize_attachment in views.py)."""

from __future__ import annotations

from typing import Literal

from casem.services.case_api.schemas import Answer, ToOne


class AttachmentAnswerAttributes(Answer):
    filename: str
    content_type: str
    size: int
    sha256: str
    state: str
    detail: str | None
    created_at: str
    modified_at: str | None
    expires_at: str


class AttachmentAnswerRelationships(Answer):
    case: ToOne
    uploaded_by: ToOne


class AttachmentResource(Answer):
    id: str
    type: Literal["attachment"]
    attributes: AttachmentAnswerAttributes
    relationships: AttachmentAnswerRelationships


class AttachmentResponse(Answer):
    data: AttachmentResource


class AttachmentsResponse(Answer):
    data: list[AttachmentResource]
