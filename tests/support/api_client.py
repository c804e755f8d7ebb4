"""Orgs seen through the official client (datadog-api-client) against a live case-api, and the name table its
outbound guard resolves from. The `server`, `org` and `other_org` fixtures are in tests/support/fixtures/case_api.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.v2.api.case_management_api import CaseManagementApi
from datadog_api_client.v2.api.case_management_attribute_api import CaseManagementAttributeApi
from datadog_api_client.v2.api.case_management_type_api import CaseManagementTypeApi
from datadog_api_client.v2.api.teams_api import TeamsApi
from datadog_api_client.v2.api.users_api import UsersApi

from casem.app.identity.service import BootstrapCredentials, bootstrap_org
from tests.support.live_server import LiveServer

# Names the suites save as webhook URLs, with the addresses the guard sees for them (never connected to).
TEST_HOSTS = {
    "hooks.example.com": ["8.8.8.8"],  # public
    "acme.webhook.office.com": ["52.96.0.10"],  # public: a Teams incoming webhook
    "internal.example.com": ["10.20.0.5"],  # private: refused unless an allow-list names 10.20.0.0/16
    "rebind.example.com": ["8.8.8.8", "127.0.0.1"],  # refused: one of its addresses is loopback
}


def table_resolver(table: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"{host} does not resolve")
        return table[host]

    return resolve


@dataclass
class OrgClient:
    """One org seen through the official client (and raw HTTP for malformed requests)."""

    server: LiveServer
    creds: BootstrapCredentials
    api_client: ApiClient
    http: httpx.Client
    apis: dict[str, object] = field(default_factory=dict)

    @property
    def cases(self) -> CaseManagementApi:
        return CaseManagementApi(self.api_client)

    @property
    def types(self) -> CaseManagementTypeApi:
        return CaseManagementTypeApi(self.api_client)

    @property
    def attributes(self) -> CaseManagementAttributeApi:
        return CaseManagementAttributeApi(self.api_client)

    @property
    def users(self) -> UsersApi:
        return UsersApi(self.api_client)

    @property
    def teams(self) -> TeamsApi:
        return TeamsApi(self.api_client)

    @property
    def org_id(self) -> str:
        return self.creds.org_id

    @property
    def user_id(self) -> str:
        return self.creds.user_id


def client_for(server: LiveServer, creds: BootstrapCredentials) -> OrgClient:
    """A client of `server` with the given org's keys (the official client and raw HTTP)."""
    config = Configuration(host=server.url)
    config.api_key["apiKeyAuth"] = creds.api_key
    config.api_key["appKeyAuth"] = creds.app_key
    config.enable_retry = False
    api_client = ApiClient(config)
    http = httpx.Client(
        base_url=server.url,
        headers={"DD-API-KEY": creds.api_key, "DD-APPLICATION-KEY": creds.app_key},
        timeout=30,
    )
    return OrgClient(server=server, creds=creds, api_client=api_client, http=http)


def new_org(server: LiveServer, name: str | None = None) -> OrgClient:
    async def _bootstrap() -> BootstrapCredentials:
        async with server.context.uow() as uow:
            creds = await bootstrap_org(uow, name or f"org-{uuid.uuid4().hex[:6]}", "admin@example.com")
            await uow.commit()
            return creds

    return client_for(server, server.call(_bootstrap()))


def unique_key(prefix: str = "P") -> str:
    return (prefix + uuid.uuid4().hex[:9]).upper()[:10]
