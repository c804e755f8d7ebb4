"""msteams-delivery: posts `msteams` deliveries (a MessageCard) to the Teams incoming-webhook URL of
the connector the rule's recipient names (an org notification endpoint of kind MS_TEAMS_CHANNEL)."""

from __future__ import annotations

from typing import ClassVar

import httpx

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.notifications import MSTEAMS, Delivery
from casem.services.case_event_handler.deliveries import DeliveryFailed, DeliveryFlavor, check_http, http_timeout
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor


@flavor
class MsTeamsDelivery(DeliveryFlavor):
    name: ClassVar[str] = "msteams-delivery"
    channel: ClassVar[str] = MSTEAMS

    async def send(self, delivery: Delivery, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        async with httpx.AsyncClient(timeout=http_timeout(services)) as client:
            response = await client.post(delivery.target["url"], json=delivery.payload)
        check_http(response)
        # Legacy connectors may answer 200 with the throttling error in the body.
        if "HTTP error 429" in response.text:
            raise DeliveryFailed(f"Teams throttled the webhook: {response.text[:200]}")
