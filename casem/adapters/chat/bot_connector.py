"""The Bot Connector API calls casem makes to post into Teams, through the guarded HTTP client (casem/adapters/http).

- The bot's app token: OAuth 2.0 client credentials (the bot's Microsoft App ID and password) at Microsoft's token
  endpoint for bots, scope `https://api.botframework.com/.default`; kept until shortly before it expires.
- `POST {serviceUrl}/v3/conversations/{conversationId}/activities` with that token as Bearer: a message into a
  conversation (a reply into a channel thread when the conversation id ends in `;messageid=<thread root id>`).
  The answer (201, or 200) names the new activity's `id`.

Failures raise `BotConnectorError` (an `OutboundError`): 408, 429 and 5xx are transient, with the Retry-After the
receiver sent; other statuses are permanent. Its reason is written by casem: neither the receiver's body nor the
app password ever reaches it. A 401 on an activity drops the cached token and tries once more with a new one.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from casem.adapters.http import OutboundError, allow_list_from_env, guarded_client, raise_for_response

DEFAULT_TOKEN_URL = "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
DEFAULT_SCOPE = "https://api.botframework.com/.default"
APP_ID_ENV = "CASEM_TEAMS_APP_ID"
APP_PASSWORD_ENV = "CASEM_TEAMS_APP_PASSWORD"
TOKEN_URL_ENV = "CASEM_TEAMS_TOKEN_URL"
# A token is renewed this long before it expires (at most half its lifetime), so none expires in flight.
REFRESH_MARGIN_S = 300.0


class BotConnectorError(OutboundError):
    """A failed Bot Connector or token call: `OutboundError`'s status, reason, transient and retry_after."""

    @classmethod
    def of(cls, what: str, exc: BaseException) -> BotConnectorError:
        found = OutboundError.from_exception(exc)
        return cls(
            f"{what}: {found.reason}", status=found.status, transient=found.transient, retry_after=found.retry_after
        )


@dataclass(frozen=True)
class BotCredentials:
    app_id: str
    app_password: str
    token_url: str = DEFAULT_TOKEN_URL
    scope: str = DEFAULT_SCOPE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BotCredentials | None:
        """The bot's credentials from CASEM_TEAMS_APP_ID / CASEM_TEAMS_APP_PASSWORD (None when either is unset),
        the token endpoint from CASEM_TEAMS_TOKEN_URL."""
        env = os.environ if env is None else env
        app_id, password = env.get(APP_ID_ENV), env.get(APP_PASSWORD_ENV)
        if not app_id or not password:
            return None
        return cls(app_id, password, env.get(TOKEN_URL_ENV) or DEFAULT_TOKEN_URL)

    def __repr__(self) -> str:  # never print the password
        return f"BotCredentials(app_id={self.app_id!r}, token_url={self.token_url!r})"


def thread_conversation_id(conversation_id: str, thread_id: str = "") -> str:
    """The conversation id that posts into a channel thread: `<channel conversation id>;messageid=<root id>`."""
    base = conversation_id.split(";messageid=", 1)[0]
    return f"{base};messageid={thread_id}" if thread_id else conversation_id


class BotConnector:
    """One per process: the app token is shared by every call (each tenant's serviceUrl is named per call)."""

    def __init__(
        self,
        credentials: BotCredentials,
        client: httpx.AsyncClient | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.credentials = credentials
        self._client = client or guarded_client(allow_list_from_env(), timeout=httpx.Timeout(10.0, connect=5.0))
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        await self._client.aclose()

    async def app_token(self) -> str:
        """The bot's access token, fetched when there is none or it is about to expire."""
        async with self._lock:
            if self._token is not None and self._clock() < self._renew_at:
                return self._token
            what = "the Bot Framework token endpoint"
            try:
                response = raise_for_response(
                    await self._client.post(
                        self.credentials.token_url,
                        data={
                            "grant_type": "client_credentials",
                            "client_id": self.credentials.app_id,
                            "client_secret": self.credentials.app_password,
                            "scope": self.credentials.scope,
                        },
                    )
                )
            except (httpx.HTTPError, OutboundError) as exc:
                raise BotConnectorError.of(what, exc) from None
            try:
                answer = response.json()
                token, lifetime = answer["access_token"], float(answer["expires_in"])
            except (ValueError, TypeError, KeyError):
                raise BotConnectorError(f"{what} answered without a token", transient=True) from None
            if not isinstance(token, str) or not token or lifetime <= 0:
                raise BotConnectorError(f"{what} answered without a usable token", transient=True)
            self._token = token
            self._renew_at = self._clock() + lifetime - min(REFRESH_MARGIN_S, lifetime / 2)
            return token

    def forget_token(self) -> None:
        self._token = None

    async def send_to_conversation(self, service_url: str, conversation_id: str, activity: dict[str, Any]) -> str:
        """Post the activity into the conversation; the id Teams gave the new message ("" when it names none)."""
        url = f"{service_url.rstrip('/')}/v3/conversations/{quote(conversation_id, safe='')}/activities"
        what = "the Bot Connector"
        for attempt in (1, 2):
            token = await self.app_token()
            try:
                response = await self._client.post(url, json=activity, headers={"Authorization": f"Bearer {token}"})
                if response.status_code == 401 and attempt == 1:
                    self.forget_token()  # revoked or expired early: one more try with a new token
                    continue
                raise_for_response(response)
            except (httpx.HTTPError, OutboundError) as exc:
                raise BotConnectorError.of(what, exc) from None
            try:
                answer = response.json()
            except ValueError:
                return ""
            found = answer.get("id") if isinstance(answer, dict) else None
            return found if isinstance(found, str) else ""
        raise AssertionError("unreachable")
