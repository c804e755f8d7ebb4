"""Jira Cloud platform REST API v3: the subset casem uses, over the guarded outbound client.

Operations (paths of Atlassian's published OpenAPI document): `GET /rest/api/3/myself`, `POST /rest/api/3/issue`,
`GET|PUT /rest/api/3/issue/{issueIdOrKey}`, `GET|POST /rest/api/3/issue/{issueIdOrKey}/transitions`,
`POST /rest/api/3/issue/{issueIdOrKey}/comment`, `POST /rest/api/3/search/jql` (token pagination:
`nextPageToken` until `isLast`), `GET /rest/api/3/user/search`. Rich text (descriptions, comments) is
Atlassian Document Format in v3; casem keeps plain text and converts at this edge.

The client is asynchronous (httpx); no Jira library is used because each builds its own HTTP session,
which the outbound guard could not vet (see docs/outbound-http.md).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

import httpx
from prometheus_client import Counter, Histogram

from casem.adapters.http import AllowList, DestinationPolicy, guarded_client
from casem.adapters.integrations.auth import RefreshingBearer
from casem.adapters.integrations.errors import RemoteError
from casem.adapters.integrations.ratelimit import RateLimitPolicy, honour_retry_after

SYSTEM = "jira"
API = "/rest/api/3"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

CALLS = Counter(
    "casem_integration_remote_calls_total", "Calls to Jira and ServiceNow", ["system", "operation", "outcome"]
)
CALL_SECONDS = Histogram("casem_integration_remote_call_seconds", "Duration of one remote call", ["system"])


# -- Atlassian Document Format <-> plain text ------------------------------------------------------------------


def text_to_adf(text: str) -> dict[str, Any]:
    """Plain text as an ADF document: one paragraph per block separated by a blank line, hard breaks within."""
    paragraphs = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        content: list[dict[str, Any]] = []
        for i, line in enumerate(block.split("\n")):
            if i:
                content.append({"type": "hardBreak"})
            if line:
                content.append({"type": "text", "text": line})
        paragraphs.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": paragraphs}


def adf_to_text(node: Any) -> str:
    """The plain text of an ADF document (or a string, which Jira sends in changelogs and older payloads)."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    if kind == "text":
        return str(node.get("text", ""))
    if kind == "hardBreak":
        return "\n"
    if kind in ("mention", "emoji", "status", "inlineCard", "date"):
        attrs = node.get("attrs") or {}
        return str(attrs.get("text") or attrs.get("shortName") or attrs.get("url") or "")
    children = "".join(adf_to_text(c) for c in node.get("content") or [])
    if kind == "doc":
        return "\n\n".join(adf_to_text(c) for c in node.get("content") or []).strip("\n")
    if kind in ("bulletList", "orderedList"):
        return "\n".join("- " + adf_to_text(item) for item in node.get("content") or [])
    return children


class JiraClient:
    """One Jira Cloud site. `api_base` is the site URL for API tokens, or `https://api.atlassian.com/ex/jira/
    {cloudId}` for OAuth 2.0 (3LO); `site_url` is where people browse issues (`{site_url}/browse/KEY-1`)."""

    def __init__(
        self,
        api_base: str,
        auth: httpx.Auth | tuple[str, str],
        *,
        site_url: str | None = None,
        allow: AllowList | None = None,
        policy: DestinationPolicy | None = None,
        rate_limits: RateLimitPolicy | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.site_url = (site_url or api_base).rstrip("/")
        self.auth = auth
        self.rate_limits = rate_limits or RateLimitPolicy()
        self._http = guarded_client(
            allow,
            policy=policy,
            timeout=timeout,
            base_url=self.api_base,
            auth=auth,
            headers={"Accept": "application/json"},
        )

    async def __aenter__(self) -> JiraClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    def browse_url(self, key: str) -> str:
        return f"{self.site_url}/browse/{key}"

    async def _request(self, operation: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def once() -> httpx.Response:
            started = time.perf_counter()
            try:
                response = await self._http.request(method, path, **kwargs)
            except RemoteError:
                raise
            except Exception as exc:  # httpx's transport errors and the guard's refusals
                CALLS.labels(SYSTEM, operation, "error").inc()
                raise RemoteError.of_exception(SYSTEM, exc) from exc
            finally:
                CALL_SECONDS.labels(SYSTEM).observe(time.perf_counter() - started)
            if response.status_code >= 300:
                CALLS.labels(SYSTEM, operation, str(response.status_code)).inc()
                raise RemoteError.of_response(SYSTEM, response)
            CALLS.labels(SYSTEM, operation, "ok").inc()
            return response

        async def renewing() -> httpx.Response:
            try:
                return await once()
            except RemoteError as exc:
                if exc.status != 401 or not isinstance(self.auth, RefreshingBearer):
                    raise
                await self.auth.renew()  # an access token the remote no longer takes: renew it, try once more
                return await once()

        return await honour_retry_after(renewing, self.rate_limits, SYSTEM)

    @staticmethod
    def _json(response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            raise RemoteError.unexpected(SYSTEM, f"{what} is not JSON") from None
        if not isinstance(body, dict):
            raise RemoteError.unexpected(SYSTEM, f"{what} is not an object")
        return body

    # -- operations --------------------------------------------------------------------------------------------

    async def myself(self) -> dict[str, Any]:
        """The user the credentials belong to (accountId, emailAddress, displayName)."""
        return self._json(await self._request("myself", "GET", f"{API}/myself"), "myself")

    async def create_issue(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Create an issue; answers Jira's CreatedIssue (`id`, `key`, `self`)."""
        created = self._json(
            await self._request("create_issue", "POST", f"{API}/issue", json={"fields": fields}), "issue"
        )
        if not isinstance(created.get("id"), str) or not isinstance(created.get("key"), str):
            raise RemoteError.unexpected(SYSTEM, "created issue without id and key")
        return created

    async def get_issue(
        self, key: str, fields: Sequence[str] | None = None, expand: Sequence[str] | None = None
    ) -> dict[str, Any]:
        params: dict[str, str] = {}
        if fields:
            params["fields"] = ",".join(fields)
        if expand:
            params["expand"] = ",".join(expand)
        response = await self._request("get_issue", "GET", f"{API}/issue/{quote(key, safe='')}", params=params)
        return self._json(response, "issue")

    async def edit_issue(self, key: str, fields: dict[str, Any]) -> None:
        await self._request("edit_issue", "PUT", f"{API}/issue/{quote(key, safe='')}", json={"fields": fields})

    async def transitions(self, key: str) -> list[dict[str, Any]]:
        response = await self._request("transitions", "GET", f"{API}/issue/{quote(key, safe='')}/transitions")
        found = self._json(response, "transitions").get("transitions")
        if not isinstance(found, list):
            raise RemoteError.unexpected(SYSTEM, "transitions without a list")
        return found

    async def transition(self, key: str, transition_id: str) -> None:
        await self._request(
            "transition",
            "POST",
            f"{API}/issue/{quote(key, safe='')}/transitions",
            json={"transition": {"id": transition_id}},
        )

    async def add_comment(self, key: str, text: str) -> dict[str, Any]:
        """Add a comment; answers Jira's Comment (`id`, `author`, `created`...)."""
        response = await self._request(
            "add_comment", "POST", f"{API}/issue/{quote(key, safe='')}/comment", json={"body": text_to_adf(text)}
        )
        comment = self._json(response, "comment")
        if not isinstance(comment.get("id"), str):
            raise RemoteError.unexpected(SYSTEM, "comment without id")
        return comment

    async def search(
        self, jql: str, fields: Sequence[str], *, expand: str | None = None, page_size: int = 50
    ) -> AsyncIterator[dict[str, Any]]:
        """Every issue matching `jql`, page by page (`nextPageToken` until `isLast`)."""
        token: str | None = None
        while True:
            body: dict[str, Any] = {"jql": jql, "fields": list(fields), "maxResults": page_size}
            if expand:
                body["expand"] = expand
            if token:
                body["nextPageToken"] = token
            page = self._json(await self._request("search", "POST", f"{API}/search/jql", json=body), "search")
            issues = page.get("issues")
            if not isinstance(issues, list):
                raise RemoteError.unexpected(SYSTEM, "search results without issues")
            for issue in issues:
                yield issue
            token = page.get("nextPageToken")
            if page.get("isLast", True) or not token:
                return

    async def find_user(self, email: str) -> dict[str, Any] | None:
        """The Jira user with this e-mail address, if Jira shows one to the integration's user."""
        response = await self._request("find_user", "GET", f"{API}/user/search", params={"query": email})
        try:
            users = response.json()
        except ValueError:
            raise RemoteError.unexpected(SYSTEM, "user search is not JSON") from None
        if not isinstance(users, list):
            raise RemoteError.unexpected(SYSTEM, "user search is not a list")
        for user in users:
            if isinstance(user, dict) and str(user.get("emailAddress", "")).lower() == email.lower():
                return user
        return None
