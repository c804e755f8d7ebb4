from __future__ import annotations

from typing import Any, Literal

from casem.services.case_api.schemas import Answer, Strict


class CaseTypeAttributes(Strict):
    name: Any = None
    description: Any = None
    emoji: Any = None
    deleted_at: Any = None  # read-only in Datadog's model; accepted so echoed resources round-trip, then ignored


class CaseTypeCreate(Strict):
    type: Literal["case_type"]
    attributes: CaseTypeAttributes


class CaseTypeCreateRequest(Strict):
    data: CaseTypeCreate


class CaseTypeUpdate(Strict):
    type: Literal["case_type"]
    attributes: CaseTypeAttributes | None = None


class CaseTypeUpdateRequest(Strict):
    data: CaseTypeUpdate


# -- answers (serialize_case_type in views.py) ---------------------------------------------------------------


class CaseTypeAnswerAttributes(Answer):
    name: str
    description: str | None
    emoji: str | None
    deleted_at: str | None


class CaseTypeResource(Answer):
    id: str
    type: Literal["case_type"]
    attributes: CaseTypeAnswerAttributes


class CaseTypeResponse(Answer):
    data: CaseTypeResource


class CaseTypesResponse(Answer):
    data: list[CaseTypeResource]
