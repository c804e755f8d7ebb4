from __future__ import annotations

from typing import Any, Literal

from casem.services.case_api.schemas import Strict


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
