"""Request document of a merge: {"data": {"type": "merge", "relationships": {"duplicates": {"data": [...]}}}}."""

from __future__ import annotations

from typing import Literal

from casem.services.case_api.schemas import Strict


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
