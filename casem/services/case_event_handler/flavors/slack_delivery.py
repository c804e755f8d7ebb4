"""slack-delivery: sends `slack` deliveries with the Slack Web API `chat.postMessage`.

A delivery whose target names a `workspace_id` (a chat workspace installed through case-chat-interactions:
the messages casem posts into a linked thread) is sent with that workspace's bot token, into its
`thread_ts`, through the guarded client (casem/adapters/chat/slack_web.py). Other deliveries:

POST {slack_api_url}/chat.postMessage (CASEM_SLACK_API_URL, default https://slack.com/api) with the
bot token (slack_token / CASEM_SLACK_TOKEN) as bearer. Slack answers HTTP 200 even for errors, so
`{"ok": false}` is a failure: transient for rate limits and Slack-side errors, permanent otherwise.

A delivery to a person (the project's notification settings, target `{"user_email": ...}`) is a direct message:
the Slack user is found with `users.lookupByEmail` and the message posted to their id.

The API URL is the operator's, so the guarded client uses the operator's allow-list only. Stored errors
never carry Slack's answer: only its `error` code, when it looks like one (`^[a-z_]{1,64}$`).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import httpx

from casem.adapters.chat.slack_web import SlackApiError, SlackWebApi
from casem.adapters.secrets import secret_box_from_env
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.chat.installations import installation_for
from casem.domain.errors import NotFound
from casem.domain.notifications import SLACK, Delivery
from casem.services.case_event_handler.deliveries import (
    DeliveryFailed,
    DeliveryFlavor,
    DeliveryRejected,
    check_http,
    operator_client,
    outbound_call,
    setting,
)
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor

DEFAULT_SLACK_API_URL = "https://slack.com/api"
TRANSIENT_SLACK_ERRORS = frozenset(
    {"ratelimited", "service_unavailable", "internal_error", "fatal_error", "request_timeout"}
)
SLACK_ERROR_CODE = re.compile(r"[a-z_]{1,64}")


def slack_error_code(answer: dict[str, Any]) -> str | None:
    """Slack's `error` code when it is one (lower-case words and underscores); None for anything else."""
    error = answer.get("error")
    return error if isinstance(error, str) and SLACK_ERROR_CODE.fullmatch(error) else None


@flavor
class SlackDelivery(DeliveryFlavor):
    name: ClassVar[str] = "slack-delivery"
    channel: ClassVar[str] = SLACK

    async def send(self, delivery: Delivery, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        if delivery.target.get("workspace_id"):
            await self._send_installed(delivery, uow, services)
            return
        token = setting(services, "slack_token", "CASEM_SLACK_TOKEN")
        if not token:
            raise DeliveryRejected("no Slack bot token configured (slack_token / CASEM_SLACK_TOKEN)")
        base = str(setting(services, "slack_api_url", "CASEM_SLACK_API_URL", DEFAULT_SLACK_API_URL)).rstrip("/")
        headers = {"Authorization": f"Bearer {token}"}
        async with outbound_call(), operator_client(services) as client:
            channel = delivery.target.get("channel")
            if not channel:
                # Form-encoded POST: Slack's Web API takes it for every read method.
                found = await client.post(
                    f"{base}/users.lookupByEmail", data={"email": delivery.target["user_email"]}, headers=headers
                )
                user = _answer(found).get("user")
                channel = user.get("id") if isinstance(user, dict) else None
                if not isinstance(channel, str) or not channel:
                    raise DeliveryRejected("Slack's users.lookupByEmail answer names no user id")
            response = await client.post(
                f"{base}/chat.postMessage",
                json={"channel": channel, **delivery.payload},
                headers={**headers, "Content-Type": "application/json; charset=utf-8"},
            )
            _answer(response)

    async def _send_installed(self, delivery: Delivery, uow: UnitOfWork, services: HandlerServices) -> None:
        target = delivery.target
        try:
            installation = await installation_for(uow, "slack", target["workspace_id"], delivery.org_id)
        except NotFound:
            raise DeliveryRejected("the Slack workspace is no longer installed for this organization") from None
        base = str(setting(services, "slack_api_url", "CASEM_SLACK_API_URL", DEFAULT_SLACK_API_URL))
        api = SlackWebApi(base)
        try:
            await api.post_message(
                installation.bot_token(secret_box_from_env()),
                target["channel"],
                str(delivery.payload.get("text") or ""),
                blocks=delivery.payload.get("blocks"),
                thread_ts=target.get("thread_ts"),
                metadata=delivery.payload.get("metadata"),
            )
        except SlackApiError as exc:
            code = slack_error_code({"error": exc.error}) or "an unreadable error code"
            raise (DeliveryFailed if exc.transient else DeliveryRejected)(f"Slack error: {code}") from None
        except httpx.TransportError as exc:
            raise DeliveryFailed(f"Slack unreachable: {type(exc).__name__}") from None
        finally:
            await api.close()


def _answer(response: httpx.Response) -> dict[str, Any]:
    """Slack's JSON answer, or the failure it stands for (Slack says errors with HTTP 200 and ok=false)."""
    check_http(response)
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise DeliveryFailed("Slack answered with something that is not a JSON object")
    if answer.get("ok") is not True:
        code = slack_error_code(answer)
        if code is None:
            raise DeliveryRejected("Slack refused the message without a readable error code")
        raise (DeliveryFailed if code in TRANSIENT_SLACK_ERRORS else DeliveryRejected)(f"Slack error: {code}")
    return answer
