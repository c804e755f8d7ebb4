"""webhook-delivery: POSTs `webhook` deliveries to the org's named HTTP endpoint.

The body is the rendered JSON document; `X-Casem-Signature: sha256=<hex>` is the HMAC-SHA256 of the
exact body bytes with the endpoint's secret (stored sealed, opened here, never carried on the bus), and
`Idempotency-Key` / `X-Casem-Delivery` carry the delivery id so receivers can drop at-least-once
duplicates. 5xx, 429 and connection errors are retried by the runner; other 4xx are dead-lettered.
The URL goes through the guarded client (the org's and the operator's allow-lists, redirects not
followed), and the stored error carries the status and casem's reason, never the receiver's answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import ClassVar

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.notifications import WEBHOOK, Delivery
from casem.services.case_event_handler.deliveries import (
    DeliveryFlavor,
    DeliveryRejected,
    check_http,
    endpoint,
    org_client,
    outbound_call,
    secret_box,
)
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor

SIGNATURE_HEADER = "X-Casem-Signature"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@flavor
class WebhookDelivery(DeliveryFlavor):
    name: ClassVar[str] = "webhook-delivery"
    channel: ClassVar[str] = WEBHOOK

    async def send(self, delivery: Delivery, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        target = await endpoint(uow, delivery.org_id, "HTTP", delivery.target["name"])
        if target is None:
            raise DeliveryRejected(f"the org has no HTTP endpoint named {delivery.target['name']!r}")
        body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "casem-webhooks/1",
            "Idempotency-Key": delivery.id,
            "X-Casem-Delivery": delivery.id,
            "X-Casem-Event": str((delivery.payload.get("event") or {}).get("type", "")),
        }
        if target.secret:
            headers[SIGNATURE_HEADER] = sign(secret_box(services).open(target.secret), body)
        async with outbound_call(), await org_client(uow, delivery.org_id, services) as client:
            response = await client.post(target.url, content=body, headers=headers)
        check_http(response)
