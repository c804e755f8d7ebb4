"""Jira accounts and ServiceNow instances through casem's routes and the official client's JiraIntegrationApi and
ServiceNowIntegrationApi: credentials checked against the (loopback) remote, sealed at rest, never returned."""

from __future__ import annotations

import json
from uuid import UUID

import pytest
import sqlalchemy as sa
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.model.jira_issue_template_create_request import JiraIssueTemplateCreateRequest
from datadog_api_client.v2.model.jira_issue_template_create_request_attributes import (
    JiraIssueTemplateCreateRequestAttributes,
)
from datadog_api_client.v2.model.jira_issue_template_create_request_attributes_jira_account import (
    JiraIssueTemplateCreateRequestAttributesJiraAccount,
)
from datadog_api_client.v2.model.jira_issue_template_create_request_data import JiraIssueTemplateCreateRequestData
from datadog_api_client.v2.model.jira_issue_template_type import JiraIssueTemplateType
from datadog_api_client.v2.model.jira_issue_template_update_request import JiraIssueTemplateUpdateRequest
from datadog_api_client.v2.model.jira_issue_template_update_request_attributes import (
    JiraIssueTemplateUpdateRequestAttributes,
)
from datadog_api_client.v2.model.jira_issue_template_update_request_data import JiraIssueTemplateUpdateRequestData
from datadog_api_client.v2.model.service_now_template_create_request import ServiceNowTemplateCreateRequest
from datadog_api_client.v2.model.service_now_template_create_request_attributes import (
    ServiceNowTemplateCreateRequestAttributes,
)
from datadog_api_client.v2.model.service_now_template_create_request_data import ServiceNowTemplateCreateRequestData
from datadog_api_client.v2.model.service_now_template_type import ServiceNowTemplateType
from datadog_api_client.v2.model.service_now_template_update_request import ServiceNowTemplateUpdateRequest
from datadog_api_client.v2.model.service_now_template_update_request_attributes import (
    ServiceNowTemplateUpdateRequestAttributes,
)
from datadog_api_client.v2.model.service_now_template_update_request_data import ServiceNowTemplateUpdateRequestData

from casem.adapters.storage.tables import integration_accounts
from tests.api.helpers import make_case, make_project
from tests.integrations.jira_server import JiraLoopback
from tests.integrations.servicenow_server import ServiceNowLoopback
from tests.support.api_client import OrgClient
from tests.support.integration_accounts import connect_jira, connect_servicenow, jira_api, servicenow_api
from tests.support.live_server import LiveServer


def _stored(live: LiveServer, account_id: str) -> sa.Row:
    async def read() -> sa.Row:
        async with live.context.uow(read_only=True) as uow:
            return (
                await uow.execute(sa.select(integration_accounts).where(integration_accounts.c.id == account_id))
            ).one()

    return live.call(read())


def test_a_jira_account_is_checked_sealed_and_listed_without_secrets(
    live: LiveServer, org: OrgClient, jira: JiraLoopback
) -> None:
    created = connect_jira(org, jira, webhook_secret=None)
    account_id = created["data"]["id"]
    generated = created["meta"]["webhook_secret"]  # shown once, since casem made it up
    assert len(generated) >= 32
    assert ("GET", "/rest/api/3/myself", jira.integration.account_id) in jira.requests

    listed = jira_api(org).list_jira_accounts()
    assert [a.id for a in listed.data] == [account_id]
    account = listed.data[0]
    assert account.type.value == "jira-account"
    assert account.attributes.instance_url == jira.url
    assert account.attributes.consumer_key == jira.integration.email
    # Nothing secret in any read, and at rest only sealed values.
    text = org.http.get("/api/v2/integration/jira/accounts").text
    assert jira.integration.token not in text and generated not in text
    row = _stored(live, account_id)
    assert row.sealed_credentials.startswith("fernet:") and jira.integration.token not in row.sealed_credentials
    assert row.sealed_webhook_secret.startswith("fernet:") and generated not in row.sealed_webhook_secret
    assert row.remote_user_id == jira.integration.account_id
    assert live.app.state.integrations.webhook_secret(_account(live, account_id)) == generated

    jira_api(org).delete_jira_account(account_id=UUID(account_id))
    assert jira_api(org).list_jira_accounts().data == []
    with pytest.raises(NotFoundException):
        jira_api(org).delete_jira_account(account_id=UUID(account_id))


def _account(live: LiveServer, account_id: str):  # type: ignore[no-untyped-def]
    from casem.domain.integrations import IntegrationAccount

    async def read():  # type: ignore[no-untyped-def]
        async with live.context.uow(read_only=True) as uow:
            return await uow.session.get(IntegrationAccount, account_id)

    return live.call(read())


@pytest.mark.parametrize(
    ("attributes", "pointer", "says"),
    [
        (
            {"auth": {"type": "api_token", "email": "x@y.z", "api_token": "t"}},
            "/data/attributes/instance_url",
            "non-empty",
        ),
        (
            {"instance_url": "ftp://jira.example.com", "auth": {"type": "api_token", "email": "a", "api_token": "b"}},
            "/data/attributes/instance_url",
            "http(s)",
        ),
        ({"instance_url": "https://x.atlassian.net"}, "/data/attributes/auth", "auth is required"),
        (
            {"instance_url": "https://x.atlassian.net", "auth": {"type": "password"}},
            "/data/attributes/auth/type",
            "api_token",
        ),
        (
            {"instance_url": "https://x.atlassian.net", "auth": {"type": "api_token", "email": "a@b.c"}},
            "/data/attributes/auth/api_token",
            "required",
        ),
        (
            {"instance_url": "http://169.254.169.254", "auth": {"type": "api_token", "email": "a", "api_token": "b"}},
            "/data/attributes/instance_url",
            "link-local",
        ),
        (
            {
                "instance_url": "https://x.atlassian.net",
                "auth": {"type": "api_token", "email": "a", "api_token": "b"},
                "webhook_secret": "short",
            },
            "/data/attributes/webhook_secret",
            "at least 16",
        ),
    ],
)
def test_bad_jira_accounts_are_400_with_a_pointer(
    live: LiveServer, org: OrgClient, attributes: dict, pointer: str, says: str
) -> None:
    response = org.http.post(
        "/api/v2/integration/jira/accounts", json={"data": {"type": "jira-account", "attributes": attributes}}
    )
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["source"]["pointer"] == pointer and says in error["detail"], error


def test_refused_credentials_and_duplicates(live: LiveServer, org: OrgClient, jira: JiraLoopback) -> None:
    wrong = {
        "instance_url": jira.url,
        "auth": {"type": "api_token", "email": jira.integration.email, "api_token": "not-the-token"},
    }
    response = org.http.post(
        "/api/v2/integration/jira/accounts", json={"data": {"type": "jira-account", "attributes": wrong}}
    )
    assert response.status_code == 400
    assert "Jira refused the credentials" in response.json()["errors"][0]["detail"]
    assert "not-the-token" not in response.text
    connect_jira(org, jira)
    again = org.http.post(
        "/api/v2/integration/jira/accounts",
        json={
            "data": {
                "type": "jira-account",
                "attributes": {**wrong, "auth": {**wrong["auth"], "api_token": jira.integration.token}},
            }
        },
    )
    assert again.status_code == 409


def test_rotating_credentials_checks_them_first(live: LiveServer, org: OrgClient, jira: JiraLoopback) -> None:
    account_id = connect_jira(org, jira)["data"]["id"]
    before = _stored(live, account_id).sealed_credentials
    bad = org.http.patch(
        f"/api/v2/integration/jira/accounts/{account_id}",
        json={
            "data": {
                "type": "jira-account",
                "attributes": {"auth": {"type": "api_token", "email": jira.human.email, "api_token": "nope"}},
            }
        },
    )
    assert bad.status_code == 400 and _stored(live, account_id).sealed_credentials == before
    good = org.http.patch(
        f"/api/v2/integration/jira/accounts/{account_id}",
        json={
            "data": {
                "type": "jira-account",
                "attributes": {
                    "auth": {"type": "api_token", "email": jira.human.email, "api_token": jira.human.token},
                    "webhook_secret": None,
                },
            }
        },
    )
    assert good.status_code == 200, good.text
    assert good.json()["meta"]["webhook_secret"]  # a new one, shown once
    row = _stored(live, account_id)
    assert row.sealed_credentials != before and row.remote_user_id == jira.human.account_id


def test_oauth2_accounts_use_the_operators_app_and_refresh_rotating_tokens(
    live: LiveServer, org: OrgClient, jira: JiraLoopback
) -> None:
    link = org.http.post(
        "/api/v2/integration/jira/oauth/authorize",
        json={
            "data": {
                "type": "jira_oauth_authorization",
                "attributes": {"redirect_uri": "https://casem.example.com/cb", "state": "s1"},
            }
        },
    )
    assert link.status_code == 200
    assert (
        "client_id=casem-app" in link.json()["data"]["attributes"]["url"]
        and "offline_access" in link.json()["data"]["attributes"]["url"]
    )
    code = jira.grant_code(jira.integration)
    created = org.http.post(
        "/api/v2/integration/jira/accounts",
        json={
            "data": {
                "type": "jira-account",
                "attributes": {
                    "instance_url": jira.url,
                    "auth": {"type": "oauth2", "code": code, "redirect_uri": "https://casem.example.com/cb"},
                },
            }
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["data"]["attributes"]["auth_type"] == "oauth2"
    # The access token was used on the cloud-id path of the API.
    assert ("GET", "/rest/api/3/myself", jira.integration.account_id) in jira.requests
    # A code is single use.
    replay = org.http.post(
        "/api/v2/integration/jira/accounts",
        json={
            "data": {
                "type": "jira-account",
                "attributes": {
                    "instance_url": jira.url,
                    "auth": {"type": "oauth2", "code": code, "redirect_uri": "https://casem.example.com/cb"},
                },
            }
        },
    )
    assert replay.status_code == 400 and "Atlassian did not accept" in replay.json()["errors"][0]["detail"]

    # Expired access tokens are renewed with the refresh token; Atlassian rotates refresh tokens, so the new one
    # must have been kept for the second renewal to work.
    account_id = created.json()["data"]["id"]
    project_id = make_project(org).id
    for round_ in range(2):
        jira.expire_access_tokens()
        case = make_case(org, project_id, title=f"oauth {round_}")
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
    assert len(jira.issues) == 2


def test_jira_issue_templates_through_the_official_client(live: LiveServer, org: OrgClient, jira: JiraLoopback) -> None:
    account_id = connect_jira(org, jira)["data"]["id"]
    api = jira_api(org)
    created = api.create_jira_issue_template(
        body=JiraIssueTemplateCreateRequest(
            data=JiraIssueTemplateCreateRequestData(
                attributes=JiraIssueTemplateCreateRequestAttributes(
                    name="Security incident",
                    project_id="10000",
                    issue_type_id="10002",
                    fields={"labels": ["security"]},
                    jira_account=JiraIssueTemplateCreateRequestAttributesJiraAccount(id=UUID(account_id)),
                ),
                type=JiraIssueTemplateType.JIRA_ISSUE_TEMPLATE,
            )
        )
    ).data
    assert created.attributes.name == "Security incident"
    assert str(created.relationships.jira_account.data.id) == account_id
    listed = api.list_jira_issue_templates()
    assert [t.id for t in listed.data] == [created.id] and [a.id for a in listed.included] == [account_id]
    updated = api.update_jira_issue_template(
        issue_template_id=created.id,
        body=JiraIssueTemplateUpdateRequest(
            data=JiraIssueTemplateUpdateRequestData(
                attributes=JiraIssueTemplateUpdateRequestAttributes(name="Renamed"),
                type=JiraIssueTemplateType.JIRA_ISSUE_TEMPLATE,
            )
        ),
    ).data
    assert updated.attributes.name == "Renamed" and updated.attributes.fields == {"labels": ["security"]}
    assert api.get_jira_issue_template(issue_template_id=created.id).data.attributes.name == "Renamed"
    api.delete_jira_issue_template(issue_template_id=created.id)
    with pytest.raises(NotFoundException):
        api.get_jira_issue_template(issue_template_id=created.id)
    # A template needs an account of the org.
    bad = org.http.post(
        "/api/v2/integration/jira/issue-templates",
        json={
            "data": {
                "type": "jira-issue-template",
                "attributes": {
                    "name": "x",
                    "project_id": "1",
                    "issue_type_id": "1",
                    "jira-account": {"id": "not-a-uuid"},
                },
            }
        },
    )
    assert bad.status_code == 400 and "not a valid UUID" in bad.json()["errors"][0]["detail"]


def test_servicenow_instances_templates_and_listings(
    live: LiveServer, org: OrgClient, snow: ServiceNowLoopback
) -> None:
    created = connect_servicenow(org, snow)
    instance_id = created["data"]["id"]
    api = servicenow_api(org)
    instances = api.list_service_now_instances()
    assert [(str(i.id), i.attributes.instance_name) for i in instances.data] == [(instance_id, "acme")]
    assert "bot-pass" not in org.http.get("/api/v2/integration/servicenow/instances").text

    groups = api.list_service_now_assignment_groups(instance_id=UUID(instance_id)).data
    assert sorted(g.attributes.assignment_group_name for g in groups) == ["Database", "Network"]
    assert {g.attributes.assignment_group_sys_id for g in groups} >= {snow.group["sys_id"]}
    services = api.list_service_now_business_services(instance_id=UUID(instance_id)).data
    assert [s.attributes.service_name for s in services] == ["Payments"]
    users = api.list_service_now_users(instance_id=UUID(instance_id)).data
    assert {u.attributes.email for u in users} == {"casem-bot@example.com", "beth@example.com"}
    # The ids are stable across calls (Datadog names these records by UUID).
    assert [g.id for g in api.list_service_now_assignment_groups(instance_id=UUID(instance_id)).data] == [
        g.id for g in groups
    ]

    template = api.create_service_now_template(
        body=ServiceNowTemplateCreateRequest(
            data=ServiceNowTemplateCreateRequestData(
                attributes=ServiceNowTemplateCreateRequestAttributes(
                    handle_name="network-incidents",
                    instance_id=UUID(instance_id),
                    servicenow_tablename="incident",
                    assignment_group_id=groups[0].id,
                    fields_mapping={"category": "network"},
                ),
                type=ServiceNowTemplateType.SERVICENOW_TEMPLATES,
            )
        )
    ).data
    assert template.attributes.handle_name == "network-incidents"
    assert [t.id for t in api.list_service_now_templates().data] == [template.id]
    renamed = api.update_service_now_template(
        template_id=template.id,
        body=ServiceNowTemplateUpdateRequest(
            data=ServiceNowTemplateUpdateRequestData(
                attributes=ServiceNowTemplateUpdateRequestAttributes(
                    handle_name="net", instance_id=UUID(instance_id), servicenow_tablename="incident"
                ),
                type=ServiceNowTemplateType.SERVICENOW_TEMPLATES,
            )
        ),
    ).data
    assert renamed.attributes.handle_name == "net"
    assert api.get_service_now_template(template_id=template.id).data.attributes.handle_name == "net"
    api.delete_service_now_template(template_id=template.id)
    with pytest.raises(NotFoundException):
        api.get_service_now_template(template_id=template.id)
    bad = org.http.post(
        "/api/v2/integration/servicenow/handles",
        json={
            "data": {
                "type": "servicenow_templates",
                "attributes": {"handle_name": "x", "instance_id": instance_id, "servicenow_tablename": "inc ident"},
            }
        },
    )
    assert (
        bad.status_code == 400
        and bad.json()["errors"][0]["source"]["pointer"] == "/data/attributes/servicenow_tablename"
    )


def test_oauth_client_credentials_and_an_unreachable_instance(
    live: LiveServer, org: OrgClient, snow: ServiceNowLoopback
) -> None:
    client_id, client_secret = snow.add_oauth_client(runs_as="casem.integration")
    created = org.http.post(
        "/api/v2/integration/servicenow/instances",
        json={
            "data": {
                "type": "instance",
                "attributes": {
                    "instance_name": "oauthco",
                    "instance_url": snow.url,
                    "auth": {
                        "type": "oauth_client_credentials",
                        "client_id": client_id,
                        "client_secret": client_secret,
                        "integration_user": "casem.integration",
                    },
                },
            }
        },
    )
    assert created.status_code == 201, created.text
    instance_id = created.json()["data"]["id"]
    assert _stored(live, instance_id).remote_user_name == "casem.integration"
    assert servicenow_api(org).list_service_now_users(instance_id=UUID(instance_id)).data
    # The instance goes away: a listing is a 502 naming the failure, never a 500.
    snow.stop()
    response = org.http.get(f"/api/v2/integration/servicenow/users/{instance_id}")
    assert response.status_code == 502 and "could not connect" in response.json()["errors"][0]["detail"]


def test_integration_settings_are_validated(live: LiveServer, org: OrgClient, jira: JiraLoopback) -> None:
    account_id = connect_jira(org, jira)["data"]["id"]
    project = org.http.post(
        "/api/v2/cases/projects", json={"data": {"type": "project", "attributes": {"key": "SETT", "name": "s"}}}
    ).json()["data"]

    def patch(settings: dict) -> dict:
        response = org.http.patch(
            f"/api/v2/cases/projects/{project['id']}",
            json={"data": {"type": "project", "attributes": {"settings": settings}}},
        )
        return {"status": response.status_code, **response.json()}

    good = {
        "integration_jira": {
            "enabled": True,
            "metadata": {"account_id": account_id, "project_id": "10000", "issue_type_id": "10001"},
            "auto_creation": {"enabled": True},
            "sync": {
                "enabled": True,
                "properties": {
                    "status": {"sync_type": "bidirectional", "mapping": {"CLOSED": "Done"}},
                    "title": {"sync_type": "dd_to_jira"},
                },
            },
        }
    }
    answer = patch(good)
    assert answer["status"] == 200 and answer["data"]["attributes"]["settings"]["integration_jira"]["enabled"] is True
    cases = [
        ({"integration_jira": {"enabled": "yes"}}, "/data/attributes/settings/integration_jira/enabled"),
        (
            {"integration_jira": {"sync": {"properties": {"title": {"sync_type": "sideways"}}}}},
            "/data/attributes/settings/integration_jira/sync/properties/title/sync_type",
        ),
        (
            {"integration_jira": {"sync": {"properties": {"status": {"mapping": {"DONE": "Done"}}}}}},
            "/data/attributes/settings/integration_jira/sync/properties/status/mapping/DONE",
        ),
        (
            {"integration_jira": {"metadata": {"account_id": "00000000-0000-0000-0000-000000000000"}}},
            "/data/attributes/settings/integration_jira/metadata/account_id",
        ),
        (
            {"integration_jira": {"enabled": True, "auto_creation": {"enabled": True}}},
            "/data/attributes/settings/integration_jira/metadata",
        ),
        ({"integration_jira": {"colour": "red"}}, "/data/attributes/settings/integration_jira/colour"),
        (
            {"integration_service_now": {"instance_name": "nope"}},
            "/data/attributes/settings/integration_service_now/instance_name",
        ),
        (
            {"integration_service_now": {"sync_config": {"properties": {"priority": {"impact_mapping": {"P1": "9"}}}}}},
            "/data/attributes/settings/integration_service_now/sync_config/properties/priority/impact_mapping/P1",
        ),
    ]
    for settings, pointer in cases:
        answer = patch(settings)
        assert answer["status"] == 400, (settings, answer)
        assert answer["errors"][0]["source"]["pointer"] == pointer, (settings, answer)
    # Nothing of the refused updates was stored.
    stored = org.http.get(f"/api/v2/cases/projects/{project['id']}").json()["data"]["attributes"]["settings"]
    assert stored == good


def test_unknown_ids_and_malformed_bodies(live: LiveServer, org: OrgClient) -> None:
    missing = "00000000-0000-0000-0000-00000000abcd"
    for method, url in [
        ("DELETE", f"/api/v2/integration/jira/accounts/{missing}"),
        ("GET", f"/api/v2/integration/jira/issue-templates/{missing}"),
        ("GET", f"/api/v2/integration/servicenow/handles/{missing}"),
        ("GET", f"/api/v2/integration/servicenow/users/{missing}"),
        ("DELETE", f"/api/v2/integration/servicenow/instances/{missing}"),
    ]:
        response = org.http.request(method, url)
        assert response.status_code == 404 and missing in response.json()["errors"][0]["detail"], (url, response.text)
    for url, body in [
        ("/api/v2/integration/jira/accounts", b"{not json"),
        (
            "/api/v2/integration/servicenow/instances",
            json.dumps({"data": {"type": "jira-account", "attributes": {}}}).encode(),
        ),
    ]:
        response = org.http.post(url, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, response.text
    with pytest.raises(ApiException) as raised:
        jira_api(org).get_jira_issue_template(issue_template_id=UUID("5e3d9c1a-0000-4000-8000-000000000000"))
    assert raised.value.status == 404


def test_a_listing_the_remote_refuses_or_cannot_serve_says_so(
    live: LiveServer, org: OrgClient, snow: ServiceNowLoopback
) -> None:
    """The remote's refusal is a 400 naming what failed; a remote that is unavailable for now is a 502."""
    instance_id = connect_servicenow(org, snow)["data"]["id"]
    path = f"/api/v2/integration/servicenow/assignment_groups/{instance_id}"
    assert org.http.get(path).status_code == 200
    snow.passwords["casem.integration"] = "rotated on the remote"  # casem's saved password no longer works
    refused = org.http.get(path)
    assert refused.status_code == 400, refused.text
    assert "acme did not list its assignment groups" in refused.json()["errors"][0]["detail"]
    snow.passwords["casem.integration"] = "bot-pass"
    snow.rate_limit(10, retry_after="600")  # the next calls: 429 for longer than casem waits
    unavailable = org.http.get(f"/api/v2/integration/servicenow/users/{instance_id}")
    assert unavailable.status_code == 502, unavailable.text
    assert "acme did not list its users" in unavailable.json()["errors"][0]["detail"]
