from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from casem.services.case_api.schemas import Answer, NullableUserRelationship, ProjectRelationship, Strict, ToOne


class CaseCreateAttributes(Strict):
    title: Any
    type_id: str
    description: Any = None
    priority: Any = None
    status_name: str | None = None
    custom_attributes: dict[str, Any] | None = None


class CaseCreateRelationships(Strict):
    project: ProjectRelationship
    assignee: NullableUserRelationship | None = None


class CaseCreate(Strict):
    type: Literal["case"]
    attributes: CaseCreateAttributes
    relationships: CaseCreateRelationships


class CaseCreateRequest(Strict):
    data: CaseCreate


# -- updates: every body is {"data": {"type": "case", "attributes": {...}}}; values are checked by the domain ----


class TitleAttributes(Strict):
    title: Any


class TitleUpdate(Strict):
    type: Literal["case"]
    attributes: TitleAttributes


class TitleUpdateRequest(Strict):
    data: TitleUpdate


class DescriptionAttributes(Strict):
    description: Any


class DescriptionUpdate(Strict):
    type: Literal["case"]
    attributes: DescriptionAttributes


class DescriptionUpdateRequest(Strict):
    data: DescriptionUpdate


class StatusAttributes(Strict):
    # Datadog's CaseUpdateStatusAttributes has both members optional; one of them is needed.
    status: Any = None
    status_name: Any = None


class StatusUpdate(Strict):
    type: Literal["case"]
    attributes: StatusAttributes


class StatusUpdateRequest(Strict):
    data: StatusUpdate


class PriorityAttributes(Strict):
    priority: Any


class PriorityUpdate(Strict):
    type: Literal["case"]
    attributes: PriorityAttributes


class PriorityUpdateRequest(Strict):
    data: PriorityUpdate


class AttributesAttributes(Strict):
    attributes: Any


class AttributesUpdate(Strict):
    type: Literal["case"]
    attributes: AttributesAttributes


class AttributesUpdateRequest(Strict):
    data: AttributesUpdate


class CustomAttributeValue(Strict):
    # Datadog's CustomAttributeValue: the type and cardinality are restated, and must match the config.
    type: Any
    is_multi: Any
    value: Any


class CustomAttributeUpdate(Strict):
    type: Literal["case"]
    attributes: CustomAttributeValue


class CustomAttributeUpdateRequest(Strict):
    data: CustomAttributeUpdate


class DueDateAttributes(Strict):
    due_date: Any


class DueDateUpdate(Strict):
    type: Literal["case"]
    attributes: DueDateAttributes


class DueDateUpdateRequest(Strict):
    data: DueDateUpdate


class ResolvedReasonAttributes(Strict):
    security_resolved_reason: Any


class ResolvedReasonUpdate(Strict):
    type: Literal["case"]
    attributes: ResolvedReasonAttributes


class ResolvedReasonUpdateRequest(Strict):
    data: ResolvedReasonUpdate


class AssignAttributes(Strict):
    assignee_id: Any


class Assign(Strict):
    type: Literal["case"]
    attributes: AssignAttributes


class AssignRequest(Strict):
    data: Assign


class CaseEmpty(Strict):
    type: Literal["case"]


class CaseEmptyRequest(Strict):
    """Archive, unarchive and unassign carry no attributes, only the resource type."""

    data: CaseEmpty


class ProjectData(Strict):
    id: Any
    type: Literal["project"]


class MoveRequest(Strict):
    """move_case_to_project's body is a bare ProjectRelationship."""

    data: ProjectData


class BulkAttributes(Strict):
    case_ids: list[Any]
    type: Any
    payload: dict[str, Any] | None = None


class Bulk(Strict):
    type: Literal["bulk"]
    attributes: BulkAttributes


class BulkUpdateRequest(Strict):
    data: Bulk


class AggregateGroupBy(Strict):
    groups: list[str]
    limit: int | None = None


class AggregateAttributes(Strict):
    group_by: AggregateGroupBy
    query_filter: str


class AggregateData(Strict):
    type: Literal["aggregate"]
    attributes: AggregateAttributes


class AggregateRequest(Strict):
    data: AggregateData


# -- answers (serialize_case in views.py) ------------------------------------------------------------------------


class CaseAnswerAttributes(Answer):
    key: str
    title: str
    description: str
    status: str
    status_group: str
    priority: str
    type_id: str
    type: Literal["STANDARD"] | None = Field(None, description="Only on cases of the standard type.")
    attributes: dict[str, list[str]]
    custom_attributes: dict[str, Any]
    created_at: str
    modified_at: str | None
    closed_at: str | None
    archived_at: str | None
    due_date: str | None
    resolved_reason: str | None
    jira_issue: dict[str, Any] | None = None
    service_now_ticket: dict[str, Any] | None = None


class CaseAnswerRelationships(Answer):
    assignee: ToOne
    created_by: ToOne
    modified_by: ToOne
    project: ToOne


class CaseResource(Answer):
    id: str
    type: Literal["case"]
    attributes: CaseAnswerAttributes
    relationships: CaseAnswerRelationships


class CaseResponse(Answer):
    data: CaseResource


class CasesPage(Answer):
    current: int
    size: int
    total: int


class CasesMeta(Answer):
    page: CasesPage


class CasesResponse(Answer):
    data: list[CaseResource]
    meta: CasesMeta


class CountGroupValue(Answer):
    value: Any
    count: int


class CountGroup(Answer):
    group: str
    group_values: list[CountGroupValue]


class CaseCountAttributes(Answer):
    groups: list[CountGroup]
    total: int


class CaseCountResource(Answer):
    id: str
    type: Literal["case_count"]
    attributes: CaseCountAttributes


class CaseCountResponse(Answer):
    data: CaseCountResource


class AggregateGroupAnswer(Answer):
    group: Any
    value: list[float]


class CaseAggregateAttributes(Answer):
    total: float
    groups: list[AggregateGroupAnswer]


class CaseAggregateResource(Answer):
    id: str
    type: Literal["aggregate"]
    attributes: CaseAggregateAttributes


class CaseAggregateResponse(Answer):
    data: CaseAggregateResource
