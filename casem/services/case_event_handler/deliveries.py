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

Every HTTP delivery goes through the guarded client (docs/outbound-http.md): internal destinations are
refused unless the org's allow-list or the operator's (`CASEM_OUTBOUND_ALLOW`, parsed once when the
handler starts) names them, and the error stored on a delivery (which the tenant reads) carries the
status and a sentence casem wrote, never the receiver's answer.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import httpx
import sqlalchemy as sa

from casem.adapters.http import (
    AllowList,
    DestinationRefused,
    OutboundError,
    allow_list_from_env,
    guarded_client,
    raise_for_response,
)
from casem.adapters.secrets import SecretBox, secret_box_from_env
from casem.adapters.storage.tables import notification_endpoints
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.outbound.service import org_allow_list
from casem.domain.notifications import DELIVERY_REQUESTED, SENT, Delivery
from casem.services.case_event_handler.framework import Event, HandlerServices, PoisonMessage

DEFAULT_HTTP_TIMEOUT_S = 10.0
OPERATOR_ALLOW = "outbound_allow"  # HandlerServices.settings key: the operator's AllowList
SECRET_BOX = "secret_box"  # HandlerServices.settings key: the SecretBox opening stored secrets


class DeliveryRejected(PoisonMessage):
    """The receiver refused the message for good (4xx, unknown channel...): retrying cannot help."""


class DeliveryFailed(Exception):
    """A transient failure (5xx, rate limit): the runner retries with back-off.

    `retry_after` (seconds) is the receiver's Retry-After when it sent one; the runner waits at least
    that long, capped by its own back-off ceiling."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def setting(services: HandlerServices, key: str, env: str, default: Any = None) -> Any:
    """A flavor setting: HandlerServices.settings first, then the environment."""
    value = services.settings.get(key)
    if value is None:
        value = os.environ.get(env, default)
    return value


def http_timeout(services: HandlerServices) -> float:
    return float(setting(services, "http_timeout_s", "CASEM_DELIVERY_HTTP_TIMEOUT_S", DEFAULT_HTTP_TIMEOUT_S))


def load_operator_allow(services: HandlerServices) -> AllowList:
    """The operator's allow-list, parsed from CASEM_OUTBOUND_ALLOW the first time (at handler start) and
    kept in the settings; a malformed entry raises ValueError naming the variable."""
    allow = services.settings.get(OPERATOR_ALLOW)
    if allow is None:
        allow = services.settings[OPERATOR_ALLOW] = allow_list_from_env()
    if not isinstance(allow, AllowList):
        raise TypeError(f"HandlerServices.settings[{OPERATOR_ALLOW!r}] must be an AllowList")
    return allow


def secret_box(services: HandlerServices) -> SecretBox:
    """The key that opens stored secrets (the same as the API's: CASEM_SECRET_KEYS, the secrets dir or the
    local key), read once."""
    box = services.settings.get(SECRET_BOX)
    if box is None:
        box = services.settings[SECRET_BOX] = secret_box_from_env()
    return box


async def org_client(uow: UnitOfWork, org_id: str, services: HandlerServices) -> httpx.AsyncClient:
    """The guarded client for a URL the org saved: its allow-list joined with the operator's, no redirects."""
    org_allow = await org_allow_list(uow, org_id)
    return guarded_client(allow=org_allow | load_operator_allow(services), timeout=http_timeout(services))


def operator_client(services: HandlerServices) -> httpx.AsyncClient:
    """The guarded client for a URL the operator set (the Slack API): the operator's allow-list only."""
    return guarded_client(allow=load_operator_allow(services), timeout=http_timeout(services))


def delivery_error(exc: OutboundError) -> Exception:
    """What the runner should do with an outbound failure: retry a transient one, dead-letter the rest."""
    if isinstance(exc, DestinationRefused):
        return DeliveryRejected(f"the destination is refused: {exc.reason}")
    if exc.transient:
        return DeliveryFailed(exc.reason, retry_after=exc.retry_after)
    return DeliveryRejected(exc.reason)


@asynccontextmanager
async def outbound_call() -> AsyncIterator[None]:
    """Turn what an outbound call raises (httpx errors, the guard's refusals, an oversized answer) into
    DeliveryFailed / DeliveryRejected whose message casem wrote."""
    try:
        yield
    except (httpx.HTTPError, OutboundError) as exc:
        raise delivery_error(OutboundError.from_exception(exc)) from exc


def check_http(response: httpx.Response) -> httpx.Response:
    """A 2xx answer, or DeliveryFailed (429, 408, 5xx) / DeliveryRejected (other statuses) with the status
    and a reason casem wrote: the receiver's body never reaches the stored error."""
    try:
        return raise_for_response(response)
    except OutboundError as exc:
        raise delivery_error(exc) from None


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
