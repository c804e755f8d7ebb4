"""Automation rules through the official client (create, list, get, update, enable, disable, delete), their
validation over raw HTTP, and casem's per-project SLA, reminder and duplicate detection settings."""

from __future__ import annotations

import uuid

import pytest
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.model.automation_rule_action import AutomationRuleAction
from datadog_api_client.v2.model.automation_rule_action_data import AutomationRuleActionData
from datadog_api_client.v2.model.automation_rule_action_type import AutomationRuleActionType
from datadog_api_client.v2.model.automation_rule_create import AutomationRuleCreate
from datadog_api_client.v2.model.automation_rule_create_attributes import AutomationRuleCreateAttributes
from datadog_api_client.v2.model.automation_rule_create_request import AutomationRuleCreateRequest
from datadog_api_client.v2.model.automation_rule_trigger import AutomationRuleTrigger
from datadog_api_client.v2.model.automation_rule_trigger_data import AutomationRuleTriggerData
from datadog_api_client.v2.model.automation_rule_trigger_type import AutomationRuleTriggerType
from datadog_api_client.v2.model.automation_rule_update import AutomationRuleUpdate
from datadog_api_client.v2.model.automation_rule_update_request import AutomationRuleUpdateRequest
from datadog_api_client.v2.model.case_automation_rule_resource_type import CaseAutomationRuleResourceType
from datadog_api_client.v2.model.case_automation_rule_state import CaseAutomationRuleState

from tests.api.helpers import make_project
from tests.support.api_client import OrgClient


def workflow_rule(
    name: str = "Auto-assign workflow", handle: str = "workflow-handle-123"
) -> AutomationRuleCreateAttributes:
    return AutomationRuleCreateAttributes(
        name=name,
        state=CaseAutomationRuleState.ENABLED,
        trigger=AutomationRuleTrigger(type=AutomationRuleTriggerType.CASE_CREATED, data=AutomationRuleTriggerData()),
        action=AutomationRuleAction(
            type=AutomationRuleActionType.EXECUTE_WORKFLOW, data=AutomationRuleActionData(handle=handle)
        ),
    )


def create_body(attributes: AutomationRuleCreateAttributes) -> AutomationRuleCreateRequest:
    return AutomationRuleCreateRequest(
        data=AutomationRuleCreate(attributes=attributes, type=CaseAutomationRuleResourceType.RULE)
    )


def test_rule_lifecycle_through_the_official_client(org: OrgClient) -> None:
    project = make_project(org)
    api = org.cases
    created = api.create_case_automation_rule(project_id=project.id, body=create_body(workflow_rule())).data
    assert created.type == CaseAutomationRuleResourceType.RULE
    assert created.attributes.name == "Auto-assign workflow"
    assert created.attributes.state == CaseAutomationRuleState.ENABLED
    assert created.attributes.action.data.handle == "workflow-handle-123"
    assert created.relationships.created_by.data.id == org.user_id
    second = api.create_case_automation_rule(project_id=project.id, body=create_body(workflow_rule("second"))).data

    listed = api.list_case_automation_rules(project_id=project.id).data
    assert [r.id for r in listed] == [created.id, second.id]
    assert api.get_case_automation_rule(project_id=project.id, rule_id=created.id).data.attributes.name == (
        "Auto-assign workflow"
    )

    update = AutomationRuleUpdateRequest(
        data=AutomationRuleUpdate(
            type=CaseAutomationRuleResourceType.RULE,
            attributes=AutomationRuleCreateAttributes(
                name="Hand closed cases to the review agent",
                trigger=AutomationRuleTrigger(
                    type=AutomationRuleTriggerType.STATUS_TRANSITIONED,
                    data=AutomationRuleTriggerData(from_status_name="In Progress", to_status_name="Closed"),
                ),
                action=AutomationRuleAction(
                    type=AutomationRuleActionType.ASSIGN_AGENT,
                    data=AutomationRuleActionData(agent_type="reviewer", assigned_agent_id="agent-7"),
                ),
            ),
        )
    )
    updated = api.update_case_automation_rule(project_id=project.id, rule_id=created.id, body=update).data
    assert updated.attributes.trigger.data.to_status_name == "Closed"
    assert updated.attributes.action.type == AutomationRuleActionType.ASSIGN_AGENT
    assert updated.attributes.state == CaseAutomationRuleState.ENABLED  # not sent: kept
    assert updated.attributes.modified_at is not None

    disabled = api.disable_case_automation_rule(project_id=project.id, rule_id=created.id).data
    assert disabled.attributes.state == CaseAutomationRuleState.DISABLED
    fetched = api.get_case_automation_rule(project_id=project.id, rule_id=created.id).data
    assert fetched.attributes.state == CaseAutomationRuleState.DISABLED
    enabled = api.enable_case_automation_rule(project_id=project.id, rule_id=created.id).data
    assert enabled.attributes.state == CaseAutomationRuleState.ENABLED

    api.delete_case_automation_rule(project_id=project.id, rule_id=created.id)
    with pytest.raises(NotFoundException):
        api.get_case_automation_rule(project_id=project.id, rule_id=created.id)
    assert [r.id for r in api.list_case_automation_rules(project_id=project.id).data] == [second.id]
    # Rules belong to their project: the same id under another project of the org is not found.
    elsewhere = make_project(org)
    with pytest.raises(NotFoundException):
        api.enable_case_automation_rule(project_id=elsewhere.id, rule_id=second.id)


def test_invalid_rules_are_400_and_unknown_ids_404(org: OrgClient) -> None:
    project = make_project(org)
    url = f"/api/v2/cases/projects/{project.id}/rules"

    def post(attributes: dict) -> tuple[int, dict]:
        response = org.http.post(url, json={"data": {"type": "rule", "attributes": attributes}})
        return response.status_code, response.json()

    base = {
        "name": "r",
        "trigger": {"type": "CASE_CREATED"},
        "action": {"type": "EXECUTE_WORKFLOW", "data": {"handle": "h"}},
    }
    cases = [
        ({**base, "trigger": {"type": "CASE_EXPLODED"}}, "/data/attributes/trigger/type"),
        ({**base, "trigger": {"type": "ATTRIBUTE_VALUE_CHANGED", "data": {}}}, "/data/attributes/trigger/data/field"),
        (
            {**base, "trigger": {"type": "STATUS_TRANSITIONED", "data": {"to_status_name": "Done"}}},
            "/data/attributes/trigger/data/to_status_name",
        ),
        ({**base, "action": {"type": "EXECUTE_WORKFLOW", "data": {}}}, "/data/attributes/action/data/handle"),
        (
            {**base, "action": {"type": "SET_PRIORITY", "data": {"priority": "P9"}}},
            "/data/attributes/action/data/priority",
        ),
        (
            {**base, "action": {"type": "ASSIGN_USER", "data": {"assignee_id": str(uuid.uuid4())}}},
            "/data/attributes/action/data/assignee_id",
        ),
        ({**base, "state": "PAUSED"}, "/data/attributes/state"),
        ({**base, "name": " "}, "/data/attributes/name"),
        ({**base, "colour": "red"}, "/data/attributes/colour"),
    ]
    for attributes, pointer in cases:
        status, body = post(attributes)
        assert status == 400, (attributes, body)
        assert body["errors"][0]["source"]["pointer"] == pointer, body
    assert org.http.get(f"{url}").json() == {"data": []}  # nothing was created

    # casem's extension actions are accepted over plain HTTP.
    status, body = post({**base, "action": {"type": "ASSIGN_USER", "data": {"assignee_id": org.user_id.upper()}}})
    assert status == 201 and body["data"]["attributes"]["action"]["data"]["assignee_id"] == org.user_id

    with pytest.raises(ApiException) as bad:
        org.cases.get_case_automation_rule(project_id=project.id, rule_id="not-a-uuid")
    assert bad.value.status == 400
    with pytest.raises(NotFoundException):
        org.cases.disable_case_automation_rule(project_id=project.id, rule_id=str(uuid.uuid4()))
    with pytest.raises(NotFoundException):
        org.cases.create_case_automation_rule(project_id=str(uuid.uuid4()), body=create_body(workflow_rule()))
    with pytest.raises(NotFoundException):
        org.cases.list_case_automation_rules(project_id=str(uuid.uuid4()))


def test_sla_reminder_and_duplicate_settings(org: OrgClient) -> None:
    project = make_project(org)
    base = f"/api/v2/casem/projects/{project.id}"
    assert org.http.get(f"{base}/sla").json()["data"]["attributes"] == {"targets": {}}
    assert org.http.get(f"{base}/reminders").json()["data"]["attributes"] == {"lead_times_seconds": [86400, 0]}
    assert org.http.get(f"{base}/duplicate_detection").json()["data"]["attributes"] == {
        "enabled": True,
        "threshold": 0.6,
        "window_seconds": 7 * 86400,
        "auto_merge": False,
    }

    targets = {"P1": {"acknowledge_seconds": 900, "close_seconds": 14400}, "P2": {"acknowledge_seconds": 3600}}
    response = org.http.put(f"{base}/sla", json={"data": {"type": "sla_policy", "attributes": {"targets": targets}}})
    assert response.status_code == 200, response.text
    expected = {**targets, "P2": {"acknowledge_seconds": 3600, "close_seconds": None}}
    assert response.json()["data"]["attributes"]["targets"] == expected
    assert org.http.get(f"{base}/sla").json()["data"]["attributes"]["targets"] == expected

    reminders = {"data": {"type": "reminder_policy", "attributes": {"lead_times_seconds": [3600, 0, 3600, 172800]}}}
    assert org.http.put(f"{base}/reminders", json=reminders).json()["data"]["attributes"] == {
        "lead_times_seconds": [172800, 3600, 0]
    }
    duplicates = {"data": {"type": "duplicate_detection", "attributes": {"threshold": 0.8}}}
    assert org.http.put(f"{base}/duplicate_detection", json=duplicates).json()["data"]["attributes"] == {
        "enabled": True,
        "threshold": 0.8,
        "window_seconds": 7 * 86400,
        "auto_merge": False,
    }

    for path, document, pointer in [
        ("sla", {"type": "sla_policy", "attributes": {"targets": {"P7": {}}}}, "/data/attributes/targets/P7"),
        (
            "sla",
            {"type": "sla_policy", "attributes": {"targets": {"P1": {"acknowledge_seconds": 0}}}},
            "/data/attributes/targets/P1/acknowledge_seconds",
        ),
        ("reminders", {"type": "reminder_policy", "attributes": {"lead_times_seconds": [-5]}}, None),
        ("duplicate_detection", {"type": "duplicate_detection", "attributes": {"threshold": 1.5}}, None),
    ]:
        response = org.http.put(f"{base}/{path}", json={"data": document})
        assert response.status_code == 400, response.text
        if pointer:
            assert response.json()["errors"][0]["source"]["pointer"] == pointer
    assert org.http.get(f"{base}/sla").json()["data"]["attributes"]["targets"] == expected  # unchanged
    assert org.http.get(f"/api/v2/casem/projects/{uuid.uuid4()}/sla").status_code == 404
