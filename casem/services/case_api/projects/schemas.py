from __future__ import annotations

from typing import Any, Literal

from pydantic import StrictBool, StrictInt, StrictStr

from casem.services.case_api.schemas import Strict

# -- project settings: the shapes of datadog_api_client's ProjectSettings and its parts ------------------------


class AutoCloseInactiveCases(Strict):
    enabled: StrictBool | None = None
    max_inactive_time_in_secs: StrictInt | None = None


class AutoTransitionAssignedCases(Strict):
    auto_transition_assigned_cases_on_self_assigned: StrictBool | None = None


class ProjectNotificationSettings(Strict):
    destinations: list[StrictInt] | None = None
    enabled: StrictBool | None = None
    notify_on_case_assignment: StrictBool | None = None
    notify_on_case_closed: StrictBool | None = None
    notify_on_case_comment: StrictBool | None = None
    notify_on_case_comment_mention: StrictBool | None = None
    notify_on_case_priority_change: StrictBool | None = None
    notify_on_case_status_change: StrictBool | None = None
    notify_on_case_unassignment: StrictBool | None = None


class IntegrationMonitor(Strict):
    auto_resolve_enabled: StrictBool | None = None
    case_type_id: StrictStr | None = None
    enabled: StrictBool | None = None
    handle: StrictStr | None = None


class IntegrationIncidentFieldMapping(Strict):
    case_field: StrictStr | None = None
    incident_user_defined_field_id: StrictStr | None = None


class IntegrationIncidentSeverityConfig(Strict):
    priority_mapping: dict[str, StrictStr] | None = None


class IntegrationIncident(Strict):
    auto_escalation_query: StrictStr | None = None
    default_incident_commander: StrictStr | None = None
    enabled: StrictBool | None = None
    field_mappings: list[IntegrationIncidentFieldMapping] | None = None
    incident_type: StrictStr | None = None
    severity_config: IntegrationIncidentSeverityConfig | None = None


class ProjectSettings(Strict):
    auto_close_inactive_cases: AutoCloseInactiveCases | None = None
    auto_transition_assigned_cases: AutoTransitionAssignedCases | None = None
    notification: ProjectNotificationSettings | None = None
    integration_monitor: IntegrationMonitor | None = None
    integration_incident: IntegrationIncident | None = None
    # The on-call, Jira and ServiceNow integrations read their own sections: kept as sent.
    integration_on_call: dict[str, Any] | None = None
    integration_jira: dict[str, Any] | None = None
    integration_service_now: dict[str, Any] | None = None


class ProjectCreateAttributes(Strict):
    key: str
    name: str
    enabled_custom_case_types: list[str] | None = None
    team_uuid: str | None = None


class ProjectCreate(Strict):
    type: Literal["project"]
    attributes: ProjectCreateAttributes


class ProjectCreateRequest(Strict):
    data: ProjectCreate


class ProjectUpdateAttributes(Strict):
    name: str | None = None
    enabled_custom_case_types: list[str] | None = None
    team_uuid: str | None = None
    settings: ProjectSettings | None = None
    columns_config: dict[str, Any] | None = None


class ProjectUpdate(Strict):
    type: Literal["project"]
    attributes: ProjectUpdateAttributes


class ProjectUpdateRequest(Strict):
    data: ProjectUpdate
