from __future__ import annotations

from typing import Literal

from casem.services.case_api.schemas import Answer, Strict, ToOne


class CaseViewCreateAttributes(Strict):
    name: str
    project_id: str
    query: str
    np_rule_id: str | None = None


class CaseViewCreate(Strict):
    type: Literal["view"]
    attributes: CaseViewCreateAttributes


class CaseViewCreateRequest(Strict):
    data: CaseViewCreate


class CaseViewUpdateAttributes(Strict):
    name: str | None = None
    query: str | None = None
    np_rule_id: str | None = None  # null detaches the view's notification rule


class CaseViewUpdate(Strict):
    type: Literal["view"]
    attributes: CaseViewUpdateAttributes | None = None


class CaseViewUpdateRequest(Strict):
    data: CaseViewUpdate


# -- answers (serialize_view in views.py) ----------------------------------------------------------------------


class CaseViewAnswerAttributes(Answer):
    name: str
    query: str
    created_at: str
    modified_at: str | None
    np_rule_id: str | None = None


class CaseViewAnswerRelationships(Answer):
    created_by: ToOne
    modified_by: ToOne
    project: ToOne


class CaseViewResource(Answer):
    id: str
    type: Literal["view"]
    attributes: CaseViewAnswerAttributes
    relationships: CaseViewAnswerRelationships


class CaseViewResponse(Answer):
    data: CaseViewResource


class CaseViewsResponse(Answer):
    data: list[CaseViewResource]
