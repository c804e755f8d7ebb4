"""Request document of a merge: {"data": {"type": "merge", "relationships": {"duplicates": {"data": [...]}}}}."""

from __future__ import annotations

from typing import Literal

from casem.services.case_api.schemas import Answer, Strict, ToMany, ToOne


class CaseIdentifier(Strict):
    id: str  # a case uuid or key (PROJ-12)
    type: Literal["case"]


class DuplicatesRelationship(Strict):
    data: list[CaseIdentifier]


class MergeRelationships(Strict):
    duplicates: DuplicatesRelationship


class MergeDocument(Strict):
    type: Literal["merge"]
    relationships: MergeRelationships


class MergeCreateRequest(Strict):
    data: MergeDocument


# -- answers (serialize_merge in views.py) ---------------------------------------------------------------------


class MergeResult(Answer):
    case_id: str
    outcome: str
    cells_copied: int
    watchers_added: int
    done_at: str


class MergeAnswerAttributes(Answer):
    status: str
    source: str
    workflow_id: str
    detail: str | None
    created_at: str
    started_at: str | None
    completed_at: str | None
    results: list[MergeResult]


class MergeAnswerRelationships(Answer):
    primary: ToOne
    duplicates: ToMany


class MergeResource(Answer):
    id: str
    type: Literal["merge"]
    attributes: MergeAnswerAttributes
    relationships: MergeAnswerRelationships


class MergeResponse(Answer):
    data: MergeResource
