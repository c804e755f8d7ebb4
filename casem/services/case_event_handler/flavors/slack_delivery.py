"""slack-delivery: sends `slack` deliveries with the Slack Web API `chat.postMessage`.

POST {slack_api_url}/chat.postMessage (CASEM_SLACK_API_URL, default https://slack.com/api) with the
bot token (slack_token / CASEM_SLACK_TOKEN) as bearer. Slack answers HTTP 200 even for errors, so
`{"ok": false}` is a failure: transient for rate limits and Slack-side errors, permanent otherwise.

The API URL is the operator's, so the guarded client uses the operator's allow-list only. Stored errors
never carry Slack's answer: only its `error` code, when it looks like one (`^[a-z_]{1,64}$`).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from casem.adapters.storage.unit_of_work import UnitOfWork
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
        token = setting(services, "slack_token", "CASEM_SLACK_TOKEN")
        if not token:
            raise DeliveryRejected("no Slack bot token configured (slack_token / CASEM_SLACK_TOKEN)")
        base = str(setting(services, "slack_api_url", "CASEM_SLACK_API_URL", DEFAULT_SLACK_API_URL)).rstrip("/")
        body = {"channel": delivery.target["channel"], **delivery.payload}
        async with outbound_call(), operator_client(services) as client:
            response = await client.post(
                f"{base}/chat.postMessage",
                json=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"},
            )
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
