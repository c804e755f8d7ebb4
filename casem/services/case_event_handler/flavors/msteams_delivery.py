"""msteams-delivery: posts `msteams` deliveries (a MessageCard) to the Teams incoming-webhook URL of
the connector the rule's recipient names (an org notification endpoint of kind MS_TEAMS_CHANNEL).

The connector URL goes through the guarded client like a webhook's (the org's and the operator's
allow-lists, no redirects); errors carry casem's reason, never Teams' answer (the URL holds a secret)."""

from __future__ import annotations

from typing import ClassVar

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.notifications import MSTEAMS, Delivery
from casem.services.case_event_handler.deliveries import (
    DeliveryFailed,
    DeliveryFlavor,
    check_http,
    org_client,
    outbound_call,
)
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor

# Legacy connectors may answer 200 with the throttling error in the body.
THROTTLED_MARKER = "HTTP error 429"


@flavor
class MsTeamsDelivery(DeliveryFlavor):
    name: ClassVar[str] = "msteams-delivery"
    channel: ClassVar[str] = MSTEAMS

    async def send(self, delivery: Delivery, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        async with outbound_call(), await org_client(uow, delivery.org_id, services) as client:
            response = await client.post(delivery.target["url"], json=delivery.payload)
            check_http(response)
            throttled = THROTTLED_MARKER in response.text
        if throttled:
            raise DeliveryFailed("Teams throttled the connector (its answer reported HTTP error 429)")
