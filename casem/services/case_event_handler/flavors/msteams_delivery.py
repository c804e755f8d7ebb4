"""msteams-delivery: sends `msteams` deliveries into Teams, two ways.

- A delivery whose target names a `workspace_id` (a Teams tenant installed through case-chat-interactions) and a
  `conversation_id` (the messages casem posts into a linked Teams conversation, casem/app/chat/mirror.py) is sent
  by the bot through the Bot Connector API (casem/adapters/chat/bot_connector.py): an Adaptive Card posted to
  the tenant's service URL (the one its latest validated activity named), into the thread when the target names
  a `thread_id`. The bot's credentials are the operator's (teams_app_id / CASEM_TEAMS_APP_ID, teams_app_password /
  CASEM_TEAMS_APP_PASSWORD, teams_token_url / CASEM_TEAMS_TOKEN_URL), so the guarded client uses the operator's
  allow-list only. The app token is kept for the process (one connector in the handler's settings).
- Other deliveries (a notification rule's MS_TEAMS_CHANNEL recipient) post their MessageCard to the Teams
  incoming-webhook URL of the connector the recipient names (an org notification endpoint), through the guarded
  client with the org's and the operator's allow-lists, no redirects.

Errors carry casem's reason, never Teams' answer (a connector URL holds a secret)."""

from __future__ import annotations

from typing import ClassVar

from casem.adapters.chat.bot_connector import (
    DEFAULT_TOKEN_URL,
    BotConnector,
    BotConnectorError,
    BotCredentials,
    thread_conversation_id,
)
from casem.adapters.http import guarded_client
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.chat.installations import installation_for
from casem.domain.errors import NotFound
from casem.domain.notifications import MSTEAMS, Delivery
from casem.services.case_event_handler.deliveries import (
    DeliveryFailed,
    DeliveryFlavor,
    DeliveryRejected,
    check_http,
    delivery_error,
    http_timeout,
    load_operator_allow,
    org_client,
    outbound_call,
    setting,
)
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor

# Legacy connectors may answer 200 with the throttling error in the body.
THROTTLED_MARKER = "HTTP error 429"
BOT_CONNECTOR = "bot_connector"  # HandlerServices.settings key: the process's BotConnector


def bot_connector(services: HandlerServices) -> BotConnector:
    """The process's Bot Connector client, made the first time a bot delivery is sent."""
    found = services.settings.get(BOT_CONNECTOR)
    if found is None:
        app_id = setting(services, "teams_app_id", "CASEM_TEAMS_APP_ID")
        password = setting(services, "teams_app_password", "CASEM_TEAMS_APP_PASSWORD")
        if not app_id or not password:
            raise DeliveryRejected(
                "no Teams bot credentials configured (teams_app_id / CASEM_TEAMS_APP_ID and "
                "teams_app_password / CASEM_TEAMS_APP_PASSWORD)"
            )
        token_url = str(setting(services, "teams_token_url", "CASEM_TEAMS_TOKEN_URL") or DEFAULT_TOKEN_URL)
        client = guarded_client(allow=load_operator_allow(services), timeout=http_timeout(services))
        found = services.settings[BOT_CONNECTOR] = BotConnector(
            BotCredentials(str(app_id), str(password), token_url), client
        )
    if not isinstance(found, BotConnector):
        raise TypeError(f"HandlerServices.settings[{BOT_CONNECTOR!r}] must be a BotConnector")
    return found


@flavor
class MsTeamsDelivery(DeliveryFlavor):
    name: ClassVar[str] = "msteams-delivery"
    channel: ClassVar[str] = MSTEAMS

    async def send(self, delivery: Delivery, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        if delivery.target.get("workspace_id") and delivery.target.get("conversation_id"):
            await self._send_by_bot(delivery, uow, services)
            return
        async with outbound_call(), await org_client(uow, delivery.org_id, services) as client:
            response = await client.post(delivery.target["url"], json=delivery.payload)
            check_http(response)
            throttled = THROTTLED_MARKER in response.text
        if throttled:
            raise DeliveryFailed("Teams throttled the connector (its answer reported HTTP error 429)")

    async def _send_by_bot(self, delivery: Delivery, uow: UnitOfWork, services: HandlerServices) -> None:
        target = delivery.target
        try:
            installation = await installation_for(uow, "teams", target["workspace_id"], delivery.org_id)
        except NotFound:
            raise DeliveryRejected("the Teams tenant is no longer installed for this organization") from None
        if not installation.service_url:
            raise DeliveryRejected(
                "casem has not heard from the bot in this Teams tenant yet, so it knows no Bot Connector service URL"
            )
        conversation = thread_conversation_id(str(target["conversation_id"]), str(target.get("thread_id") or ""))
        try:
            await bot_connector(services).send_to_conversation(installation.service_url, conversation, delivery.payload)
        except BotConnectorError as exc:
            raise delivery_error(exc) from None
