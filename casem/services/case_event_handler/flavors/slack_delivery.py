"""slack-delivery: sends `slack` deliveries with the Slack Web API `chat.postMessage`.

POST {slack_api_url}/chat.postMessage (CASEM_SLACK_API_URL, default https://slack.com/api) with the
bot token (slack_token / CASEM_SLACK_TOKEN) as bearer. Slack answers HTTP 200 even for errors, so
`{"ok": false}` is a failure: transient for rate limits and Slack-side errors, permanent otherwise.

A delivery to a person (the project's notification settings, target `{"user_email": ...}`) is a direct message:
the Slack user is found with `users.lookupByEmail` and the message posted to their id.
"""

from __future__ import annotations

from typing import ClassVar

import httpx

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.notifications import SLACK, Delivery
from casem.services.case_event_handler.deliveries import (
    DeliveryFailed,
    DeliveryFlavor,
    DeliveryRejected,
    check_http,
    http_timeout,
    setting,
)
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor

DEFAULT_SLACK_API_URL = "https://slack.com/api"
TRANSIENT_SLACK_ERRORS = frozenset(
    {"ratelimited", "service_unavailable", "internal_error", "fatal_error", "request_timeout"}
)


@flavor
class SlackDelivery(DeliveryFlavor):
    name: ClassVar[str] = "slack-delivery"
    channel: ClassVar[str] = SLACK

    async def send(self, delivery: Delivery, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        token = setting(services, "slack_token", "CASEM_SLACK_TOKEN")
        if not token:
            raise DeliveryRejected("no Slack bot token configured (slack_token / CASEM_SLACK_TOKEN)")
        base = str(setting(services, "slack_api_url", "CASEM_SLACK_API_URL", DEFAULT_SLACK_API_URL)).rstrip("/")
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(timeout=http_timeout(services)) as client:
            channel = delivery.target.get("channel")
            if not channel:
                # Form-encoded POST: Slack's Web API takes it for every read method.
                found = await client.post(
                    f"{base}/users.lookupByEmail", data={"email": delivery.target["user_email"]}, headers=headers
                )
                channel = _answer(found)["user"]["id"]
            response = await client.post(
                f"{base}/chat.postMessage",
                json={"channel": channel, **delivery.payload},
                headers={**headers, "Content-Type": "application/json; charset=utf-8"},
            )
        _answer(response)


def _answer(response: httpx.Response) -> dict:
    """Slack's JSON answer, or the failure it stands for (Slack says errors with HTTP 200 and ok=false)."""
    check_http(response)
    try:
        answer = response.json()
    except ValueError as exc:
        raise DeliveryFailed(f"Slack answered non-JSON: {response.text[:200]}") from exc
    if not answer.get("ok"):
        error = answer.get("error", "unknown_error")
        raise (DeliveryFailed if error in TRANSIENT_SLACK_ERRORS else DeliveryRejected)(f"Slack error: {error}")
    return answer
