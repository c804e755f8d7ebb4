"""Jira OAuth 2.0 (3LO) with the app the operator registered at Atlassian.

1. `authorization_url` sends a person to Atlassian's consent screen (scopes to read and write issues,
   read users, and `offline_access` for a refresh token); Atlassian redirects back with a `code`.
2. `exchange_jira_code` (when the account is added with `auth: {type: oauth2, code, redirect_uri}`) trades the
   code for tokens at the token URL and finds the site's cloud id among the accessible resources.
3. `jira_oauth_client` calls `{api_root}/ex/jira/{cloudId}/rest/api/3/...` with the access token, refreshed
   when it expires or is refused; Atlassian rotates refresh tokens, so each new one is sealed back into the
   account at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from casem.adapters.http import guarded_client
from casem.adapters.integrations import JiraClient, RemoteError
from casem.adapters.integrations.auth import BearerToken, RefreshingBearer
from casem.domain.errors import InvalidInput
from casem.domain.events import utcnow
from casem.domain.integrations import JIRA, IntegrationAccount

if TYPE_CHECKING:
    from casem.app.integrations.remotes import RemoteSystems


@dataclass(frozen=True)
class JiraOAuthApp:
    """The operator's registered Atlassian OAuth 2.0 (3LO) app (CASEM_JIRA_OAUTH_CLIENT_ID/SECRET)."""

    client_id: str
    client_secret: str
    token_url: str = "https://auth.atlassian.com/oauth/token"
    api_root: str = "https://api.atlassian.com"


SCOPES = "read:jira-work write:jira-work read:jira-user offline_access"
AUTHORIZE_URL = "https://auth.atlassian.com/authorize"


def _app(remotes: RemoteSystems) -> JiraOAuthApp:
    if remotes.jira_oauth is None:
        raise InvalidInput(
            "OAuth 2.0 needs the operator's Atlassian app: set CASEM_JIRA_OAUTH_CLIENT_ID and "
            "CASEM_JIRA_OAUTH_CLIENT_SECRET, or use auth.type api_token",
            "/data/attributes/auth/type",
        )
    return remotes.jira_oauth


def authorization_url(remotes: RemoteSystems, redirect_uri: str, state: str, base: str = AUTHORIZE_URL) -> str:
    app = _app(remotes)
    query = {
        "audience": "api.atlassian.com",
        "client_id": app.client_id,
        "scope": SCOPES,
        "redirect_uri": redirect_uri,
        "state": state,
        "response_type": "code",
        "prompt": "consent",
    }
    return f"{base}?{urlencode(query)}"


async def _token_call(remotes: RemoteSystems, body: dict[str, Any]) -> dict[str, Any]:
    app = _app(remotes)
    async with guarded_client(remotes.allow, timeout=remotes.timeout_s) as http:
        try:
            response = await http.post(
                app.token_url, json={"client_id": app.client_id, "client_secret": app.client_secret, **body}
            )
        except Exception as exc:
            raise RemoteError.of_exception(JIRA, exc) from exc
        if response.status_code >= 300:
            raise RemoteError.of_response(JIRA, response)
        try:
            tokens = response.json()
            return {
                "access_token": str(tokens["access_token"]),
                "refresh_token": str(tokens.get("refresh_token") or body.get("refresh_token") or ""),
                "expires_at": time.time() + float(tokens.get("expires_in", 3600)),
            }
        except (ValueError, KeyError, TypeError):
            raise RemoteError.unexpected(JIRA, "token answer without access_token") from None


async def exchange_jira_code(
    remotes: RemoteSystems, account: IntegrationAccount, auth: dict[str, Any]
) -> dict[str, Any]:
    """The account's credentials from an authorization code: tokens and the site's cloud id."""
    pointer = "/data/attributes/auth"
    code, redirect_uri = auth.get("code"), auth.get("redirect_uri")
    if not isinstance(code, str) or not code or not isinstance(redirect_uri, str) or not redirect_uri:
        raise InvalidInput("an oauth2 account needs the authorization code and its redirect_uri", pointer)
    app = _app(remotes)
    try:
        tokens = await _token_call(
            remotes, {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        )
        async with guarded_client(remotes.allow, timeout=remotes.timeout_s) as http:
            response = await http.get(
                f"{app.api_root}/oauth/token/accessible-resources",
                headers={"Authorization": f"Bearer {tokens['access_token']}", "Accept": "application/json"},
            )
        if response.status_code >= 300:
            raise RemoteError.of_response(JIRA, response)
        resources = response.json()
    except RemoteError as exc:
        raise InvalidInput(f"Atlassian did not accept the authorization: {exc.explanation}", pointer) from None
    except ValueError:
        raise InvalidInput(
            "Atlassian answered the accessible resources with something else than JSON", pointer
        ) from None
    for resource in resources if isinstance(resources, list) else []:
        if isinstance(resource, dict) and str(resource.get("url", "")).rstrip("/") == account.base_url:
            account.principal = app.client_id
            return {**tokens, "cloud_id": str(resource["id"])}
    raise InvalidInput(f"the authorization does not grant access to {account.base_url}", pointer)


def jira_oauth_client(remotes: RemoteSystems, account: IntegrationAccount, creds: dict[str, Any]) -> JiraClient:
    """A client on the site's cloud-id API path. Renewed tokens are sealed back into `account` at once (the
    caller's unit of work stores them), since Atlassian's rotating refresh tokens work only once."""
    app = _app(remotes)

    async def refresh(old: BearerToken | None) -> BearerToken:
        refresh_token = (old.refresh_token if old else None) or creds.get("refresh_token")
        if not refresh_token:
            raise RemoteError(
                "the Jira authorization has no refresh token; authorize casem again",
                status=401,
                transient=False,
                system=JIRA,
            )
        tokens = await _token_call(remotes, {"grant_type": "refresh_token", "refresh_token": refresh_token})
        return BearerToken(tokens["access_token"], tokens["expires_at"], tokens["refresh_token"])

    def keep(token: BearerToken) -> None:
        creds.update(access_token=token.access_token, refresh_token=token.refresh_token, expires_at=token.expires_at)
        if account.sealed_credentials:  # a stored account (a new one is sealed when it is saved)
            account.sealed_credentials = remotes.seal_credentials(creds)
            account.modified_at = utcnow()

    token = BearerToken(creds["access_token"], creds.get("expires_at"), creds.get("refresh_token"))
    return JiraClient(
        f"{app.api_root}/ex/jira/{creds['cloud_id']}",
        RefreshingBearer(refresh, token, keep),
        site_url=account.base_url,
        allow=remotes.allow,
        rate_limits=remotes.rate_limits,
        timeout=remotes.timeout_s,
    )
