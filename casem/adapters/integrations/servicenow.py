"""ServiceNow Table API: the subset casem uses, over the guarded outbound client.

`GET /api/now/table/{table}` (encoded query `sysparm_query`, `sysparm_fields` with dot-walking,
`sysparm_limit`/`sysparm_offset` pagination, `Link: <...>;rel="next"`), `GET|PATCH /api/now/table/{table}/
{sys_id}`, `POST /api/now/table/{table}`; answers are `{"result": ...}`, errors `{"error": {"message",
"detail"}, "status": "failure"}`. OAuth client credentials come from `POST /oauth_token.do`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from casem.adapters.http import AllowList, DestinationPolicy, guarded_client
from casem.adapters.integrations.auth import BearerToken, RefreshingBearer
from casem.adapters.integrations.errors import RemoteError
from casem.adapters.integrations.jira import CALL_SECONDS, CALLS, DEFAULT_TIMEOUT
from casem.adapters.integrations.ratelimit import RateLimitPolicy, honour_retry_after

SYSTEM = "servicenow"
TABLE = "/api/now/table"


def instance_url(instance_name: str) -> str:
    """The default base URL of a ServiceNow instance name (`acme` → `https://acme.service-now.com`)."""
    return f"https://{instance_name}.service-now.com"


class ServiceNowClient:
    def __init__(
        self,
        base_url: str,
        *,
        basic: tuple[str, str] | None = None,
        client_credentials: tuple[str, str] | None = None,
        token: BearerToken | None = None,
        allow: AllowList | None = None,
        policy: DestinationPolicy | None = None,
        rate_limits: RateLimitPolicy | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    ) -> None:
        if (basic is None) == (client_credentials is None):
            raise ValueError("pass either basic credentials or OAuth client credentials")
        self.base_url = base_url.rstrip("/")
        self.rate_limits = rate_limits or RateLimitPolicy()
        self._client_credentials = client_credentials
        auth: httpx.Auth | tuple[str, str] = basic if basic is not None else RefreshingBearer(self._fetch_token, token)
        self.auth = auth
        self._http = guarded_client(
            allow,
            policy=policy,
            timeout=timeout,
            base_url=self.base_url,
            auth=auth,
            headers={"Accept": "application/json"},
        )
        # The token endpoint is called without the bearer auth (it issues the bearer).
        self._token_http = guarded_client(allow, policy=policy, timeout=timeout, base_url=self.base_url)

    async def __aenter__(self) -> ServiceNowClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()
        await self._token_http.aclose()

    def record_url(self, table: str, sys_id: str) -> str:
        """Where a person opens the record (Datadog's `sys_target_link`)."""
        return f"{self.base_url}/nav_to.do?uri={table}.do?sys_id={sys_id}"

    async def _fetch_token(self, _old: BearerToken | None) -> BearerToken:
        assert self._client_credentials is not None
        client_id, client_secret = self._client_credentials
        try:
            response = await self._token_http.post(
                "/oauth_token.do",
                data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret},
            )
        except Exception as exc:
            raise RemoteError.of_exception(SYSTEM, exc) from exc
        if response.status_code >= 300:
            raise RemoteError.of_response(SYSTEM, response)
        try:
            body = response.json()
            access = body["access_token"]
            expires_in = float(body.get("expires_in", 1800))
        except (ValueError, KeyError, TypeError):
            raise RemoteError.unexpected(SYSTEM, "token answer without access_token") from None
        return BearerToken(access_token=str(access), expires_at=time.time() + expires_in)

    async def _request(self, operation: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def once() -> httpx.Response:
            started = time.perf_counter()
            try:
                response = await self._http.request(method, path, **kwargs)
            except RemoteError:
                raise
            except Exception as exc:
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
    def _result(response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            raise RemoteError.unexpected(SYSTEM, "answer is not JSON") from None
        if not isinstance(body, dict) or "result" not in body:
            raise RemoteError.unexpected(SYSTEM, "answer without result")
        return body["result"]

    def _record(self, response: httpx.Response) -> dict[str, Any]:
        record = self._result(response)
        if not isinstance(record, dict) or not isinstance(record.get("sys_id"), str):
            raise RemoteError.unexpected(SYSTEM, "record without sys_id")
        return record

    async def get(self, table: str, sys_id: str, fields: Sequence[str] | None = None) -> dict[str, Any]:
        params = {"sysparm_exclude_reference_link": "true"}
        if fields:
            params["sysparm_fields"] = ",".join(fields)
        path = f"{TABLE}/{quote(table, safe='')}/{quote(sys_id, safe='')}"
        return self._record(await self._request("get", "GET", path, params=params))

    async def create(self, table: str, values: dict[str, Any]) -> dict[str, Any]:
        path = f"{TABLE}/{quote(table, safe='')}"
        return self._record(
            await self._request("create", "POST", path, json=values, params={"sysparm_exclude_reference_link": "true"})
        )

    async def update(self, table: str, sys_id: str, values: dict[str, Any]) -> dict[str, Any]:
        path = f"{TABLE}/{quote(table, safe='')}/{quote(sys_id, safe='')}"
        return self._record(
            await self._request("update", "PATCH", path, json=values, params={"sysparm_exclude_reference_link": "true"})
        )

    async def query(
        self, table: str, query: str, fields: Sequence[str] | None = None, *, page_size: int = 100
    ) -> AsyncIterator[dict[str, Any]]:
        """Every record matching the encoded query, page by page (offset pagination)."""
        offset = 0
        while True:
            params = {
                "sysparm_query": query,
                "sysparm_limit": str(page_size),
                "sysparm_offset": str(offset),
                "sysparm_exclude_reference_link": "true",
            }
            if fields:
                params["sysparm_fields"] = ",".join(fields)
            response = await self._request("query", "GET", f"{TABLE}/{quote(table, safe='')}", params=params)
            records = self._result(response)
            if not isinstance(records, list):
                raise RemoteError.unexpected(SYSTEM, "query result is not a list")
            for record in records:
                yield record
            if len(records) < page_size or 'rel="next"' not in response.headers.get("link", ""):
                return
            offset += len(records)
