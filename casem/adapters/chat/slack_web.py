"""The Slack Web API methods casem calls, through the guarded HTTP client (casem/adapters/http).

slack_sdk's own HTTP stack (urllib, aiohttp) would bypass the outbound guard, so the methods are called
here with httpx; slack_sdk is used for what needs no network (the request signature verifier).

Slack answers HTTP 200 with `{"ok": false, "error": ...}` for most errors, and HTTP 429 with a Retry-After
header (body `{"ok": false, "error": "ratelimited"}`) when rate limited: both raise `SlackApiError`, the
latter with `retry_after`. `call_with_retries` waits Retry-After (capped) and tries again a few times.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import httpx

from casem.adapters.http import allow_list_from_env, guarded_client, parse_retry_after

DEFAULT_SLACK_API_URL = "https://slack.com/api"
API_URL_ENV = "CASEM_SLACK_API_URL"
TRANSIENT = frozenset({"ratelimited", "service_unavailable", "internal_error", "fatal_error", "request_timeout"})
MAX_RETRY_AFTER_S = 30.0

T = TypeVar("T")


class SlackApiError(Exception):
    def __init__(self, method: str, error: str, *, retry_after: float | None = None, status: int = 200) -> None:
        super().__init__(f"Slack {method}: {error}")
        self.method = method
        self.error = error
        self.retry_after = retry_after
        self.status = status

    @property
    def transient(self) -> bool:
        return self.error in TRANSIENT or self.status >= 500


class SlackWebApi:
    """One client per process; every call names its bot token (each workspace has its own)."""

    def __init__(self, base_url: str = DEFAULT_SLACK_API_URL, client: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or guarded_client(allow_list_from_env(), timeout=httpx.Timeout(10.0, connect=5.0))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SlackWebApi:
        env = os.environ if env is None else env
        return cls(env.get(API_URL_ENV) or DEFAULT_SLACK_API_URL)

    async def close(self) -> None:
        await self._client.aclose()

    async def _answer(self, method: str, response: httpx.Response) -> dict[str, Any]:
        if response.status_code == 429:
            raise SlackApiError(
                method, "ratelimited", retry_after=parse_retry_after(response.headers.get("Retry-After")), status=429
            )
        if response.status_code >= 300:
            raise SlackApiError(method, f"http_{response.status_code}", status=response.status_code)
        try:
            body = response.json()
        except ValueError:
            raise SlackApiError(method, "invalid_response") from None
        if not body.get("ok"):
            raise SlackApiError(method, str(body.get("error") or "unknown_error"))
        return body  # type: ignore[no-any-return]

    async def _post_json(self, method: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._client.post(
            f"{self.base_url}/{method}",
            json={k: v for k, v in body.items() if v is not None},
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"},
        )
        return await self._answer(method, response)

    async def _get(self, method: str, token: str, params: dict[str, Any]) -> dict[str, Any]:
        # users.info and conversations.replies take form/query arguments, not JSON.
        response = await self._client.get(
            f"{self.base_url}/{method}",
            params={k: v for k, v in params.items() if v is not None},
            headers={"Authorization": f"Bearer {token}"},
        )
        return await self._answer(method, response)

    async def post_message(
        self,
        token: str,
        channel: str,
        text: str,
        *,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """chat.postMessage; returns the answer (`ts`, `channel`, `message`)."""
        return await self._post_json(
            "chat.postMessage",
            token,
            {"channel": channel, "text": text, "blocks": blocks, "thread_ts": thread_ts, "metadata": metadata},
        )

    async def post_ephemeral(
        self,
        token: str,
        channel: str,
        user: str,
        text: str,
        *,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
    ) -> str:
        """chat.postEphemeral: a message only `user` sees; returns its message_ts."""
        answer = await self._post_json(
            "chat.postEphemeral",
            token,
            {"channel": channel, "user": user, "text": text, "blocks": blocks, "thread_ts": thread_ts},
        )
        return str(answer.get("message_ts") or "")

    async def get_permalink(self, token: str, channel: str, message_ts: str) -> str:
        answer = await self._get("chat.getPermalink", token, {"channel": channel, "message_ts": message_ts})
        return str(answer.get("permalink") or "")

    async def replies(self, token: str, channel: str, ts: str, *, limit: int = 200, max_pages: int = 10) -> list[dict]:
        """conversations.replies: the thread's parent and replies, oldest first, following the cursor."""
        messages: list[dict[str, Any]] = []
        cursor = None
        for _ in range(max_pages):
            answer = await self._get(
                "conversations.replies", token, {"channel": channel, "ts": ts, "limit": limit, "cursor": cursor}
            )
            messages.extend(answer.get("messages") or [])
            cursor = (answer.get("response_metadata") or {}).get("next_cursor")
            if not answer.get("has_more") or not cursor:
                break
        return messages

    async def user_info(self, token: str, user: str) -> dict[str, Any]:
        answer = await self._get("users.info", token, {"user": user})
        return answer.get("user") or {}

    async def oauth_v2_access(self, client_id: str, client_secret: str, code: str, redirect_uri: str | None) -> dict:
        """Exchange an install's code for the bot token (client credentials by HTTP Basic, as Slack prefers)."""
        response = await self._client.post(
            f"{self.base_url}/oauth.v2.access",
            data={k: v for k, v in {"code": code, "redirect_uri": redirect_uri}.items() if v},
            auth=(client_id, client_secret),
        )
        return await self._answer("oauth.v2.access", response)


async def call_with_retries(call: Callable[[], Awaitable[T]], *, attempts: int = 3) -> T:
    """Run a Slack call; on `ratelimited` (or another transient error) wait Retry-After (capped; 1 s when absent)
    and try again, at most `attempts` times in all."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except SlackApiError as exc:
            if not exc.transient or attempt == attempts:
                raise
            await asyncio.sleep(min(exc.retry_after if exc.retry_after is not None else 1.0, MAX_RETRY_AFTER_S))
        except httpx.TransportError:
            if attempt == attempts:
                raise
            await asyncio.sleep(0.5 * attempt)
    raise AssertionError("unreachable")
