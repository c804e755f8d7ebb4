"""Shared plumbing of the delivery flavors (email, Slack, Teams, webhooks).

Each delivery flavor consumes `notification.delivery_requested` events, ignores other channels'
deliveries, and sends one message per delivery row. The row is the delivery's state:

- already `sent` → nothing is sent again (a redelivered event whose first attempt was recorded);
- the send succeeds → `sent`, committed with the runner's idempotency record;
- the send fails → `failed` with the attempt count and error, committed before the exception goes
  back to the runner; transient failures (5xx, 429, connection errors) are retried with the runner's
  back-off, permanent ones (4xx, rejected recipients) raise `DeliveryRejected` and are dead-lettered.

Sending happens inside the runner's unit of work: on SQLite that transaction holds the write lock,
so every outbound call has a short timeout (`http_timeout_s`, default 10 s).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import httpx
import sqlalchemy as sa

from casem.adapters.storage.tables import notification_endpoints
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.notifications import DELIVERY_REQUESTED, SENT, Delivery
from casem.services.case_event_handler.framework import Event, HandlerServices, PoisonMessage

DEFAULT_HTTP_TIMEOUT_S = 10.0


class DeliveryRejected(PoisonMessage):
    """The receiver refused the message for good (4xx, unknown channel...): retrying cannot help."""


class DeliveryFailed(Exception):
    """A transient failure (5xx, rate limit): the runner retries with back-off."""


def setting(services: HandlerServices, key: str, env: str, default: Any = None) -> Any:
    """A flavor setting: HandlerServices.settings first, then the environment."""
    value = services.settings.get(key)
    if value is None:
        value = os.environ.get(env, default)
    return value


def http_timeout(services: HandlerServices) -> float:
    return float(setting(services, "http_timeout_s", "CASEM_DELIVERY_HTTP_TIMEOUT_S", DEFAULT_HTTP_TIMEOUT_S))


def check_http(response: httpx.Response) -> None:
    """Raise for a non-2xx answer: 429 and 5xx are transient, other 4xx permanent (with the body)."""
    if response.status_code < 300:
        return
    detail = f"HTTP {response.status_code} from {response.request.url}: {response.text[:500]}"
    if response.status_code == 429 or response.status_code >= 500:
        raise DeliveryFailed(detail)
    raise DeliveryRejected(detail)


async def endpoint(uow: UnitOfWork, org_id: str, kind: str, name: str) -> sa.Row | None:
    """The org's named endpoint (webhook or Teams connector)."""
    return (
        await uow.execute(
            sa.select(notification_endpoints).where(
                notification_endpoints.c.org_id == org_id,
                notification_endpoints.c.kind == kind,
                notification_endpoints.c.name == name,
            )
        )
    ).first()


class DeliveryFlavor:
    """Base of the four delivery flavors: subclasses set `name`, `channel` and implement `send`."""

    name: ClassVar[str]
    channel: ClassVar[str]
    handles: ClassVar[frozenset[str]] = frozenset({DELIVERY_REQUESTED})

    async def send(self, delivery: Delivery, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        raise NotImplementedError

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        if event.data.get("channel") != self.channel:
            return  # another channel's flavor sends it
        delivery_id = event.data.get("delivery_id")
        delivery = await uow.session.get(Delivery, delivery_id) if delivery_id else None
        if delivery is None:
            # The row commits in the same transaction as the event: its absence is not transient.
            raise PoisonMessage(f"delivery {delivery_id!r} does not exist")
        if delivery.status == SENT:
            return  # an earlier attempt sent it and recorded so
        try:
            await self.send(delivery, event, uow, services)
        except Exception as exc:
            delivery.failed(f"{type(exc).__name__}: {exc}")
            # Record the attempt durably before the runner rolls its unit of work back and retries.
            await uow.commit()
            raise
        delivery.sent()
