"""The project's notification settings and the system's notices (reminders, SLA breaches) through the
notification-rules flavor: who is told (assignee, watchers, the mentioned, never the actor), on which
destinations (email and Slack deliveries, in-app inbox entries); and the Slack direct message of a person."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from casem.adapters.http import AllowList
from casem.adapters.storage.tables import domain_events, notification_deliveries, notifications
from casem.app.cases.service import get_case
from casem.app.context import AppContext
from casem.app.identity.service import create_user
from casem.app.notification_rules.service import create_rule
from casem.app.projects.service import update_project
from casem.app.timeline.service import add_comment
from casem.app.watchers.service import watch
from casem.domain.automation import record_due_date_reminder, record_sla_breach
from casem.domain.events import utcnow
from casem.services.case_event_handler.deliveries import OPERATOR_ALLOW
from casem.services.case_event_handler.framework import HandlerServices
from casem.services.case_event_handler.runner import FlavorRunner
from casem.services.case_event_handler.service import load_flavor
from casem.topology.topics import dead_letter_topic
from tests.handlers.test_deliveries import (
    FAST,
    LOOPBACK,
    HttpReceiver,
    deliveries,
    request_deliveries,
    settled,
)
from tests.handlers.test_notifications import make_org, new_case
from tests.handlers.test_runner import publish_outbox, run_until
from tests.support.bus_harness import Harness


async def _settings(ctx: AppContext, org, settings: dict) -> None:  # type: ignore[no-untyped-def]
    async with ctx.uow() as uow:
        await update_project(uow, org.creds.org_id, org.alice, org.project_id, {"settings": settings})
        await uow.commit()


@pytest.fixture
def slack() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    yield r
    r.close()


async def _run(ctx: AppContext, harness: Harness) -> None:
    """Run the notification-rules flavor until it has applied every outbox event it handles."""
    bus = harness.bus()
    topic, _ = await publish_outbox(ctx, harness, bus)
    flavor = load_flavor("notification-rules")
    async with ctx.uow(read_only=True) as uow:
        types = [e["type"] for e in await uow.scalars(sa.select(domain_events.c.envelope))]
    handled = sum(t.removeprefix("com.casem.").rsplit(".v", 1)[0] in flavor.handles for t in types)
    runner = FlavorRunner(flavor, ctx, harness.producer(bus))
    await run_until(runner, harness, bus, topic, harness.name("personal"), lambda: settled(ctx, handled, flavor.name))


async def test_settings_tell_assignee_watchers_and_the_mentioned_on_each_destination(
    context: AppContext, harness: Harness
) -> None:
    org = await make_org(context, "PNS")
    oid = org.creds.org_id
    async with context.uow() as uow:
        carol = (await create_user(uow, oid, "carol@example.com", name="Carol", handle="carol")).id
        dave = (await create_user(uow, oid, "dave@example.com", name="Dave")).id
        await uow.commit()
    await _settings(
        context,
        org,
        {
            "notification": {
                "enabled": True,
                "destinations": [1, 2, 3],
                "notify_on_case_assignment": True,
                "notify_on_case_closed": True,
                "notify_on_case_comment_mention": True,
                "notify_on_case_status_change": False,
            }
        },
    )
    case_id = await new_case(context, org, "Certificate expires")
    async with context.uow() as uow:
        await watch(uow, oid, org.alice, case_id, carol)
        await uow.commit()
    async with context.uow() as uow:
        (await get_case(uow, oid, case_id)).assign(org.bob, org.alice)  # bob and carol hear of it
        await uow.commit()
    async with context.uow() as uow:
        await add_comment(uow, oid, org.alice, case_id, "@carol and @dave@example.com please check")
        await uow.commit()
    async with context.uow() as uow:
        (await get_case(uow, oid, case_id)).transition("IN_PROGRESS", org.alice)  # flag off: nobody
        await uow.commit()
    async with context.uow() as uow:
        (await get_case(uow, oid, case_id)).transition("CLOSED", org.bob)  # carol hears; bob did it himself
        await uow.commit()

    await _run(context, harness)
    async with context.uow(read_only=True) as uow:
        sent = (await uow.execute(sa.select(notification_deliveries))).all()
        inbox = (
            await uow.execute(sa.select(notifications).where(notifications.c.user_id.in_([org.bob, carol, dave])))
        ).all()
    by_event: dict[str, set[tuple[str, str]]] = {}
    for row in sent:
        address = row.target.get("email") or row.target.get("user_email")
        by_event.setdefault(row.payload.get("subject") or row.payload.get("text"), set()).add((row.channel, address))
    assert {r.rule_id for r in sent} == {None} and {r.status for r in sent} == {"pending"}
    emails = {(r.source_event_id, r.target["email"]) for r in sent if r.channel == "email"}
    slacks = {(r.source_event_id, r.target["user_email"]) for r in sent if r.channel == "slack"}
    assert {address for _, address in emails} == {"bob@example.com", "carol@example.com", "dave@example.com"}
    assert emails == slacks  # every person on both delivery destinations
    per_person = {}
    for event_id, address in emails:
        per_person.setdefault(address, []).append(event_id)
    # bob: assigned; carol: assignment (watcher), mention, closed; dave: mention only.
    assert {a: len(ids) for a, ids in per_person.items()} == {
        "bob@example.com": 1,
        "carol@example.com": 3,
        "dave@example.com": 1,
    }
    assert sorted((r.user_id, r.event_type) for r in inbox) == sorted(
        [
            (org.bob, "case.assigned"),
            (carol, "case.assigned"),
            (carol, "case.comment_added"),
            (carol, "case.status_changed"),
            (dave, "case.comment_added"),
        ]
    )
    assert org.alice not in {r.user_id for r in inbox}  # the actor is never told of her own doing
    assert by_event  # the rendered payloads carry a subject (email) or a text (Slack)


async def test_reminders_and_sla_notices_reach_the_assignee_and_the_rules_that_ask(
    context: AppContext, harness: Harness
) -> None:
    org = await make_org(context, "NTC")
    oid = org.creds.org_id
    async with context.uow() as uow:
        await create_rule(
            uow,
            oid,
            org.alice,
            org.project_id,
            {
                "triggers": [{"type": "DUE_DATE_REMINDER"}],
                "recipients": [{"type": "EMAIL", "data": {"email": "due@example.com"}}],
            },
        )
        await create_rule(
            uow,
            oid,
            org.alice,
            org.project_id,
            {
                "triggers": [{"type": "SLA_BREACHED"}],
                "recipients": [{"type": "SLACK_CHANNEL", "data": {"channel_id": "C0SLA"}}],
            },
        )
        await uow.commit()
    case_id = await new_case(context, org, "Renew the domain", priority="P1")
    async with context.uow() as uow:
        case = await get_case(uow, oid, case_id)
        case.assign(org.bob, org.alice)
        await uow.commit()
    now = utcnow()
    async with context.uow() as uow:
        case = await get_case(uow, oid, case_id)
        record_due_date_reminder(case, lead_seconds=0, reminder_id="r-1", now=now)
        record_sla_breach(case, kind="acknowledge", priority="P1", due=now, started=now, now=now)
        await uow.commit()

    await _run(context, harness)
    async with context.uow(read_only=True) as uow:
        sent = (await uow.execute(sa.select(notification_deliveries))).all()
    targets = sorted((r.channel, r.target.get("email") or r.target.get("channel")) for r in sent)
    # No settings: the assignee gets each notice by email; each rule gets the notice it asked for.
    assert targets == [
        ("email", "bob@example.com"),
        ("email", "bob@example.com"),
        ("email", "due@example.com"),
        ("slack", "C0SLA"),
    ]
    subjects = sorted(r.payload["subject"] for r in sent if r.channel == "email")
    assert any("is due today" in s for s in subjects) and any("breached its P1" in s for s in subjects)


async def test_notices_follow_disabled_settings(context: AppContext, harness: Harness) -> None:
    org = await make_org(context, "OFF")
    await _settings(context, org, {"notification": {"enabled": False, "destinations": [1]}})
    case_id = await new_case(context, org, "Quiet project")
    async with context.uow() as uow:
        case = await get_case(uow, org.creds.org_id, case_id)
        case.assign(org.bob, org.alice)
        await uow.commit()
    async with context.uow() as uow:
        case = await get_case(uow, org.creds.org_id, case_id)
        record_due_date_reminder(case, lead_seconds=0, reminder_id="r-2", now=utcnow())
        await uow.commit()
    await _run(context, harness)
    assert await deliveries(context) == {}


async def test_slack_direct_message_finds_the_user_by_email(
    context: AppContext, harness: Harness, slack: HttpReceiver
) -> None:
    slack.script = [(200, '{"ok": true, "user": {"id": "U0BOB"}}'), (200, '{"ok": true, "ts": "1.2"}')]
    org = await make_org(context, "SDM")
    case_id = await new_case(context, org, "DM me")
    payload = {"text": "SDM-1 was assigned"}
    [delivery] = await request_deliveries(context, org, case_id, ("slack", {"user_email": "bob@example.com"}, payload))
    bus = harness.bus()
    topic, _ = await publish_outbox(context, harness, bus)
    await bus.ensure_topic(dead_letter_topic("slack-delivery"), 1)
    # The Slack API URL is the operator's: the loopback stand-in is reachable because the operator allows it.
    settings = {"slack_api_url": slack.url + "/api", "slack_token": "xoxb-test"}
    services = HandlerServices(settings={**settings, OPERATOR_ALLOW: AllowList.parse([LOOPBACK])})
    runner = FlavorRunner(load_flavor("slack-delivery"), context, harness.producer(bus), services, FAST)

    async def done() -> bool:
        return (await deliveries(context))[delivery].status == "sent"

    await run_until(runner, harness, bus, topic, harness.name("slack-dm"), done)
    assert [r.path for r in slack.received] == ["/api/users.lookupByEmail", "/api/chat.postMessage"]
    assert slack.received[0].body == b"email=bob%40example.com"
    assert slack.received[1].json() == {"channel": "U0BOB", **payload}
