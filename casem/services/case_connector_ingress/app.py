"""The HTTP(S) receivers of case-connector-ingress.

`POST /webhooks/jira/{account_id}` (Jira Cloud webhook, `X-Hub-Signature` HMAC) and
`POST /webhooks/servicenow/{instance_id}` (the business rule's REST message, `X-Casem-Webhook-Secret`).
A delivery is answered only once its changes are on the bus (202), so the sender retries anything casem
did not take: a bad or missing signature, or an unknown account, is a 401 and nothing is published; a body
without the documented shape a 400; the bus unavailable a 503. Changes for issues no case is linked to are
published anyway: the reader acknowledges and counts them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from casem.adapters.bus import BusError, OutgoingMessage, Producer
from casem.adapters.secrets import SecretError
from casem.adapters.storage.tables import integration_accounts
from casem.app.context import AppContext
from casem.app.ids import UUID_RE
from casem.app.integrations.ingress import (
    JIRA_SIGNATURE,
    MAX_WEBHOOK_BYTES,
    SERVICENOW_SECRET,
    UnusableEvent,
    jira_events,
    servicenow_events,
    verify_jira_signature,
    verify_servicenow_secret,
)
from casem.app.integrations.remotes import RemoteSystems
from casem.domain.integrations import JIRA, SERVICENOW, IntegrationAccount
from casem.services.common.ops import database_readiness
from casem.topology.tenants import CASE_MANAGEMENT
from casem.topology.topics import third_party_topic

log = structlog.get_logger("case-connector-ingress")

WEBHOOKS = Counter("casem_connector_webhooks_total", "Webhook deliveries by outcome", ["system", "outcome"])
PUBLISHED = Counter("casem_connector_published_total", "Remote changes published to the feeds", ["system", "source"])
RECEIVE_SECONDS = Histogram("casem_connector_receive_seconds", "From delivery to the bus's acknowledgement", ["system"])
LAST_SEEN_EVERY_S = 60.0  # how often an account's last_webhook_at is written


def _error(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"status": str(status), "title": title, "detail": detail}]}, status_code=status, headers=headers
    )


@dataclass
class Ingress:
    context: AppContext
    remotes: RemoteSystems
    producer: Producer
    tenant: str = CASE_MANAGEMENT
    _last_seen: dict[str, float] = field(default_factory=dict)

    async def account(self, system: str, account_id: str) -> IntegrationAccount | None:
        if not UUID_RE.match(account_id):
            return None
        async with self.context.uow(self.tenant, read_only=True) as uow:
            account = await uow.session.get(IntegrationAccount, account_id.lower())
        if account is None or account.system != system or account.deleted_at is not None:
            return None
        return account

    async def seen(self, account: IntegrationAccount) -> None:
        """Datadog's last_webhook_timestamp, written at most once a minute per account."""
        now = time.monotonic()
        if now - self._last_seen.get(account.id, -LAST_SEEN_EVERY_S) < LAST_SEEN_EVERY_S:
            return
        self._last_seen[account.id] = now
        async with self.context.uow(self.tenant) as uow:
            await uow.execute(
                sa.update(integration_accounts)
                .where(integration_accounts.c.id == account.id)
                .values(last_webhook_at=datetime.now(UTC))
            )
            await uow.commit()

    async def receive(self, system: str, account_id: str, request: Request) -> Response:
        started = time.perf_counter()
        body = await request.body()
        if len(body) > MAX_WEBHOOK_BYTES:
            WEBHOOKS.labels(system, "too_large").inc()
            return _error(413, "Payload Too Large", f"deliveries are limited to {MAX_WEBHOOK_BYTES} bytes")
        account = await self.account(system, account_id)
        if account is None:
            WEBHOOKS.labels(system, "unknown_account").inc()
            return _error(401, "Unauthorized", "unknown account, or a delivery that is not signed with its secret")
        try:
            secret = self.remotes.webhook_secret(account)
        except SecretError:
            WEBHOOKS.labels(system, "secret_unreadable").inc()
            log.error("the account's webhook secret cannot be opened with the configured keys", account_id=account.id)
            return _error(
                503, "Service Unavailable", "casem cannot check this delivery right now", {"Retry-After": "60"}
            )
        if system == JIRA:
            valid = verify_jira_signature(secret, body, request.headers.get(JIRA_SIGNATURE))
        else:
            valid = verify_servicenow_secret(secret, request.headers.get(SERVICENOW_SECRET))
        if not valid:
            WEBHOOKS.labels(system, "bad_signature").inc()
            log.warning("webhook refused: bad signature", system=system, account_id=account.id)
            return _error(401, "Unauthorized", "unknown account, or a delivery that is not signed with its secret")
        try:
            payload: Any = json.loads(body)
            events = (jira_events if system == JIRA else servicenow_events)(account, self.tenant, payload)
        except (ValueError, UnusableEvent) as exc:
            WEBHOOKS.labels(system, "malformed").inc()
            return _error(400, "Bad Request", f"not a delivery casem can read: {exc}")
        if not events:
            WEBHOOKS.labels(system, "ignored").inc()
            await self.seen(account)
            return JSONResponse({"accepted": 0}, status_code=202)
        topic = third_party_topic(system).name
        try:
            await self.producer.publish_batch([OutgoingMessage(topic, e.key, e.to_bytes()) for e in events])
        except BusError as exc:
            WEBHOOKS.labels(system, "bus_unavailable").inc()
            log.error("webhook not published", system=system, error=str(exc))
            return _error(
                503, "Service Unavailable", "the change could not be queued; send it again", {"Retry-After": "5"}
            )
        WEBHOOKS.labels(system, "published").inc()
        PUBLISHED.labels(system, "webhook").inc(len(events))
        RECEIVE_SECONDS.labels(system).observe(time.perf_counter() - started)
        await self.seen(account)
        return JSONResponse({"accepted": len(events)}, status_code=202)


def create_ingress_app(ingress: Ingress) -> FastAPI:
    app = FastAPI(title="casem case-connector-ingress", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ingress = ingress
    readiness = database_readiness(ingress.context.databases)

    @app.post("/webhooks/jira/{account_id}")
    async def jira_webhook(account_id: str, request: Request) -> Response:
        return await ingress.receive(JIRA, account_id, request)

    @app.post("/webhooks/servicenow/{instance_id}")
    async def servicenow_message(instance_id: str, request: Request) -> Response:
        return await ingress.receive(SERVICENOW, instance_id, request)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        failures = await readiness()
        if failures:
            return JSONResponse({"status": "unavailable", "failures": failures}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
