from __future__ import annotations

from typing import Literal

from casem.services.case_api.schemas import Strict


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
