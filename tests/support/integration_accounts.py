"""What the Jira / ServiceNow suites and the isolation probes share: the RemoteSystems casem calls out with in tests
(the loopback network allowed), and helpers that connect an org's Jira account or ServiceNow instance through
casem's routes."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet
from datadog_api_client.v2.api.jira_integration_api import JiraIntegrationApi
from datadog_api_client.v2.api.service_now_integration_api import ServiceNowIntegrationApi

from casem.adapters.http import AllowList
from casem.adapters.integrations import RateLimitPolicy
from casem.adapters.secrets import SecretBox
from casem.app.integrations.oauth import JiraOAuthApp
from casem.app.integrations.remotes import RemoteSystems
from tests.integrations.jira_server import JiraLoopback
from tests.integrations.servicenow_server import ServiceNowLoopback
from tests.support.api_client import OrgClient

LOOPBACK = AllowList.parse(["127.0.0.0/8"])
KEY = Fernet.generate_key()


def remote_systems(jira: JiraLoopback | None = None, **kwargs: Any) -> RemoteSystems:
    """What casem uses to call out in tests: the loopback network allowed, short rate-limit waits."""
    oauth = None
    if jira is not None:
        oauth = JiraOAuthApp(*jira.oauth_client, token_url=f"{jira.url}/oauth/token", api_root=jira.url)
    return RemoteSystems(
        box=SecretBox([KEY]),
        allow=LOOPBACK,
        jira_oauth=oauth,
        rate_limits=kwargs.pop("rate_limits", RateLimitPolicy(attempts=3, max_wait_s=5)),
        **kwargs,
    )


def jira_api(client: OrgClient) -> JiraIntegrationApi:
    for op in (
        "list_jira_accounts",
        "delete_jira_account",
        "create_jira_issue_template",
        "list_jira_issue_templates",
        "get_jira_issue_template",
        "update_jira_issue_template",
        "delete_jira_issue_template",
    ):
        client.api_client.configuration.unstable_operations[op] = True
    return JiraIntegrationApi(client.api_client)


def servicenow_api(client: OrgClient) -> ServiceNowIntegrationApi:
    return ServiceNowIntegrationApi(client.api_client)


def connect_jira(
    client: OrgClient, jira: JiraLoopback, webhook_secret: str | None = "a-webhook-secret-of-32-chars!!!!"
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "instance_url": jira.url,
        "auth": {"type": "api_token", "email": jira.integration.email, "api_token": jira.integration.token},
    }
    if webhook_secret is not None:
        attributes["webhook_secret"] = webhook_secret
    response = client.http.post(
        "/api/v2/integration/jira/accounts", json={"data": {"type": "jira-account", "attributes": attributes}}
    )
    assert response.status_code == 201, response.text
    return response.json()


def connect_servicenow(
    client: OrgClient,
    snow: ServiceNowLoopback,
    name: str = "acme",
    webhook_secret: str | None = "a-servicenow-secret-of-32-chars!",
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "instance_name": name,
        "instance_url": snow.url,
        "auth": {"type": "basic", "username": "casem.integration", "password": "bot-pass"},
    }
    if webhook_secret is not None:
        attributes["webhook_secret"] = webhook_secret
    response = client.http.post(
        "/api/v2/integration/servicenow/instances", json={"data": {"type": "instance", "attributes": attributes}}
    )
    assert response.status_code == 201, response.text
    return response.json()
