"""Project settings (Datadog's ProjectSettings) through the official client: validated with the client's shapes,
stored with PATCH semantics per section, and acting: auto-transition on self-assignment here; auto-close in
tests/caseworker/test_auto_close.py; notifications in tests/handlers/test_project_notifications.py."""

from __future__ import annotations

import pytest
from datadog_api_client.v2.model.auto_close_inactive_cases import AutoCloseInactiveCases
from datadog_api_client.v2.model.auto_transition_assigned_cases import AutoTransitionAssignedCases
from datadog_api_client.v2.model.case_assign import CaseAssign
from datadog_api_client.v2.model.case_assign_attributes import CaseAssignAttributes
from datadog_api_client.v2.model.case_assign_request import CaseAssignRequest
from datadog_api_client.v2.model.case_resource_type import CaseResourceType
from datadog_api_client.v2.model.integration_incident import IntegrationIncident
from datadog_api_client.v2.model.integration_incident_severity_config import IntegrationIncidentSeverityConfig
from datadog_api_client.v2.model.integration_monitor import IntegrationMonitor
from datadog_api_client.v2.model.project_notification_settings import ProjectNotificationSettings
from datadog_api_client.v2.model.project_resource_type import ProjectResourceType
from datadog_api_client.v2.model.project_settings import ProjectSettings
from datadog_api_client.v2.model.project_update import ProjectUpdate
from datadog_api_client.v2.model.project_update_attributes import ProjectUpdateAttributes
from datadog_api_client.v2.model.project_update_request import ProjectUpdateRequest

from casem.domain.cases import STANDARD_TYPE_ID
from tests.api.helpers import add_user, as_user, make_case, make_project
from tests.support.api_client import OrgClient


def update_settings(org: OrgClient, project_id: str, **sections):
    body = ProjectUpdateRequest(
        data=ProjectUpdate(
            attributes=ProjectUpdateAttributes(settings=ProjectSettings(**sections)), type=ProjectResourceType.PROJECT
        )
    )
    return org.cases.update_project(project_id=project_id, body=body).data


def patch_raw(org: OrgClient, project_id: str, settings: object):
    body = {"data": {"type": "project", "attributes": {"settings": settings}}}
    return org.http.patch(f"/api/v2/cases/projects/{project_id}", json=body)


def test_settings_round_trip_through_the_client_and_merge_per_section(org: OrgClient) -> None:
    project = make_project(org)
    updated = update_settings(
        org,
        project.id,
        auto_close_inactive_cases=AutoCloseInactiveCases(enabled=True, max_inactive_time_in_secs=7 * 86400),
        notification=ProjectNotificationSettings(enabled=True, destinations=[1, 3], notify_on_case_assignment=True),
    )
    settings = updated.attributes.settings
    assert settings.auto_close_inactive_cases.max_inactive_time_in_secs == 7 * 86400
    assert settings.notification.destinations == [1, 3]

    # A later PATCH of one member leaves the rest of that section, and the other sections, as they were.
    update_settings(org, project.id, notification=ProjectNotificationSettings(notify_on_case_comment=True))
    stored = org.cases.get_project(project_id=project.id).data.attributes.settings
    assert stored.notification.notify_on_case_assignment is True
    assert stored.notification.notify_on_case_comment is True
    assert stored.notification.destinations == [1, 3]
    assert stored.auto_close_inactive_cases.enabled is True


@pytest.mark.parametrize(
    ("settings", "pointer", "fragment"),
    [
        ({"notification": {"enabld": True}}, "/data/attributes/settings/notification/enabld", "not a known field"),
        ({"auto_close": {"enabled": True}}, "/data/attributes/settings/auto_close", "not a known field"),
        ({"notification": {"enabled": "yes"}}, "/data/attributes/settings/notification/enabled", "boolean"),
        ({"notification": {"destinations": [1, 9]}}, "/data/attributes/settings/notification/destinations/1", "9"),
        (
            {"auto_close_inactive_cases": {"enabled": True, "max_inactive_time_in_secs": 5}},
            "/data/attributes/settings/auto_close_inactive_cases/max_inactive_time_in_secs",
            "from 60",
        ),
        (
            {"auto_close_inactive_cases": {"enabled": True}},
            "/data/attributes/settings/auto_close_inactive_cases/max_inactive_time_in_secs",
            "needs",
        ),
        (
            {"auto_close_inactive_cases": {"max_inactive_time_in_secs": "3600"}},
            "/data/attributes/settings/auto_close_inactive_cases/max_inactive_time_in_secs",
            "integer",
        ),
        (
            {"auto_transition_assigned_cases": {"on_self": True}},
            "/data/attributes/settings/auto_transition_assigned_cases/on_self",
            "not a known field",
        ),
        (
            {"integration_monitor": {"case_type_id": "3f2c1d4e-0000-4000-8000-000000000000"}},
            "/data/attributes/settings/integration_monitor/case_type_id",
            "unknown case type",
        ),
        (
            {"integration_incident": {"severity_config": {"priority_mapping": {"SEV-1": "P9"}}}},
            "/data/attributes/settings/integration_incident/severity_config/priority_mapping/SEV-1",
            "P9",
        ),
        (
            {"integration_incident": {"field_mappings": [{"case_field": "title", "colour": "red"}]}},
            "/data/attributes/settings/integration_incident/field_mappings/0/colour",
            "not a known field",
        ),
    ],
)
def test_bad_settings_are_a_400_with_a_pointer_and_change_nothing(
    org: OrgClient, settings: dict, pointer: str, fragment: str
) -> None:
    project = make_project(org)
    response = patch_raw(org, project.id, settings)
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["source"]["pointer"] == pointer
    assert fragment in error["detail"]
    assert "settings" not in org.http.get(f"/api/v2/cases/projects/{project.id}").json()["data"]["attributes"]


def test_monitor_and_incident_settings_are_stored_and_said_to_have_no_effect(org: OrgClient) -> None:
    project = make_project(org)
    monitor = IntegrationMonitor(enabled=True, case_type_id=STANDARD_TYPE_ID, handle="@case-ops")
    incident = IntegrationIncident(
        enabled=True,
        incident_type="security",
        severity_config=IntegrationIncidentSeverityConfig(priority_mapping={"SEV-1": "P1"}),
    )
    stored = update_settings(org, project.id, integration_monitor=monitor, integration_incident=incident)
    assert stored.attributes.settings.integration_monitor.handle == "@case-ops"
    assert stored.attributes.settings.integration_incident.severity_config.priority_mapping == {"SEV-1": "P1"}
    # Raw: the answer says these are stored without effect (no silent ignore).
    answer = patch_raw(org, project.id, {"integration_monitor": {"enabled": True}}).json()
    [warning] = answer["meta"]["warnings"]
    assert "no monitor product" in warning
    # Disabled: nothing to warn about.
    assert "meta" not in patch_raw(org, project.id, {"integration_monitor": {"enabled": False}}).json()


def _assign(org: OrgClient, case_id: str, user_id: str):
    body = CaseAssignRequest(
        data=CaseAssign(attributes=CaseAssignAttributes(assignee_id=user_id), type=CaseResourceType.CASE)
    )
    return org.cases.assign_case(case_id=case_id, body=body).data


def test_self_assignment_moves_an_open_case_in_progress_when_the_setting_is_on(org: OrgClient) -> None:
    project = make_project(org)
    bob = add_user(org, "bob@example.com", "Bob")
    before = make_case(org, project.id, "Before the setting")
    assert str(_assign(org, before.id, org.user_id).attributes.status) == "OPEN"  # off: nothing moves

    update_settings(
        org,
        project.id,
        auto_transition_assigned_cases=AutoTransitionAssignedCases(
            auto_transition_assigned_cases_on_self_assigned=True
        ),
    )
    mine = make_case(org, project.id, "Mine")
    assert str(_assign(org, mine.id, org.user_id).attributes.status) == "IN_PROGRESS"
    # Assigning someone else is not taking it yourself.
    theirs = make_case(org, project.id, "Theirs")
    assert str(_assign(org, theirs.id, bob).attributes.status) == "OPEN"
    # Bob taking a case himself is.
    his = make_case(org, project.id, "His")
    assert str(_assign(as_user(org, bob), his.id, bob).attributes.status) == "IN_PROGRESS"
    # The timeline shows both changes, the assignment first.
    cells = org.http.get(f"/api/v2/cases/{mine.id}/timelines?sort[ascending]=true").json()["data"]
    assert [c["attributes"]["type"] for c in cells][-2:] == ["ASSIGNEE_CHANGE", "STATUS_CHANGE"]
