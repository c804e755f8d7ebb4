"""Credentials on the wire: HTTP basic (Jira API tokens, ServiceNow users) or OAuth bearer tokens that are
fetched or refreshed when missing, expired or refused (Jira OAuth 2.0 (3LO), ServiceNow client credentials)."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

import httpx


@dataclass
class BearerToken:
    access_token: str
    expires_at: float | None = None  # time.time() seconds
    refresh_token: str | None = None

    def fresh(self, margin_s: float = 30.0) -> bool:
        return self.expires_at is None or time.time() < self.expires_at - margin_s


class RefreshingBearer(httpx.Auth):
    """`Authorization: Bearer` with a token obtained from `fetch` when there is none or it expired. A request the
    remote refuses with 401 is renewed and sent again by the client (`renew`): httpx counts an auth flow's
    extra round trip as a redirect, which the guarded client does not follow. `on_renew` hears of each new
    token, so the caller can keep it: some issuers rotate refresh tokens, and the previous one stops working."""

    def __init__(
        self,
        fetch: Callable[[BearerToken | None], Awaitable[BearerToken]],
        token: BearerToken | None,
        on_renew: Callable[[BearerToken], None] | None = None,
    ) -> None:
        self._fetch = fetch
        self._on_renew = on_renew
        self.token = token

    async def renew(self) -> str:
        self.token = await self._fetch(self.token)
        if self._on_renew is not None:
            self._on_renew(self.token)
        return self.token.access_token

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        access = self.token.access_token if self.token and self.token.fresh() else await self.renew()
        request.headers["Authorization"] = f"Bearer {access}"
        yield request

    def sync_auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        raise RuntimeError("RefreshingBearer is for the asynchronous guarded client")
