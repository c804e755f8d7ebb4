"""Delivery flavors against real receivers on loopback: SMTP (aiosmtpd), Slack Web API, Teams and
generic webhooks (a threaded HTTP server). Payloads, signatures, retries, dead letters, no double
sends on redelivery, and the whole path from the API to a webhook.

Loopback is an internal address: the outbound guard refuses it unless an allow-list names it, so
each test allows 127.0.0.1 the way an operator would (the org's list or CASEM_OUTBOUND_ALLOW's), and
the tests without one check that nothing is sent."""

from __future__ import annotations

import asyncio
import email
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message as EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from casem.adapters.bus.port import Consumer, Message
from casem.adapters.http import AllowList
from casem.adapters.storage.tables import (
    handler_processed_events,
    notification_deliveries,
    notification_endpoints,
    start_mappers,
)
from casem.app.context import AppContext
from casem.app.notification_rules.service import create_endpoint
from casem.app.outbound.service import allow_network, destination_policy
from casem.domain.notifications import Delivery
from casem.services.case_api.http.app import create_app
from casem.services.case_event_handler.deliveries import OPERATOR_ALLOW, DeliveryFailed, load_operator_allow
from casem.services.case_event_handler.framework import HandlerServices
from casem.services.case_event_handler.runner import FlavorRunner, RetryPolicy
from casem.services.case_event_handler.service import load_flavor
from casem.topology.topics import dead_letter_topic
from tests.handlers.test_notifications import Org, make_org, new_case
from tests.handlers.test_runner import count, publish_outbox, run_until
from tests.support.bus_harness import Harness
from tests.support.ports import free_port

FAST = RetryPolicy(max_attempts=4, initial_backoff_s=0.05, max_backoff_s=0.1)
SECRET = "a-test-secret-of-32-characters!!"
LOOPBACK = "127.0.0.1/32"
# The operator's CASEM_OUTBOUND_ALLOW as the handler holds it once parsed.
OPERATOR_ALLOWS_LOOPBACK = {OPERATOR_ALLOW: AllowList.parse([LOOPBACK])}
NO_ALLOW_LIST = {OPERATOR_ALLOW: AllowList()}

start_mappers()  # Delivery rows are written here directly, before any flavor module is loaded


# -- receivers ------------------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """A real HTTP server; answers each POST with the next scripted (status, body), then the last one."""

    script: list[tuple[int, str]] = field(default_factory=lambda: [(200, "ok")])
    received: list[Received] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # sent with every answer

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status, text = receiver.script[min(len(receiver.received), len(receiver.script)) - 1]
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if text.startswith("{") else "text/plain")
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    yield r
    r.close()


class SmtpSink:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: N802
        if address.endswith("@invalid.example"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 Message accepted"


# -- helpers --------------------------------------------------------------------------------------------


async def request_deliveries(ctx: AppContext, org: Org, case_id: str, *specs: tuple[str, dict, dict]) -> list[str]:
    """Delivery rows with their `notification.delivery_requested` events, through the unit of work."""
    ids = []
    async with ctx.uow() as uow:
        for channel, target, payload in specs:
            delivery = Delivery.request(
                org_id=org.creds.org_id,
                rule_id=None,
                source_event_id=f"00000000-0000-0000-0000-{len(ids):012d}",
                case_id=case_id,
                channel=channel,
                target=target,
                payload=payload,
            )
            uow.add(delivery)
            ids.append(delivery.id)
        await uow.commit()
    return ids


async def allow_loopback(ctx: AppContext, org: Org) -> None:
    """What `casem admin allow-outbound ORG 127.0.0.1/32` does."""
    async with ctx.uow() as uow:
        await allow_network(uow, org.creds.org_id, LOOPBACK, "test receivers")
        await uow.commit()


async def save_endpoint(ctx: AppContext, org: Org, kind: str, name: str, url: str, secret: str | None = SECRET) -> None:
    async with ctx.uow(read_only=True) as uow:
        policy = await destination_policy(uow, ctx.outbound, org.creds.org_id)
    async with ctx.uow() as uow:
        await create_endpoint(uow, org.creds.org_id, kind, name, url, secret, policy=policy, box=ctx.secret_box())
        await uow.commit()


async def deliveries(ctx: AppContext) -> dict[str, sa.Row]:
    async with ctx.uow(read_only=True) as uow:
        return {r.id: r for r in await uow.execute(sa.select(notification_deliveries))}


async def settled(ctx: AppContext, n: int, flavor: str) -> bool:
    return await count(ctx, handler_processed_events, handler_processed_events.c.flavor == flavor) >= n


# -- email ----------------------------------------------------------------------------------------------


async def test_email_is_sent_over_smtp(context: AppContext, harness: Harness) -> None:
    org = await make_org(context, "EML")
    case_id = await new_case(context, org, "Mail me")
    payload = {"subject": "[casem] EML-1 created: Mail me", "text": "EML-1 created\nhttp://casem/cases/EML-1"}
    [ok, refused] = await request_deliveries(
        context,
        org,
        case_id,
        ("email", {"email": "ops@example.com"}, payload),
        ("email", {"email": "nobody@invalid.example"}, payload),
    )
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        bus = harness.bus()
        topic, _ = await publish_outbox(context, harness, bus)
        await bus.ensure_topic(dead_letter_topic("email-delivery"), 1)
        services = HandlerServices(settings={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_from": "casem@ex.org"})
        runner = FlavorRunner(load_flavor("email-delivery"), context, harness.producer(bus), services, FAST)
        await run_until(runner, harness, bus, topic, harness.name("email"), lambda: _email_done(context))
    finally:
        controller.stop()
    [(mail_from, rcpt, message)] = sink.messages
    assert mail_from == "casem@ex.org" and rcpt == ["ops@example.com"]
    assert message["Subject"] == payload["subject"] and message["To"] == "ops@example.com"
    assert message["X-Casem-Delivery"] == ok
    assert message.get_payload(decode=True).decode().replace("\r\n", "\n").strip() == payload["text"]
    rows = await deliveries(context)
    assert (rows[ok].status, rows[ok].attempts, rows[ok].last_error) == ("sent", 1, None)
    # A 5xx refusal is permanent: one attempt, recorded, then the dead-letter topic.
    assert (rows[refused].status, rows[refused].attempts) == ("failed", 1)
    assert "550" in rows[refused].last_error


async def _email_done(ctx: AppContext) -> bool:
    rows = await deliveries(ctx)
    return {r.status for r in rows.values()} == {"sent", "failed"}


# -- Slack and Teams ------------------------------------------------------------------------------------


async def test_slack_posts_chat_messages_and_treats_ok_false_as_failure(
    context: AppContext, harness: Harness, receiver: HttpReceiver
) -> None:
    receiver.script = [(200, '{"ok": true, "ts": "1.2"}'), (200, '{"ok": false, "error": "channel_not_found"}')]
    org = await make_org(context, "SLK")
    case_id = await new_case(context, org, "Chat about it")
    payload = {"text": "SLK-1 created", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*SLK-1*"}}]}
    [first, second] = await request_deliveries(
        context,
        org,
        case_id,
        ("slack", {"channel": "C001", "workspace": "acme"}, payload),
        ("slack", {"channel": "C404", "workspace": "acme"}, payload),
    )
    bus = harness.bus()
    topic, _ = await publish_outbox(context, harness, bus)
    await bus.ensure_topic(dead_letter_topic("slack-delivery"), 1)
    # The Slack API URL is the operator's: only the operator's allow-list applies to it.
    services = HandlerServices(
        settings={"slack_api_url": receiver.url + "/api", "slack_token": "xoxb-test", **OPERATOR_ALLOWS_LOOPBACK}
    )
    runner = FlavorRunner(load_flavor("slack-delivery"), context, harness.producer(bus), services, FAST)

    async def done() -> bool:
        return {r.status for r in (await deliveries(context)).values()} == {"sent", "failed"}

    await run_until(runner, harness, bus, topic, harness.name("slack"), done)
    assert [r.path for r in receiver.received] == ["/api/chat.postMessage"] * 2
    assert receiver.received[0].headers["authorization"] == "Bearer xoxb-test"
    assert receiver.received[0].json() == {"channel": "C001", **payload}
    rows = await deliveries(context)
    assert rows[first].status == "sent"
    assert (rows[second].status, rows[second].attempts) == ("failed", 1)  # permanent: not retried
    assert rows[second].last_error == "DeliveryRejected: Slack error: channel_not_found"


async def test_teams_gets_the_message_card(context: AppContext, harness: Harness, receiver: HttpReceiver) -> None:
    receiver.script = [(200, "1")]
    org = await make_org(context, "TMS")
    await allow_loopback(context, org)  # the org's own allow-list; the operator's is empty
    case_id = await new_case(context, org, "Teams it")
    card = {"@type": "MessageCard", "@context": "https://schema.org/extensions", "summary": "TMS-1", "title": "TMS-1"}
    [only] = await request_deliveries(
        context, org, case_id, ("msteams", {"name": "ops", "url": receiver.url + "/webhookb2/xyz"}, card)
    )
    bus = harness.bus()
    topic, _ = await publish_outbox(context, harness, bus)
    services = HandlerServices(settings=dict(NO_ALLOW_LIST))
    runner = FlavorRunner(load_flavor("msteams-delivery"), context, harness.producer(bus), services, FAST)
    await run_until(runner, harness, bus, topic, harness.name("teams"), lambda: settled(context, 1, "msteams-delivery"))
    [got] = receiver.received
    assert got.path == "/webhookb2/xyz" and got.json() == card
    assert (await deliveries(context))[only].status == "sent"


# -- webhooks -------------------------------------------------------------------------------------------


def _verify(got: Received) -> None:
    expected = "sha256=" + hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(got.headers["x-casem-signature"], expected)


async def test_webhooks_are_signed_retried_dead_lettered_and_never_sent_twice(
    context: AppContext, harness: Harness, receiver: HttpReceiver
) -> None:
    gone = HttpReceiver(script=[(410, '{"error": "endpoint retired"}')])
    try:
        org = await make_org(context, "WHK")
        await allow_loopback(context, org)
        await save_endpoint(context, org, "HTTP", "flaky", receiver.url + "/hook")
        await save_endpoint(context, org, "HTTP", "gone", gone.url + "/hook")
        async with context.uow(read_only=True) as uow:  # the signing secret is stored sealed
            stored = set(await uow.scalars(sa.select(notification_endpoints.c.secret)))
        assert len(stored) == 2 and all(s.startswith("fernet:") and SECRET not in s for s in stored)
        case_id = await new_case(context, org, "Hook it")
        body = {"summary": "WHK-1 created", "case": {"key": "WHK-1"}, "event": {"type": "case.created"}}
        [flaky, retired] = await request_deliveries(
            context,
            org,
            case_id,
            ("webhook", {"name": "flaky", "url": receiver.url + "/hook"}, body),
            ("webhook", {"name": "gone", "url": gone.url + "/hook"}, body),
        )
        receiver.script = [(503, "busy"), (502, "bad gateway"), (200, "ok")]  # fails twice, then succeeds
        bus = harness.bus()
        topic, _ = await publish_outbox(context, harness, bus)
        dlq = dead_letter_topic("webhook-delivery")
        await bus.ensure_topic(dlq, 1)
        dlq_reader = harness.consumer(bus, harness.name("dlq"), [dlq])
        services = HandlerServices(settings=dict(NO_ALLOW_LIST))
        runner = FlavorRunner(load_flavor("webhook-delivery"), context, harness.producer(bus), services, FAST)
        await run_until(runner, harness, bus, topic, harness.name("hooks"), lambda: _hooks_done(context))

        assert len(receiver.received) == 3
        assert {r.headers["idempotency-key"] for r in receiver.received} == {flaky}
        for got in receiver.received:
            _verify(got)
            assert got.json() == body and got.headers["x-casem-event"] == "case.created"
        rows = await deliveries(context)
        assert (rows[flaky].status, rows[flaky].attempts, rows[flaky].last_error) == ("sent", 3, None)
        assert len(gone.received) == 1  # a 4xx is not retried
        assert (rows[retired].status, rows[retired].attempts) == ("failed", 1)
        # The status and casem's reason; the receiver's answer is neither stored nor dead-lettered.
        reason = "HTTP 410 Gone: the receiver has no such endpoint; check the URL"
        assert rows[retired].last_error == f"DeliveryRejected: {reason}"
        dead = await dead_letter_of(dlq_reader, retired)
        assert dict(dead.headers)["dlq_error"] == reason.encode()

        # Redelivery: a new group reads the stream again. With the idempotency record gone too, the
        # delivery row alone (already `sent`) keeps the webhook from being sent twice.
        async with context.uow() as uow:
            await uow.execute(
                sa.delete(handler_processed_events).where(handler_processed_events.c.flavor == "webhook-delivery")
            )
            await uow.commit()
        receiver.script = [(200, "ok")]
        await run_until(
            runner, harness, bus, topic, harness.name("again"), lambda: settled(context, 1, "webhook-delivery")
        )
        await asyncio.sleep(0.3)
        assert len(receiver.received) == 3
        assert (await deliveries(context))[flaky].attempts == 3
    finally:
        gone.close()


async def dead_letter_of(reader: Consumer, delivery_id: str, timeout: float = 20.0) -> Message:
    """The dead letter of one delivery (the Kafka DLQ topic outlives test runs: skip older letters)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in await reader.poll(max_messages=100, timeout=0.5):
            if f'"delivery_id": "{delivery_id}"'.encode() in message.value:
                return message
    raise AssertionError(f"no dead letter for delivery {delivery_id}")


async def _hooks_done(ctx: AppContext) -> bool:
    rows = await deliveries(ctx)
    return sorted(r.status for r in rows.values()) == ["failed", "sent"]


# -- end to end -----------------------------------------------------------------------------------------


async def test_api_rule_and_case_change_reach_the_webhook_once(
    context: AppContext, harness: Harness, receiver: HttpReceiver
) -> None:
    org = await make_org(context, "E2E")
    await allow_loopback(context, org)
    headers = {"DD-API-KEY": org.creds.api_key, "DD-APPLICATION-KEY": org.creds.app_key}
    app = create_app(context)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://casem", headers=headers
    ) as api:
        created = await api.post(
            "/api/v2/casem/notification_endpoints",
            json={
                "data": {
                    "type": "notification_endpoint",
                    "attributes": {"kind": "HTTP", "name": "ops", "url": receiver.url + "/in"},
                }
            },
        )
        assert created.status_code == 201, created.text
        secret = created.json()["data"]["attributes"]["secret"]
        rule = await api.post(
            f"/api/v2/cases/projects/{org.project_id}/notification_rules",
            json={
                "data": {
                    "type": "notification_rule",
                    "attributes": {
                        "triggers": [{"type": "PRIORITY_CHANGED"}],
                        "recipients": [{"type": "HTTP", "data": {"name": "ops"}}],
                        "query": "priority:P1",
                    },
                }
            },
        )
        assert rule.status_code == 201, rule.text
        case_id = await new_case(context, org, "Latency spike", priority="P3")
        changed = await api.post(
            f"/api/v2/cases/{case_id}/priority",
            json={"data": {"type": "case", "attributes": {"priority": "P1"}}},
        )
        assert changed.status_code == 200, changed.text

    bus = harness.bus()
    dlq = harness.producer(bus)
    topic, _ = await publish_outbox(context, harness, bus)  # case.created, case.priority_changed
    rules = FlavorRunner(load_flavor("notification-rules"), context, dlq, retry=FAST)
    await run_until(
        rules, harness, bus, topic, harness.name("rules"), lambda: settled(context, 2, "notification-rules")
    )
    topic2, published = await publish_outbox(context, harness, bus)  # notification.delivery_requested
    assert published == 1
    services = HandlerServices(settings=dict(NO_ALLOW_LIST))
    hooks = FlavorRunner(load_flavor("webhook-delivery"), context, dlq, services, FAST)
    await run_until(hooks, harness, bus, topic2, harness.name("hooks"), lambda: settled(context, 1, "webhook-delivery"))

    [got] = receiver.received
    assert got.path == "/in"
    assert (
        got.headers["x-casem-signature"] == "sha256=" + hmac.new(secret.encode(), got.body, hashlib.sha256).hexdigest()
    )
    document = got.json()
    assert document["event"]["type"] == "case.priority_changed"
    assert document["event"]["data"]["changes"]["priority"] == {"old": "P3", "new": "P1"}
    assert document["case"]["id"] == case_id and document["summary"] == "E2E-1 priority changed from P3 to P1"
    [row] = (await deliveries(context)).values()
    assert (row.status, row.attempts, got.headers["idempotency-key"]) == ("sent", 1, row.id)


# -- the outbound guard ---------------------------------------------------------------------------------

INTERNAL_BODY = "root:x:0:0:internal-only answer"


async def test_a_delivery_to_an_internal_address_is_refused_and_nothing_is_sent(
    context: AppContext, harness: Harness, receiver: HttpReceiver
) -> None:
    """No allow-list: the loopback receiver is never reached, whether its URL was stored before the guard
    existed (the webhook row) or travels on the delivery (the Teams connector)."""
    org = await make_org(context, "SSRF")
    async with context.uow() as uow:  # written past the save-time check, as rows saved before it were
        await uow.execute(
            sa.insert(notification_endpoints).values(
                id=str(uuid.uuid4()),
                org_id=org.creds.org_id,
                kind="HTTP",
                name="internal",
                url=receiver.url + "/admin",
                secret=None,
                created_at=datetime.now(UTC),
            )
        )
        await uow.commit()
    case_id = await new_case(context, org, "Reach inside")
    [hook, teams] = await request_deliveries(
        context,
        org,
        case_id,
        ("webhook", {"name": "internal"}, {"summary": "x"}),
        ("msteams", {"name": "ops", "url": "http://169.254.169.254/latest/meta-data/"}, {"summary": "x"}),
    )
    bus = harness.bus()
    topic, _ = await publish_outbox(context, harness, bus)
    services = HandlerServices(settings=dict(NO_ALLOW_LIST))
    for name, expected in (("webhook-delivery", 1), ("msteams-delivery", 2)):
        await bus.ensure_topic(dead_letter_topic(name), 1)
        runner = FlavorRunner(load_flavor(name), context, harness.producer(bus), services, FAST)
        await run_until(runner, harness, bus, topic, harness.name(name), lambda n=expected: _all_failed(context, n))
    assert receiver.received == []
    rows = await deliveries(context)
    # Refusals are permanent: one attempt each, then the dead-letter topic.
    assert (rows[hook].status, rows[hook].attempts) == ("failed", 1)
    assert rows[hook].last_error.startswith("DeliveryRejected: the destination is refused: '127.0.0.1' is a loopback")
    assert (rows[teams].status, rows[teams].attempts) == ("failed", 1)
    assert rows[teams].last_error.startswith(
        "DeliveryRejected: the destination is refused: '169.254.169.254' is a link-local address"
    )


async def test_an_internal_answer_never_reaches_the_delivery_log(context: AppContext, harness: Harness) -> None:
    """Regression: the stored error held the first 500 bytes of the receiver's answer, and the tenant reads
    it at /api/v2/casem/notification_deliveries. Now: the status and casem's reason, whatever was answered."""
    failing = HttpReceiver(script=[(500, INTERNAL_BODY)])
    forbidden = HttpReceiver(script=[(403, '{"detail": "' + INTERNAL_BODY + '"}')])
    redirect = HttpReceiver(script=[(302, INTERNAL_BODY)], headers={"Location": "http://169.254.169.254/"})
    try:
        org = await make_org(context, "LEAK")
        await allow_loopback(context, org)
        for name, server in (("failing", failing), ("forbidden", forbidden), ("redirect", redirect)):
            await save_endpoint(context, org, "HTTP", name, server.url + "/hook")
        case_id = await new_case(context, org, "Leak it")
        ids = await request_deliveries(
            context,
            org,
            case_id,
            *[("webhook", {"name": name}, {"summary": "x"}) for name in ("failing", "forbidden", "redirect")],
        )
        bus = harness.bus()
        topic, _ = await publish_outbox(context, harness, bus)
        await bus.ensure_topic(dead_letter_topic("webhook-delivery"), 1)
        services = HandlerServices(settings=dict(NO_ALLOW_LIST))
        runner = FlavorRunner(load_flavor("webhook-delivery"), context, harness.producer(bus), services, FAST)
        await run_until(runner, harness, bus, topic, harness.name("leak"), lambda: _all_failed(context, 3))
        assert len(failing.received) == FAST.max_attempts  # transient: retried, then dead-lettered
        assert len(forbidden.received) == len(redirect.received) == 1  # permanent

        headers = {"DD-API-KEY": org.creds.api_key, "DD-APPLICATION-KEY": org.creds.app_key}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(context)), base_url="http://casem", headers=headers
        ) as api:
            listed = await api.get("/api/v2/casem/notification_deliveries")
        assert listed.status_code == 200
        assert "internal-only" not in listed.text and "root:x" not in listed.text
        errors = {item["id"]: item["attributes"]["last_error"] for item in listed.json()["data"]}
        assert errors == {
            ids[0]: "DeliveryFailed: HTTP 500 Internal Server Error: the receiver failed to handle the request",
            ids[1]: "DeliveryRejected: HTTP 403 Forbidden: the receiver refused casem's credentials",
            ids[2]: "DeliveryRejected: HTTP 302 Found: the receiver answered with a redirect, which casem does not "
            "follow; use the final URL",
        }
    finally:
        for server in (failing, forbidden, redirect):
            server.close()


async def test_slack_errors_carry_only_slacks_error_code(
    context: AppContext, harness: Harness, receiver: HttpReceiver
) -> None:
    receiver.script = [
        (200, '{"ok": false, "error": "<b>token xoxb-1234 is internal-only</b>"}'),
        (200, INTERNAL_BODY),
    ]
    org = await make_org(context, "SLX")
    case_id = await new_case(context, org, "Chat")
    [odd, garbled] = await request_deliveries(
        context,
        org,
        case_id,
        ("slack", {"channel": "C001", "workspace": "acme"}, {"text": "one"}),
        ("slack", {"channel": "C002", "workspace": "acme"}, {"text": "two"}),
    )
    bus = harness.bus()
    topic, _ = await publish_outbox(context, harness, bus)
    await bus.ensure_topic(dead_letter_topic("slack-delivery"), 1)
    services = HandlerServices(
        settings={"slack_api_url": receiver.url + "/api", "slack_token": "xoxb-test", **OPERATOR_ALLOWS_LOOPBACK}
    )
    runner = FlavorRunner(load_flavor("slack-delivery"), context, harness.producer(bus), services, FAST)
    await run_until(runner, harness, bus, topic, harness.name("slx"), lambda: _all_failed(context, 2))
    rows = await deliveries(context)
    assert rows[odd].last_error == "DeliveryRejected: Slack refused the message without a readable error code"
    assert rows[garbled].last_error == "DeliveryFailed: Slack answered with something that is not a JSON object"


async def test_slack_is_refused_when_only_the_orgs_list_allows_its_address(
    context: AppContext, harness: Harness, receiver: HttpReceiver
) -> None:
    """The Slack API URL is the operator's: an org's allow-list does not open it."""
    org = await make_org(context, "SLO")
    await allow_loopback(context, org)
    case_id = await new_case(context, org, "Chat")
    [only] = await request_deliveries(context, org, case_id, ("slack", {"channel": "C1", "workspace": "a"}, {}))
    bus = harness.bus()
    topic, _ = await publish_outbox(context, harness, bus)
    await bus.ensure_topic(dead_letter_topic("slack-delivery"), 1)
    services = HandlerServices(
        settings={"slack_api_url": receiver.url + "/api", "slack_token": "xoxb-test", **NO_ALLOW_LIST}
    )
    runner = FlavorRunner(load_flavor("slack-delivery"), context, harness.producer(bus), services, FAST)
    await run_until(runner, harness, bus, topic, harness.name("slo"), lambda: _all_failed(context, 1))
    assert receiver.received == []
    assert (await deliveries(context))[only].last_error.startswith("DeliveryRejected: the destination is refused")


def test_the_runner_waits_as_long_as_the_receiver_asks_within_its_ceiling() -> None:
    # The flavor runner's retries follow its RetryPolicy: a receiver's Retry-After stretches the back-off.
    policy = RetryPolicy(initial_backoff_s=0.2, max_backoff_s=10.0)
    assert policy.delay_s(1, DeliveryFailed("HTTP 429", retry_after=3.0)) == 3.0
    assert policy.delay_s(1, DeliveryFailed("HTTP 429", retry_after=3600.0)) == 10.0
    assert policy.delay_s(1, DeliveryFailed("HTTP 503")) == 0.2
    assert policy.delay_s(5, DeliveryFailed("HTTP 429", retry_after=1.0)) == 3.2  # never shorter than the back-off


def test_a_malformed_operator_allow_list_stops_the_handler_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEM_OUTBOUND_ALLOW", "10.0.0.0/8,10.0.0.5/8")
    with pytest.raises(ValueError, match=r"CASEM_OUTBOUND_ALLOW: '10.0.0.5/8'"):
        load_operator_allow(HandlerServices())
    monkeypatch.setenv("CASEM_OUTBOUND_ALLOW", "10.0.0.0/8, fd00:1::/64")
    services = HandlerServices()
    assert load_operator_allow(services).networks == AllowList.parse(["10.0.0.0/8", "fd00:1::/64"]).networks
    assert services.settings[OPERATOR_ALLOW] is load_operator_allow(services)  # parsed once


async def _all_failed(ctx: AppContext, n: int) -> bool:
    rows = await deliveries(ctx)
    return sum(r.status == "failed" for r in rows.values()) >= n
