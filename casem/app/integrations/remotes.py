"""Reaching an org's Jira site or ServiceNow instance: clients built from a stored account, its sealed
credentials opened only here, every call through the outbound guard with the operator's allow-list."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from casem.adapters.http import AllowList, DestinationRefused, allow_list_from_env, validate_destination
from casem.adapters.integrations import JiraClient, RateLimitPolicy, ServiceNowClient
from casem.adapters.secrets import SecretBox, secret_box_from_env
from casem.app.integrations.oauth import JiraOAuthApp, jira_oauth_client
from casem.domain.errors import InvalidInput
from casem.domain.integrations import JIRA, IntegrationAccount, JiraAuth, ServiceNowAuth

# Stable ids for remote records that Datadog's API names by UUID (assignment groups, users...).
REMOTE_ID_NAMESPACE = uuid.UUID("9b7e7e2c-3f0f-4c55-9d38-6f1c2a2f6c11")


def remote_uuid(account_id: str, remote_id: str) -> str:
    return str(uuid.uuid5(REMOTE_ID_NAMESPACE, f"{account_id}:{remote_id}"))


@dataclass
class RemoteSystems:
    """What the integrations need to call out: the secret box, the operator's allow-list, rate-limit waits."""

    box: SecretBox
    allow: AllowList = field(default_factory=AllowList)
    rate_limits: RateLimitPolicy = field(default_factory=RateLimitPolicy)
    jira_oauth: JiraOAuthApp | None = None
    timeout_s: float = 10.0

    def open_credentials(self, account: IntegrationAccount) -> dict[str, Any]:
        return json.loads(self.box.open(account.sealed_credentials))

    def seal_credentials(self, credentials: dict[str, Any]) -> str:
        return self.box.seal(json.dumps(credentials, sort_keys=True))

    def webhook_secret(self, account: IntegrationAccount) -> str:
        return self.box.open(account.sealed_webhook_secret)

    async def check_destination(self, url: str, pointer: str) -> None:
        """The URL may be called (public, or on the operator's allow-list): a 400 saying why otherwise."""
        try:
            await validate_destination(url, self.allow)
        except DestinationRefused as exc:
            raise InvalidInput(exc.reason, pointer) from None

    def jira(self, account: IntegrationAccount, credentials: dict[str, Any] | None = None) -> JiraClient:
        creds = credentials if credentials is not None else self.open_credentials(account)
        if account.auth_type == JiraAuth.API_TOKEN:
            return JiraClient(
                account.base_url,
                (account.principal, creds["api_token"]),
                allow=self.allow,
                rate_limits=self.rate_limits,
                timeout=self.timeout_s,
            )
        return jira_oauth_client(self, account, creds)

    def servicenow(self, account: IntegrationAccount, credentials: dict[str, Any] | None = None) -> ServiceNowClient:
        creds = credentials if credentials is not None else self.open_credentials(account)
        if account.auth_type == ServiceNowAuth.BASIC:
            return ServiceNowClient(
                account.base_url,
                basic=(account.principal, creds["password"]),
                allow=self.allow,
                rate_limits=self.rate_limits,
                timeout=self.timeout_s,
            )
        return ServiceNowClient(
            account.base_url,
            client_credentials=(account.principal, creds["client_secret"]),
            allow=self.allow,
            rate_limits=self.rate_limits,
            timeout=self.timeout_s,
        )

    def client(self, account: IntegrationAccount) -> JiraClient | ServiceNowClient:
        return self.jira(account) if account.system == JIRA else self.servicenow(account)


def remote_systems_from_env(env: Mapping[str, str] | None = None) -> RemoteSystems:
    env = os.environ if env is None else env
    oauth = None
    if env.get("CASEM_JIRA_OAUTH_CLIENT_ID") and env.get("CASEM_JIRA_OAUTH_CLIENT_SECRET"):
        oauth = JiraOAuthApp(
            env["CASEM_JIRA_OAUTH_CLIENT_ID"],
            env["CASEM_JIRA_OAUTH_CLIENT_SECRET"],
            token_url=env.get("CASEM_JIRA_OAUTH_TOKEN_URL", JiraOAuthApp.token_url),
            api_root=env.get("CASEM_JIRA_OAUTH_API_ROOT", JiraOAuthApp.api_root),
        )
    return RemoteSystems(
        box=secret_box_from_env(env),
        allow=allow_list_from_env(env),
        jira_oauth=oauth,
        rate_limits=RateLimitPolicy(max_wait_s=float(env.get("CASEM_INTEGRATION_MAX_RETRY_AFTER_S", "30"))),
        timeout_s=float(env.get("CASEM_INTEGRATION_HTTP_TIMEOUT_S", "10")),
    )
