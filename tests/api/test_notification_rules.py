"""Project notification rules through the official client: create, list, update (PUT, 204), delete;
another org's project is a 404; bad input is a 400 JSON:API error with a pointer."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.model.case_notification_rule_attributes import CaseNotificationRuleAttributes
from datadog_api_client.v2.model.case_notification_rule_create import CaseNotificationRuleCreate
from datadog_api_client.v2.model.case_notification_rule_create_attributes import (
    CaseNotificationRuleCreateAttributes,
)
from datadog_api_client.v2.model.case_notification_rule_create_request import CaseNotificationRuleCreateRequest
from datadog_api_client.v2.model.case_notification_rule_recipient import CaseNotificationRuleRecipient
from datadog_api_client.v2.model.case_notification_rule_recipient_data import CaseNotificationRuleRecipientData
from datadog_api_client.v2.model.case_notification_rule_resource_type import CaseNotificationRuleResourceType
from datadog_api_client.v2.model.case_notification_rule_trigger import CaseNotificationRuleTrigger
from datadog_api_client.v2.model.case_notification_rule_trigger_data import CaseNotificationRuleTriggerData
from datadog_api_client.v2.model.case_notification_rule_update import CaseNotificationRuleUpdate
from datadog_api_client.v2.model.case_notification_rule_update_request import CaseNotificationRuleUpdateRequest

from casem.adapters.storage.tables import notification_endpoints
from casem.app.context import AppContext
from casem.app.outbound.service import allow_network
from tests.api.helpers import make_project
from tests.support.api_client import OrgClient

MISSING = "5b3bd0b7-8d1c-4b6e-9d0a-2f3a3f6f4b11"


def create_body(query: str = "priority:P1") -> CaseNotificationRuleCreateRequest:
    return CaseNotificationRuleCreateRequest(
        data=CaseNotificationRuleCreate(
            attributes=CaseNotificationRuleCreateAttributes(
                is_enabled=True,
                query=query,
                recipients=[
                    CaseNotificationRuleRecipient(
                        type="EMAIL", data=CaseNotificationRuleRecipientData(email="oncall@example.com")
                    ),
                    CaseNotificationRuleRecipient(
                        type="SLACK_CHANNEL",
                        data=CaseNotificationRuleRecipientData(channel="#ops", workspace="acme"),
                    ),
                ],
                triggers=[
                    CaseNotificationRuleTrigger(type="CASE_CREATED"),
                    CaseNotificationRuleTrigger(
                        type="STATUS_TRANSITIONED",
                        data=CaseNotificationRuleTriggerData(from_status="OPEN", to_status="CLOSED"),
                    ),
                ],
            ),
            type=CaseNotificationRuleResourceType.NOTIFICATION_RULE,
        )
    )


def update_body(**attributes: object) -> CaseNotificationRuleUpdateRequest:
    return CaseNotificationRuleUpdateRequest(
        data=CaseNotificationRuleUpdate(
            attributes=CaseNotificationRuleAttributes(**attributes),
            type=CaseNotificationRuleResourceType.NOTIFICATION_RULE,
        )
    )


def test_create_list_update_delete(org: OrgClient) -> None:
    project = make_project(org)
    assert org.cases.get_project_notification_rules(project_id=project.id).data == []

    rule = org.cases.create_project_notification_rule(project_id=project.id, body=create_body()).data
    assert str(rule.type) == "notification_rule"
    assert rule.attributes.is_enabled is True and rule.attributes.query == "priority:P1"
    assert [r.type for r in rule.attributes.recipients] == ["EMAIL", "SLACK_CHANNEL"]
    assert rule.attributes.recipients[0].data.email == "oncall@example.com"
    assert rule.attributes.triggers[1].data.to_status == "CLOSED"

    second = org.cases.create_project_notification_rule(project_id=project.id, body=create_body("")).data
    listed = org.cases.get_project_notification_rules(project_id=project.id).data
    assert [r.id for r in listed] == [rule.id, second.id]

    # PUT answers 204; the members sent replace the rule's, the others are kept.
    assert (
        org.cases.update_project_notification_rule(
            project_id=project.id,
            notification_rule_id=rule.id,
            body=update_body(
                is_enabled=False,
                triggers=[
                    CaseNotificationRuleTrigger(
                        type="ATTRIBUTE_VALUE_CHANGED", data=CaseNotificationRuleTriggerData(field="priority")
                    )
                ],
            ),
        )
        is None
    )
    [updated] = [r for r in org.cases.get_project_notification_rules(project_id=project.id).data if r.id == rule.id]
    assert updated.attributes.is_enabled is False
    assert [(t.type, t.data.field) for t in updated.attributes.triggers] == [("ATTRIBUTE_VALUE_CHANGED", "priority")]
    assert updated.attributes.query == "priority:P1" and len(updated.attributes.recipients) == 2

    assert org.cases.delete_project_notification_rule(project_id=project.id, notification_rule_id=rule.id) is None
    assert [r.id for r in org.cases.get_project_notification_rules(project_id=project.id).data] == [second.id]
    with pytest.raises(NotFoundException):
        org.cases.delete_project_notification_rule(project_id=project.id, notification_rule_id=rule.id)


def test_another_orgs_project_and_rules_are_not_found(org: OrgClient, other_org: OrgClient) -> None:
    project = make_project(org)
    rule = org.cases.create_project_notification_rule(project_id=project.id, body=create_body()).data
    theirs = make_project(other_org)
    for project_id in (project.id, MISSING):
        with pytest.raises(NotFoundException):
            other_org.cases.get_project_notification_rules(project_id=project_id)
        with pytest.raises(NotFoundException):
            other_org.cases.create_project_notification_rule(project_id=project_id, body=create_body())
    # A rule id under a project it does not belong to (even the caller's own) is a 404 too.
    with pytest.raises(NotFoundException):
        other_org.cases.update_project_notification_rule(
            project_id=theirs.id, notification_rule_id=rule.id, body=update_body(is_enabled=False)
        )
    with pytest.raises(NotFoundException):
        other_org.cases.delete_project_notification_rule(project_id=theirs.id, notification_rule_id=rule.id)
    with pytest.raises(NotFoundException):
        org.cases.delete_project_notification_rule(project_id=project.id, notification_rule_id="not-a-uuid")
    assert [r.id for r in org.cases.get_project_notification_rules(project_id=project.id).data] == [rule.id]
    assert org.cases.get_project_notification_rules(project_id=project.id).data[0].attributes.is_enabled is True


@pytest.mark.parametrize(
    ("attributes", "pointer", "detail"),
    [
        ({"recipients": [{"type": "EMAIL", "data": {"email": "a@b.co"}}]}, "/data/attributes/triggers", "required"),
        (
            {"triggers": [{"type": "CASE_EXPLODED"}], "recipients": [{"type": "EMAIL", "data": {"email": "a@b.co"}}]},
            "/data/attributes/triggers/0/type",
            "trigger type must be one of",
        ),
        (
            {"triggers": [{"type": "CASE_CREATED"}], "recipients": [{"type": "EMAIL", "data": {}}]},
            "/data/attributes/recipients/0/data/email",
            "valid data.email",
        ),
        (
            {"triggers": [{"type": "CASE_CREATED"}], "recipients": [{"type": "HTTP", "data": {"url": "http://x"}}]},
            "/data/attributes/recipients/0/data/url",
            "not a known field",
        ),
        (
            {
                "triggers": [{"type": "CASE_CREATED"}],
                "recipients": [{"type": "EMAIL", "data": {"email": "a@b.co"}}],
                "query": "status:(open",
            },
            "/data/attributes/query",
            "query syntax error",
        ),
        ({"triggers": [{"type": "CASE_CREATED"}], "recipients": []}, "/data/attributes/recipients", "non-empty"),
    ],
)
def test_bad_input_is_a_400_with_a_pointer(org: OrgClient, attributes: dict, pointer: str, detail: str) -> None:
    project = make_project(org)
    response = org.http.post(
        f"/api/v2/cases/projects/{project.id}/notification_rules",
        json={"data": {"type": "notification_rule", "attributes": attributes}},
    )
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["status"] == "400" and error["source"]["pointer"] == pointer and detail in error["detail"]
    assert org.cases.get_project_notification_rules(project_id=project.id).data == []


def test_bad_update_is_a_400_and_changes_nothing(org: OrgClient) -> None:
    project = make_project(org)
    rule = org.cases.create_project_notification_rule(project_id=project.id, body=create_body()).data
    path = f"/api/v2/cases/projects/{project.id}/notification_rules/{rule.id}"
    response = org.http.put(path, json={"data": {"type": "notification_rule", "attributes": {"triggers": []}}})
    assert response.status_code == 400 and "non-empty" in response.text
    response = org.http.put(path, json={"data": {"type": "rule"}})
    assert response.status_code == 400 and response.json()["errors"][0]["source"]["pointer"] == "/data/type"
    with pytest.raises(ApiException) as err:
        org.cases.update_project_notification_rule(
            project_id=project.id, notification_rule_id=rule.id, body=update_body(query="NOT")
        )
    assert err.value.status == 400
    [kept] = org.cases.get_project_notification_rules(project_id=project.id).data
    assert kept.attributes.query == "priority:P1" and len(kept.attributes.triggers) == 2


def test_notification_endpoints_keep_their_secret(org: OrgClient, other_org: OrgClient) -> None:
    document = {
        "data": {
            "type": "notification_endpoint",
            "attributes": {"kind": "HTTP", "name": "ops", "url": "https://hooks.example.com/x"},
        }
    }
    created = org.http.post("/api/v2/casem/notification_endpoints", json=document)
    assert created.status_code == 201, created.text
    data = created.json()["data"]
    assert len(data["attributes"]["secret"]) == 64  # generated: answered once
    stored = org.server.call(_stored_secret(org.server.context, data["id"]))
    assert stored.startswith("fernet:") and data["attributes"]["secret"] not in stored  # sealed at rest
    assert org.server.context.secret_box().open(stored) == data["attributes"]["secret"]
    assert org.http.post("/api/v2/casem/notification_endpoints", json=document).status_code == 409
    listed = org.http.get("/api/v2/casem/notification_endpoints").json()["data"]
    assert listed == [
        {
            "id": data["id"],
            "type": "notification_endpoint",
            "attributes": {"kind": "HTTP", "name": "ops", "url": "https://hooks.example.com/x"},
        }
    ]
    assert other_org.http.get("/api/v2/casem/notification_endpoints").json()["data"] == []
    assert other_org.http.delete(f"/api/v2/casem/notification_endpoints/{data['id']}").status_code == 404
    bad = org.http.post(
        "/api/v2/casem/notification_endpoints",
        json={"data": {"type": "notification_endpoint", "attributes": {"kind": "HTTP", "name": "x", "url": "ftp://x"}}},
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["source"]["pointer"] == "/data/attributes/url"
    assert org.http.delete(f"/api/v2/casem/notification_endpoints/{data['id']}").status_code == 204
    assert org.http.get("/api/v2/casem/notification_endpoints").json()["data"] == []


async def _stored_secret(context: AppContext, endpoint_id: str) -> str:
    async with context.uow(read_only=True) as uow:
        return await uow.scalar(
            sa.select(notification_endpoints.c.secret).where(notification_endpoints.c.id == endpoint_id)
        )


# -- the outbound guard at save time --------------------------------------------------------------------


def endpoint_document(url: str, name: str = "hook") -> dict:
    return {"data": {"type": "notification_endpoint", "attributes": {"kind": "HTTP", "name": name, "url": url}}}


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8080/hook", "'127.0.0.1' is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "'169.254.169.254' is a link-local address"),
        ("http://[::1]/hook", "'::1' is the loopback address"),
        ("http://0x7f000001/hook", "numeric host form"),
        ("http://2130706433/hook", "numeric host form"),
        ("http://[::ffff:127.0.0.1]/hook", "'::ffff:127.0.0.1' is"),
        ("http://localhost:8080/hook", "'localhost' is a loopback name"),
        ("http://internal.example.com/hook", "'internal.example.com' resolves to a private address"),
        ("http://rebind.example.com/hook", "'rebind.example.com' resolves to a loopback address"),
        ("http://nowhere.example.com/hook", "does not resolve"),
        ("http://user:pw@hooks.example.com/hook", "user name or password"),
        ("http://hooks.example.com:6379/hook", "port 6379"),
        ("ftp://hooks.example.com/hook", "only absolute http and https URLs"),
    ],
)
def test_an_internal_or_disguised_webhook_url_is_refused_when_saved(org: OrgClient, url: str, why: str) -> None:
    refused = org.http.post("/api/v2/casem/notification_endpoints", json=endpoint_document(url))
    assert refused.status_code == 400, refused.text
    [error] = refused.json()["errors"]
    assert error["source"]["pointer"] == "/data/attributes/url"
    assert error["detail"].startswith("url is refused: ") and why in error["detail"], error["detail"]
    assert org.http.get("/api/v2/casem/notification_endpoints").json()["data"] == []


def test_an_orgs_allow_list_admits_its_internal_network_and_no_one_elses(org: OrgClient, other_org: OrgClient) -> None:
    async def allow() -> None:
        async with org.server.context.uow() as uow:
            await allow_network(uow, org.org_id, "10.20.0.0/16", "on-premises receiver")
            await uow.commit()

    org.server.call(allow())
    internal = endpoint_document("http://internal.example.com/hook")
    assert org.http.post("/api/v2/casem/notification_endpoints", json=internal).status_code == 201
    # The allow-list is the org's own: another org saving the same URL is still refused.
    assert other_org.http.post("/api/v2/casem/notification_endpoints", json=internal).status_code == 400
    # It lifts the address checks for its network only: loopback and numeric disguises stay refused.
    for url in ("http://127.0.0.1/hook", "http://0x0a140005/hook"):
        refused = org.http.post("/api/v2/casem/notification_endpoints", json=endpoint_document(url, "x"))
        assert refused.status_code == 400, refused.text
