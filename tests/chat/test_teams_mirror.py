"""Posting into Teams end to end (tenant database → relay → bus → notification-rules → msteams-delivery → the
loopback Bot Framework), on SQLite + embedded bus and PostgreSQL + Kafka: "Add to case" links the case to the
message's thread; casem's status changes are posted there as Adaptive Cards carrying the three buttons; the
signed `acknowledge` invoke from that card acknowledges the case; the excerpt that came from the thread is not
posted back; a 429 from the Bot Connector is retried."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from casem.adapters.secrets import SecretBox
from casem.adapters.storage.tables import chat_links, notification_deliveries, timeline_cells
from casem.app.cases import updates
from casem.app.cases.service import NewCase, create_case
from casem.app.chat import installations, users
from casem.app.chat.service import link_case
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.app.projects.service import create_project
from casem.domain.chat import Conversation
from casem.services.case_chat_interactions.bridge.settings import BridgeSettings
from casem.services.case_chat_interactions.service import build_bridge
from casem.services.case_event_handler.flavors.msteams_delivery import BOT_CONNECTOR
from casem.services.case_event_handler.framework import HandlerServices
from casem.services.case_event_handler.runner import FlavorRunner, RetryPolicy
from casem.services.case_event_handler.service import load_flavor
from casem.topology.topics import dead_letter_topic
from tests.chat.test_teams_bridge import APP_ID, SIGNER_JWK, TeamsRig, token
from tests.handlers.test_runner import publish_outbox, run_until
from tests.support.bot_connector import BotFramework, running_bot_framework
from tests.support.bus_harness import Harness

APP_PASSWORD = "bot-app-password-not-for-errors"
APP_URL = "https://casem.example"
CHANNEL = "19:abc@thread.tacv2"
THREAD = "1700"  # the root message of the channel thread the rig's activities come from
FAST = RetryPolicy(max_attempts=3, initial_backoff_s=0.05, max_backoff_s=0.1)


@dataclass
class Rig:
    teams: TeamsRig
    bot: BotFramework
    services: HandlerServices

    async def send(self, activity: dict) -> httpx.Response:
        """The activity as Teams sends it from the loopback Bot Framework's service URL, signed for it."""
        activity["serviceUrl"] = self.bot.service_url
        return await self.teams.send(activity, token(serviceurl=self.bot.service_url))

    async def scalar(self, query: sa.Select) -> int:
        async with self.teams.ctx.uow(read_only=True) as uow:
            return int(await uow.scalar(query))

    async def deliveries(self) -> list[sa.Row]:
        async with self.teams.ctx.uow(read_only=True) as uow:
            q = sa.select(notification_deliveries).where(notification_deliveries.c.org_id == self.teams.org_id)
            return list((await uow.execute(q.order_by(notification_deliveries.c.created_at))).all())

    async def run_pipeline(self, harness: Harness, expected_sent: int) -> None:  # noqa: F811
        """Relay the outbox, let notification-rules request the mirror deliveries, relay those, and let
        msteams-delivery send them until `expected_sent` are sent."""
        ctx = self.teams.ctx
        bus = harness.bus()
        topic, _ = await publish_outbox(ctx, harness, bus)
        rules = FlavorRunner(load_flavor("notification-rules"), ctx, harness.producer(bus), self.services, FAST)

        async def requested() -> bool:
            return len(await self.deliveries()) >= expected_sent

        await run_until(rules, harness, bus, topic, harness.name("rules"), requested)
        topic, _ = await publish_outbox(ctx, harness, bus)
        sender = FlavorRunner(load_flavor("msteams-delivery"), ctx, harness.producer(bus), self.services, FAST)

        async def sent() -> bool:
            return sum(d.status == "sent" for d in await self.deliveries()) >= expected_sent

        await run_until(sender, harness, bus, topic, harness.name("msteams"), sent)


@pytest.fixture
def bot() -> Iterator[BotFramework]:
    with running_bot_framework(APP_ID, APP_PASSWORD) as api:
        yield api


@pytest.fixture
async def rig(context: AppContext, bot: BotFramework, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:  # noqa: F811
    monkeypatch.setenv("CASEM_OUTBOUND_ALLOW", "127.0.0.1/32")  # the loopback Bot Framework is a private address
    settings = BridgeSettings(teams_app_id=APP_ID, teams_jwks={"keys": [SIGNER_JWK]})
    bridge = build_bridge(context, settings, box=SecretBox([b"0" * 43 + b"="]))
    async with context.uow() as uow:
        tag = uuid.uuid4().hex[:6]
        creds = await bootstrap_org(uow, f"org-{tag}", f"ada@{tag}.example")
        project = await create_project(uow, creds.org_id, creds.user_id, key=("TM" + tag).upper(), name="Teams")
        tenant = f"72f988bf-{tag}"
        await installations.install(uow, creds.org_id, creds.user_id, platform="teams", workspace_id=tenant)
        case = await create_case(uow, creds.org_id, creds.user_id, NewCase(project.id, "Mail delivery delayed"))
        await uow.commit()
    services = HandlerServices(
        settings={
            "teams_app_id": APP_ID,
            "teams_app_password": APP_PASSWORD,
            "teams_token_url": bot.token_url,
            "app_url": APP_URL,
        }
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bridge.app), base_url="http://bridge") as http:
        teams = TeamsRig(context, http, creds.org_id, creds.user_id, tenant, case.id, case.key)
        try:
            yield Rig(teams, bot, services)
        finally:
            connector = services.settings.get(BOT_CONNECTOR)
            if connector is not None:
                await connector.close()
            await bridge.close()


def expected_card(line: str, case_id: str, case_key: str) -> dict:
    """The message activity Teams must receive, written out: the line, three universal actions, a link."""
    content = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [{"type": "TextBlock", "text": line, "wrap": True}],
        "actions": [
            {"type": "Action.Execute", "title": "Acknowledge", "verb": "acknowledge", "data": {"caseId": case_id}},
            {"type": "Action.Execute", "title": "Assign to me", "verb": "assign_to_me", "data": {"caseId": case_id}},
            {"type": "Action.Execute", "title": "Close", "verb": "close", "data": {"caseId": case_id}},
            {"type": "Action.OpenUrl", "title": f"Open {case_key}", "url": f"{APP_URL}/cases/{case_key}"},
        ],
    }
    return {
        "type": "message",
        "summary": line,
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": content}],
    }


async def test_status_changes_reach_the_linked_teams_thread_and_its_buttons_act(
    rig: Rig,
    harness: Harness,  # noqa: F811
) -> None:
    teams, bot = rig.teams, rig.bot
    # Ada links her Teams account to her casem user (the activity also tells casem the tenant's service URL).
    async with teams.ctx.uow() as uow:
        code, _ = await users.create_link_code(uow, teams.org_id, teams.admin)
        inst = await installations.installation_for(uow, "teams", teams.tenant)
        await uow.commit()
    assert inst.service_url is None
    assert (await rig.send(teams.activity("message", text=f"link {code}"))).status_code == 200
    async with teams.ctx.uow(read_only=True) as uow:
        assert (await installations.installation_for(uow, "teams", teams.tenant)).service_url == bot.service_url

    # The case goes IN_PROGRESS before it is linked anywhere.
    async with teams.ctx.uow() as uow:
        await updates.transition(uow, teams.org_id, teams.admin, teams.case_id, "IN_PROGRESS")
        await uow.commit()
    # "Add to case" on a message of the thread: an excerpt, and the case now follows that thread.
    submit = {
        "commandId": "addToCase",
        "commandContext": "message",
        "data": {"caseKey": teams.case_key},
        "messagePayload": {
            "id": "1700000000123",
            "replyToId": THREAD,
            "createdDateTime": "2026-11-29T07:59:01.123Z",
            "body": {"contentType": "html", "content": "<p>relay queue is backed up</p>"},
            "from": {"user": {"id": "aad-bob", "displayName": "Bob", "userIdentityType": "aadUser"}},
            "linkToMessage": f"https://teams.microsoft.com/l/message/{CHANNEL}/1700000000123",
        },
    }
    added = await rig.send(teams.activity("invoke", "composeExtension/submitAction", submit))
    assert added.json() == {"composeExtension": {"type": "message", "text": f"Added to {teams.case_key}."}}
    async with teams.ctx.uow(read_only=True) as uow:
        [link] = (await uow.execute(sa.select(chat_links).where(chat_links.c.case_id == teams.case_id))).all()
    assert (link.platform, link.workspace_id, link.channel_id, link.thread_id) == (
        "teams",
        teams.tenant,
        CHANNEL,
        THREAD,
    )
    # Someone reopens the case in casem; the Bot Connector throttles the first post.
    async with teams.ctx.uow() as uow:
        await updates.transition(uow, teams.org_id, teams.admin, teams.case_id, "OPEN")
        await uow.commit()
    bot.throttle(times=1, retry_after=1)

    await rig.run_pipeline(harness, expected_sent=2)

    # Two cards in the thread (the two status changes, in order); the excerpt came from there: not posted back.
    key = teams.case_key
    assert [p.conversation_id for p in bot.posted] == [f"{CHANNEL};messageid={THREAD}"] * 2
    assert [p.activity for p in bot.posted] == [
        expected_card(f"**{key}** status → IN_PROGRESS", teams.case_id, key),
        expected_card(f"**{key}** status → OPEN", teams.case_id, key),
    ]
    assert all("refresh" not in p.activity["attachments"][0]["content"] for p in bot.posted)
    # The 429 was retried: one delivery failed once and then went out; one app token served every call.
    assert bot.refused == [429]
    deliveries = await rig.deliveries()
    assert [(d.channel, d.status) for d in deliveries] == [("msteams", "sent")] * 2
    assert sorted(d.attempts for d in deliveries) == [1, 2]
    assert all(
        d.target == {"workspace_id": teams.tenant, "conversation_id": CHANNEL, "thread_id": THREAD} for d in deliveries
    )
    assert len(bot.tokens_issued) == 1

    # Ada presses the card's Acknowledge: Teams sends the universal action with the card's verb and data.
    acknowledge = bot.posted[-1].activity["attachments"][0]["content"]["actions"][0]
    value = {"action": {"type": acknowledge["type"], "verb": acknowledge["verb"], "data": acknowledge["data"]}}
    pressed = teams.activity("invoke", "adaptiveCard/action", {**value, "trigger": "manual"})
    pressed["replyToId"] = bot.posted[-1].id
    answer = await rig.send(pressed)
    assert answer.json()["value"] == f"{key} acknowledged."
    assert (await teams.case()).status == "IN_PROGRESS"
    async with teams.ctx.uow(read_only=True) as uow:
        changes = (
            await uow.execute(
                sa.select(timeline_cells)
                .where(timeline_cells.c.case_id == teams.case_id, timeline_cells.c.type == "STATUS_CHANGE")
                .order_by(timeline_cells.c.created_at)
            )
        ).all()
    last = changes[-1]
    assert last.author_id == teams.admin and last.content["changes"]["status"] == {"old": "OPEN", "new": "IN_PROGRESS"}

    # The acknowledgement is casem's change too: posted once more; the excerpt and the chat action are not.
    await rig.run_pipeline(harness, expected_sent=3)
    assert [p.activity["summary"] for p in bot.posted] == [
        f"**{key}** status → IN_PROGRESS",
        f"**{key}** status → OPEN",
        f"**{key}** status → IN_PROGRESS",
    ]
    assert len(await rig.deliveries()) == 3
    assert len(bot.tokens_issued) == 1


async def test_a_conversation_casem_never_heard_from_is_not_posted_to(
    rig: Rig,
    harness: Harness,  # noqa: F811
) -> None:
    """A link made without any activity from the tenant (e.g. through the gRPC service): casem knows no service
    URL, so the delivery fails for good with a sentence saying why, and nothing reaches the Bot Connector."""
    teams = rig.teams
    async with teams.ctx.uow() as uow:
        await link_case(uow, teams.org_id, teams.admin, teams.case_id, Conversation("teams", teams.tenant, CHANNEL))
        await updates.transition(uow, teams.org_id, teams.admin, teams.case_id, "IN_PROGRESS")
        await uow.commit()
    ctx = teams.ctx
    bus = harness.bus()
    topic, _ = await publish_outbox(ctx, harness, bus)
    rules = FlavorRunner(load_flavor("notification-rules"), ctx, harness.producer(bus), rig.services, FAST)

    async def requested() -> bool:
        return len(await rig.deliveries()) == 1

    await run_until(rules, harness, bus, topic, harness.name("rules"), requested)
    topic, _ = await publish_outbox(ctx, harness, bus)
    await bus.ensure_topic(dead_letter_topic("msteams-delivery"), 1)  # a permanent failure is dead-lettered
    sender = FlavorRunner(load_flavor("msteams-delivery"), ctx, harness.producer(bus), rig.services, FAST)

    async def failed() -> bool:
        return [d.status for d in await rig.deliveries()] == ["failed"]

    await run_until(sender, harness, bus, topic, harness.name("msteams"), failed)
    [delivery] = await rig.deliveries()
    assert delivery.target == {"workspace_id": teams.tenant, "conversation_id": CHANNEL}
    assert "knows no Bot Connector service URL" in delivery.last_error
    assert rig.bot.posted == [] and rig.bot.tokens_issued == []
