"""The case operations of CaseManagementApi through the official client against loopback Jira and ServiceNow:
create_case_jira_issue, link_jira_issue_to_case, unlink_jira_issue, create_case_service_now_ticket,
link_incident and create_case_notebook (a clear 501). Remote refusals reach the caller and the timeline."""

from __future__ import annotations

import httpx
import pytest
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.model.incident_relationship_data import IncidentRelationshipData
from datadog_api_client.v2.model.incident_resource_type import IncidentResourceType
from datadog_api_client.v2.model.jira_issue_create_attributes import JiraIssueCreateAttributes
from datadog_api_client.v2.model.jira_issue_create_data import JiraIssueCreateData
from datadog_api_client.v2.model.jira_issue_create_request import JiraIssueCreateRequest
from datadog_api_client.v2.model.jira_issue_link_attributes import JiraIssueLinkAttributes
from datadog_api_client.v2.model.jira_issue_link_data import JiraIssueLinkData
from datadog_api_client.v2.model.jira_issue_link_request import JiraIssueLinkRequest
from datadog_api_client.v2.model.jira_issue_resource_type import JiraIssueResourceType
from datadog_api_client.v2.model.notebook_create_data import NotebookCreateData
from datadog_api_client.v2.model.notebook_create_request import NotebookCreateRequest
from datadog_api_client.v2.model.notebook_resource_type import NotebookResourceType
from datadog_api_client.v2.model.relationship_to_incident_request import RelationshipToIncidentRequest
from datadog_api_client.v2.model.service_now_ticket_create_attributes import ServiceNowTicketCreateAttributes
from datadog_api_client.v2.model.service_now_ticket_create_data import ServiceNowTicketCreateData
from datadog_api_client.v2.model.service_now_ticket_create_request import ServiceNowTicketCreateRequest
from datadog_api_client.v2.model.service_now_ticket_resource_type import ServiceNowTicketResourceType

from casem.adapters.integrations import adf_to_text
from tests.api.helpers import event_types, make_case, make_project, outbox
from tests.integrations.jira_server import JiraLoopback
from tests.integrations.servicenow_server import ServiceNowLoopback
from tests.support.api_client import OrgClient
from tests.support.integration_accounts import connect_jira, connect_servicenow
from tests.support.live_server import LiveServer


def jira_issue_request(
    account_id: str, project_id: str = "10000", issue_type_id: str = "10001", **fields
) -> JiraIssueCreateRequest:
    return JiraIssueCreateRequest(
        data=JiraIssueCreateData(
            attributes=JiraIssueCreateAttributes(
                jira_account_id=account_id, project_id=project_id, issue_type_id=issue_type_id, fields=fields
            ),
            type=JiraIssueResourceType.ISSUES,
        )
    )


def timeline_types(org: OrgClient, case_id: str) -> list[str]:
    cells = org.http.get(f"/api/v2/cases/{case_id}/timelines", params={"sort[ascending]": "true"}).json()["data"]
    return [c["attributes"]["type"] for c in cells]


def timeline(org: OrgClient, case_id: str) -> list[dict]:
    return org.http.get(f"/api/v2/cases/{case_id}/timelines", params={"sort[ascending]": "true"}).json()["data"]


def test_create_case_jira_issue(live: LiveServer, org: OrgClient, jira: JiraLoopback) -> None:
    account_id = connect_jira(org, jira)["data"]["id"]
    case = make_case(org, make_project(org).id, title="Disk full on web-1", description="df shows 100%")
    org.cases.create_case_jira_issue(case_id=case.id, body=jira_issue_request(account_id, labels=["ops"]))

    issue = next(iter(jira.issues.values()))
    assert issue.summary == "Disk full on web-1" and adf_to_text(issue.description) == "df shows 100%"
    assert issue.labels == ["ops", f"casem-case-{case.id}"]
    shown = org.cases.get_case(case_id=case.id).data.attributes.jira_issue
    assert shown.status.value == "COMPLETED"
    assert shown.result.issue_key == issue.key and shown.result.issue_id == issue.id
    assert shown.result.issue_url == f"{jira.url}/browse/{issue.key}" and shown.result.project_key == "OPS"
    assert timeline_types(org, case.id)[-1] == "INTEGRATION_LINK"
    assert "case.integration_linked" in event_types(outbox(org))
    # A second request for the same case is a conflict, and creates nothing.
    with pytest.raises(ApiException) as raised:
        org.cases.create_case_jira_issue(case_id=case.id, body=jira_issue_request(account_id))
    assert raised.value.status == 409
    assert len(jira.issues) == 1


def test_a_remote_refusal_is_named_in_the_answer_and_on_the_timeline(
    live: LiveServer, org: OrgClient, jira: JiraLoopback
) -> None:
    account_id = connect_jira(org, jira)["data"]["id"]
    case = make_case(org, make_project(org).id)
    response = org.http.post(
        f"/api/v2/cases/{case.id}/relationships/jira_issues",
        json={
            "data": {
                "type": "issues",
                "attributes": {"jira_account_id": account_id, "project_id": "99999", "issue_type_id": "10001"},
            }
        },
    )
    assert response.status_code == 400
    detail = response.json()["errors"][0]["detail"]
    assert "HTTP 400" in detail and "project: valid project is required" in detail
    cells = timeline(org, case.id)
    assert cells[-1]["attributes"]["type"] == "INTEGRATION_LINK"
    assert "valid project is required" in cells[-1]["attributes"]["cell_content"]["reason"]
    assert org.cases.get_case(case_id=case.id).data.attributes.jira_issue.status.value == "FAILED"
    # A FAILED creation may be asked again, with what the remote needs.
    org.cases.create_case_jira_issue(case_id=case.id, body=jira_issue_request(account_id))
    assert org.cases.get_case(case_id=case.id).data.attributes.jira_issue.status.value == "COMPLETED"


def test_an_unavailable_remote_leaves_the_creation_to_the_sync_flavor(
    live: LiveServer, org: OrgClient, jira: JiraLoopback
) -> None:
    account_id = connect_jira(org, jira)["data"]["id"]
    case = make_case(org, make_project(org).id)
    jira.rate_limit(10, retry_after="600")  # longer than casem waits: the remote is unavailable for now
    response = org.http.post(
        f"/api/v2/cases/{case.id}/relationships/jira_issues",
        json={
            "data": {
                "type": "issues",
                "attributes": {"jira_account_id": account_id, "project_id": "10000", "issue_type_id": "10001"},
            }
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["data"]["attributes"]["jira_issue"]["status"] == "IN_PROGRESS"
    assert event_types(outbox(org))[-1] == "case.integration_link_requested"
    assert jira.issues == {}


def test_link_and_unlink_an_existing_jira_issue(live: LiveServer, org: OrgClient, jira: JiraLoopback) -> None:
    connect_jira(org, jira)
    made = httpx.post(
        f"{jira.url}/rest/api/3/issue",
        auth=jira.auth_of(jira.human),
        json={"fields": {"project": {"key": "OPS"}, "issuetype": {"id": "10002"}, "summary": "Existing bug"}},
    ).json()
    case = make_case(org, make_project(org).id)
    link = JiraIssueLinkRequest(
        data=JiraIssueLinkData(
            attributes=JiraIssueLinkAttributes(jira_issue_url=f"{jira.url}/browse/{made['key']}"),
            type=JiraIssueResourceType.ISSUES,
        )
    )
    org.cases.link_jira_issue_to_case(case_id=case.id, body=link)
    shown = org.cases.get_case(case_id=case.id).data.attributes.jira_issue
    assert (
        shown.status.value == "COMPLETED"
        and shown.result.issue_key == made["key"]
        and shown.result.issue_id == made["id"]
    )
    org.cases.unlink_jira_issue(case_id=case.id)
    assert "jira_issue" not in org.http.get(f"/api/v2/cases/{case.id}").json()["data"]["attributes"]
    assert timeline_types(org, case.id)[-2:] == ["INTEGRATION_LINK", "INTEGRATION_LINK"]
    with pytest.raises(NotFoundException):
        org.cases.unlink_jira_issue(case_id=case.id)
    # URLs that name no issue, or a site the org has not connected, are 400s with the pointer.
    for url, says in [
        ("not a url", "jira_issue_url must be"),
        (f"{jira.url}/projects/OPS", "does not name an issue"),
        ("https://elsewhere.atlassian.net/browse/OPS-1", "no Jira account for https://elsewhere.atlassian.net"),
    ]:
        response = org.http.patch(
            f"/api/v2/cases/{case.id}/relationships/jira_issues",
            json={"data": {"type": "issues", "attributes": {"jira_issue_url": url}}},
        )
        assert response.status_code == 400 and says in response.json()["errors"][0]["detail"], response.text
        assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/jira_issue_url"
    missing = org.http.patch(
        f"/api/v2/cases/{case.id}/relationships/jira_issues",
        json={"data": {"type": "issues", "attributes": {"jira_issue_url": f"{jira.url}/browse/OPS-999"}}},
    )
    assert missing.status_code == 400 and "Issue does not exist" in missing.json()["errors"][0]["detail"]


def test_create_case_service_now_ticket(live: LiveServer, org: OrgClient, snow: ServiceNowLoopback) -> None:
    connect_servicenow(org, snow)
    case = make_case(org, make_project(org).id, title="Checkout failing", priority="P2")
    body = ServiceNowTicketCreateRequest(
        data=ServiceNowTicketCreateData(
            attributes=ServiceNowTicketCreateAttributes(instance_name="acme", assignment_group="Network"),
            type=ServiceNowTicketResourceType.TICKETS,
        )
    )
    org.cases.create_case_service_now_ticket(case_id=case.id, body=body)
    incident = next(iter(snow.tables["incident"].values()))
    assert incident["short_description"] == "Checkout failing"
    assert incident["correlation_id"] == f"casem:{case.id}" and incident["assignment_group"] == snow.group["sys_id"]
    assert (incident["impact"], incident["urgency"], incident["priority"]) == ("1", "2", "2")
    shown = org.cases.get_case(case_id=case.id).data.attributes.service_now_ticket
    assert shown.status.value == "COMPLETED" and incident["sys_id"] in shown.result.sys_target_link
    # Unknown instance or group: 400s that say which.
    other = make_case(org, make_project(org).id)
    for attributes, says in [
        ({"instance_name": "nope"}, "no ServiceNow instance named 'nope'"),
        ({"instance_name": "acme", "assignment_group": "Nobody"}, "no assignment group named 'Nobody'"),
    ]:
        response = org.http.post(
            f"/api/v2/cases/{other.id}/relationships/servicenow_tickets",
            json={"data": {"type": "tickets", "attributes": attributes}},
        )
        assert response.status_code == 400 and says in response.json()["errors"][0]["detail"], response.text


def test_link_incident_and_create_case_notebook(live: LiveServer, org: OrgClient) -> None:
    case = make_case(org, make_project(org).id)
    body = RelationshipToIncidentRequest(
        data=IncidentRelationshipData(id="INC-42", type=IncidentResourceType.INCIDENTS)
    )
    answered = org.cases.link_incident(case_id=case.id, body=body)
    assert answered.data.id == case.id
    raw = org.http.post(f"/api/v2/cases/{case.id}/relationships/incidents", json=body.to_dict()).json()
    assert raw["data"]["relationships"]["incidents"]["data"] == [
        {"id": "INC-42", "type": "incidents"}
    ]  # once, however often
    links = org.http.get("/api/v2/cases/link", params={"entity_type": "CASE", "entity_id": case.id}).json()["data"]
    assert [(link["attributes"]["child_entity_type"], link["attributes"]["child_entity_id"]) for link in links] == [
        ("INCIDENT", "INC-42")
    ]
    assert timeline_types(org, case.id).count("INCIDENT_LINK") == 1
    bad = org.http.post(
        f"/api/v2/cases/{case.id}/relationships/incidents", json={"data": {"id": "", "type": "incidents"}}
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["source"]["pointer"] == "/data/id"

    with pytest.raises(ApiException) as raised:
        org.cases.create_case_notebook(
            case_id=case.id, body=NotebookCreateRequest(data=NotebookCreateData(type=NotebookResourceType.NOTEBOOK))
        )
    assert raised.value.status == 501
    assert "casem has no notebooks" in raised.value.body["errors"][0]["detail"]
    assert (
        org.http.post(
            f"/api/v2/cases/{'0' * 8}-0000-0000-0000-{'0' * 12}/relationships/notebook",
            json={"data": {"type": "notebook"}},
        ).status_code
        == 404
    )


def test_bad_case_operation_bodies(live: LiveServer, org: OrgClient, jira: JiraLoopback) -> None:
    case = make_case(org, make_project(org).id)
    url = f"/api/v2/cases/{case.id}/relationships/jira_issues"
    for body, pointer in [
        (
            {"data": {"type": "issues", "attributes": {"project_id": "1", "issue_type_id": "1"}}},
            "/data/attributes/jira_account_id",
        ),
        (
            {
                "data": {
                    "type": "tickets",
                    "attributes": {"jira_account_id": "a", "project_id": "1", "issue_type_id": "1"},
                }
            },
            "/data/type",
        ),
        (
            {
                "data": {
                    "type": "issues",
                    "attributes": {"jira_account_id": "x", "project_id": " ", "issue_type_id": "1"},
                }
            },
            "/data/attributes/project_id",
        ),
        (
            {
                "data": {
                    "type": "issues",
                    "attributes": {"jira_account_id": "x", "project_id": "1", "issue_type_id": "1", "fields": []},
                }
            },
            "/data/attributes/fields",
        ),
    ]:
        response = org.http.post(url, json=body)
        assert response.status_code == 400 and response.json()["errors"][0]["source"]["pointer"] == pointer, (
            response.text
        )
    unknown = org.http.post(
        url,
        json={
            "data": {
                "type": "issues",
                "attributes": {
                    "jira_account_id": "00000000-0000-0000-0000-000000000001",
                    "project_id": "1",
                    "issue_type_id": "1",
                },
            }
        },
    )
    assert unknown.status_code == 404
