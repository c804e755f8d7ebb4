from __future__ import annotations

from typing import Any, Literal

from casem.services.case_api.schemas import NullableRelationship, Relationship, Strict


class CaseCreateAttributes(Strict):
    title: Any
    type_id: str
    description: Any = None
    priority: Any = None
    status_name: str | None = None
    custom_attributes: dict[str, Any] | None = None


class CaseCreateRelationships(Strict):
    project: Relationship
    assignee: NullableRelationship | None = None


class CaseCreate(Strict):
    type: Literal["case"]
    attributes: CaseCreateAttributes
    relationships: CaseCreateRelationships


class CaseCreateRequest(Strict):
    data: CaseCreate
