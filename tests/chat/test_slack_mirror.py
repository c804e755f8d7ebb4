"""Thread mirroring through the whole pipeline (tenant database → relay → bus → notification-rules →
slack-delivery → loopback Slack), on SQLite + embedded bus and PostgreSQL + Kafka: casem's changes are posted
into the linked thread once, a thread reply becomes a cell and is not posted back, and casem's own posts
coming back as events are not mirrored."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from casem.adapters.storage.tables import chat_inbox, chat_links, notification_deliveries
from casem.app.context import AppContext
from casem.app.timeline.service import add_comment
from casem.services.case_event_handler.framework import HandlerServices
from casem.services.case_event_handler.runner import FlavorRunner, RetryPolicy
from casem.services.case_event_handler.service import load_flavor
from tests.chat.bridge_support import BridgeRig, open_rig, until
from tests.handlers.test_runner import publish_outbox, run_until
from tests.support.bus_harness import Harness
from tests.support.slack_api import SlackApi, running_slack

FAST = RetryPolicy(max_attempts=3, initial_backoff_s=0.05, max_backoff_s=0.1)


@pytest.fixture
def slack() -> AsyncIterator[SlackApi]:
    with running_slack() as api:
        yield api


@pytest.fixture
async def rig(context: AppContext, slack: SlackApi, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[BridgeRig]:  # noqa: F811
    async for r in open_rig(context, slack, monkeypatch):
        yield r


async def scalar(rig: BridgeRig, query: sa.Select) -> int:
    async with rig.ctx.uow(read_only=True) as uow:
        return int(await uow.scalar(query))


async def deliveries_sent(rig: BridgeRig) -> int:
    q = (
        sa.select(sa.func.count())
        .select_from(notification_deliveries)
        .where(notification_deliveries.c.status == "sent")
    )
    return await scalar(rig, q)


async def run_pipeline(rig: BridgeRig, harness: Harness, expected_posts: int) -> None:  # noqa: F811
    """Relay the outbox, let notification-rules request the mirror deliveries, relay those, let slack-delivery
    send them."""
    bus = harness.bus()
    services = HandlerServices(settings={"slack_api_url": rig.slack.url})
    topic, _ = await publish_outbox(rig.ctx, harness, bus)
    rules = FlavorRunner(load_flavor("notification-rules"), rig.ctx, harness.producer(bus), services, FAST)
    total = sa.select(sa.func.count()).select_from(notification_deliveries)

    async def requested() -> bool:
        return await scalar(rig, total) >= expected_posts

    await run_until(rules, harness, bus, topic, harness.name("rules"), requested)
    topic, _ = await publish_outbox(rig.ctx, harness, bus)
    sender = FlavorRunner(load_flavor("slack-delivery"), rig.ctx, harness.producer(bus), services, FAST)

    async def sent() -> bool:
        return await deliveries_sent(rig) >= expected_posts

    await run_until(sender, harness, bus, topic, harness.name("slack"), sent)


async def test_a_linked_thread_hears_casems_changes_once_and_never_its_own_echo(
    rig: BridgeRig,
    harness: Harness,  # noqa: F811
) -> None:
    await rig.command("new Orders stuck in pending", user="U0ADA")

    async def linked() -> bool:
        return await scalar(rig, sa.select(sa.func.count()).select_from(chat_links)) == 1

    await until(linked)
    key = f"{rig.org.project_key}-1"
    [announcement] = rig.slack.posted("C0INC")
    thread = announcement["ts"]

    # Bob replies in the thread: an excerpt cell (Slack sends the event twice).
    reply = rig.slack.say(rig.org.ws, "C0INC", "U0BOB", "queue consumer is stuck", thread_ts=thread)
    event = {
        "type": "message",
        "channel": "C0INC",
        "user": "U0BOB",
        "text": reply["text"],
        "ts": reply["ts"],
        "thread_ts": thread,
    }
    await rig.event(event, "Ev0M1")
    await rig.event(event, "Ev0M1", retry=1)
    # Bob acknowledges with the button; Ada comments in casem.
    case = await rig.case(key)
    await rig.interaction(rig.button("casem_acknowledge", case.id, "U0BOB", channel="C0INC"))

    async def applied() -> bool:
        async with rig.ctx.uow(read_only=True) as uow:
            pending = await uow.scalar(
                sa.select(sa.func.count()).select_from(chat_inbox).where(chat_inbox.c.status == "pending")
            )
        return (
            pending == 0
            and (await rig.case(key)).status == "IN_PROGRESS"
            and len(await rig.cells(key, "CHAT_EXCERPT")) == 1
        )

    await until(applied)
    async with rig.ctx.uow() as uow:
        await add_comment(uow, rig.org.org_id, rig.org.admin, case.id, "restarting the consumer")
        await uow.commit()

    # Two posts into the thread: the status change and the comment; not the excerpt (it came from there).
    await run_pipeline(rig, harness, expected_posts=2)
    in_thread = [m for m in rig.slack.posted("C0INC") if m.get("thread_ts") == thread and m["ts"] != thread]
    assert sorted(m["text"] for m in in_thread) == sorted(
        [f"*{key}* status → IN_PROGRESS", f"*{key}* comment: restarting the consumer"]
    )
    assert all(m["metadata"]["event_type"] == "casem_case_event" for m in in_thread)
    calls = rig.slack.calls_of("chat.postMessage")
    assert all(c.token == f"xoxb-{rig.org.ws.team_id[1:].lower()}-bot" for c in calls)  # the workspace's own token

    # Slack reports casem's posts as message events: they are not mirrored back.
    for n, posted in enumerate(in_thread):
        echo = {
            "type": "message",
            "subtype": "bot_message",
            "bot_id": posted["bot_id"],
            "user": posted["user"],
            "channel": "C0INC",
            "text": posted["text"],
            "ts": posted["ts"],
            "thread_ts": thread,
        }
        await rig.event(echo, f"Ev0ECHO{n}")

    async def drained() -> bool:
        q = sa.select(sa.func.count()).select_from(chat_inbox).where(chat_inbox.c.status == "pending")
        return await scalar(rig, q) == 0

    await until(drained)
    assert len(await rig.cells(key, "CHAT_EXCERPT")) == 1
    # Another round of the pipeline posts nothing new: no loop.
    before = len(rig.slack.posted("C0INC"))
    await run_pipeline(rig, harness, expected_posts=2)
    time.sleep(0.2)
    assert len(rig.slack.posted("C0INC")) == before
