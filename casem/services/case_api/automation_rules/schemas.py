"""Request documents of the automation-rule API (Datadog's AutomationRule*) and of casem's per-project
SLA, due-date reminder and duplicate detection settings."""

from __future__ import annotations

from typing import Any, Literal

from casem.services.case_api.schemas import Answer, Strict, ToOne


class TriggerData(Strict):
    approval_type: str | None = None
    change_type: str | None = None
    field: str | None = None
    from_status_name: str | None = None
    to_status_name: str | None = None


class Trigger(Strict):
    type: str
    data: TriggerData | None = None


class ActionData(Strict):
    # Datadog's members...
    handle: str | None = None
    agent_type: str | None = None
    assigned_agent_id: str | None = None
    # ...and those of casem's extension actions (ASSIGN_USER, SET_PRIORITY, SET_STATUS, ADD_COMMENT).
    assignee_id: str | None = None
    priority: str | None = None
    status_name: str | None = None
    comment: str | None = None


class Action(Strict):
    type: str
    data: ActionData


class RuleAttributes(Strict):
    action: Action
    name: str
    state: str | None = None
    trigger: Trigger


class RuleCreate(Strict):
    type: Literal["rule"]
    attributes: RuleAttributes


class RuleCreateRequest(Strict):
    data: RuleCreate


class RuleUpdate(Strict):
    type: Literal["rule"]
    attributes: RuleAttributes | None = None


class RuleUpdateRequest(Strict):
    data: RuleUpdate


class SlaTarget(Strict):
    acknowledge_seconds: int | None = None
    close_seconds: int | None = None


class SlaAttributes(Strict):
    targets: dict[str, SlaTarget]


class SlaDocument(Strict):
    type: Literal["sla_policy"]
    attributes: SlaAttributes


class SlaRequest(Strict):
    data: SlaDocument


class RemindersAttributes(Strict):
    lead_times_seconds: list[int]


class RemindersDocument(Strict):
    type: Literal["reminder_policy"]
    attributes: RemindersAttributes


class RemindersRequest(Strict):
    data: RemindersDocument


class DuplicatesAttributes(Strict):
    enabled: bool | None = None
    threshold: float | None = None
    window_seconds: int | None = None
    auto_merge: bool | None = None


class DuplicatesDocument(Strict):
    type: Literal["duplicate_detection"]
    attributes: DuplicatesAttributes


class DuplicatesRequest(Strict):
    data: DuplicatesDocument


# -- answers (serialize_rule and the settings documents in views.py) -------------------------------------------


class RuleAnswerAttributes(Answer):
    action: Any
    created_at: str
    name: str
    state: str
    trigger: Any
    modified_at: str | None = None


class RuleAnswerRelationships(Answer):
    created_by: ToOne
    modified_by: ToOne


class RuleResource(Answer):
    id: str
    type: Literal["rule"]
    attributes: RuleAnswerAttributes
    relationships: RuleAnswerRelationships


class RuleResponse(Answer):
    data: RuleResource


class RulesResponse(Answer):
    data: list[RuleResource]


class SlaAnswerAttributes(Answer):
    targets: dict[str, Any]


class SlaResource(Answer):
    id: str
    type: Literal["sla_policy"]
    attributes: SlaAnswerAttributes


class SlaResponse(Answer):
    data: SlaResource


class RemindersAnswerAttributes(Answer):
    lead_times_seconds: list[int]


class RemindersResource(Answer):
    id: str
    type: Literal["reminder_policy"]
    attributes: RemindersAnswerAttributes


class RemindersResponse(Answer):
    data: RemindersResource


class DuplicatesResource(Answer):
    id: str
    type: Literal["duplicate_detection"]
    attributes: dict[str, Any]


class DuplicatesResponse(Answer):
    data: DuplicatesResource
