"""The Slack bridge end to end, on SQLite and PostgreSQL: requests signed as Slack signs them go in, the case
and timeline change, and the messages casem sends arrive at the loopback Slack Web API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from casem.adapters.storage.tables import chat_inbox, chat_links, chat_user_links, domain_events
from casem.app.cases.service import NewCase, create_case
from casem.app.chat import users
from casem.app.context import AppContext
from tests.chat.bridge_support import BridgeRig, open_rig, until
from tests.support.slack_api import SlackApi, running_slack


@pytest.fixture
def slack() -> AsyncIterator[SlackApi]:
    with running_slack() as api:
        yield api


@pytest.fixture
async def rig(context: AppContext, slack: SlackApi, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[BridgeRig]:  # noqa: F811
    async for r in open_rig(context, slack, monkeypatch):
        yield r


async def new_case(rig: BridgeRig, title: str = "Checkout errors") -> tuple[str, str]:
    async with rig.ctx.uow() as uow:
        case = await create_case(uow, rig.org.org_id, rig.org.admin, NewCase(rig.org.project_id, title))
        await uow.commit()
    return case.id, case.key


async def count(rig: BridgeRig, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    async with rig.ctx.uow(read_only=True) as uow:
        return int(await uow.scalar(sa.select(sa.func.count()).select_from(table).where(*where)))


async def inbox_settled(rig: BridgeRig) -> bool:
    return await count(rig, chat_inbox, chat_inbox.c.status == "pending") == 0


def ephemerals_to(rig: BridgeRig, user: str) -> list[dict]:
    return [e for e in rig.slack.ephemerals if e.get("user") == user]


# -- signatures ------------------------------------------------------------------------------------------


async def test_a_bad_or_stale_signature_is_a_401_and_nothing_is_recorded(rig: BridgeRig) -> None:
    body = rig.event_body({"type": "message", "channel": "C0INC", "user": "U0ADA", "text": "hi", "ts": "1.1"})
    wrong = await rig.post("/slack/events", body, "application/json", secret="not-the-signing-secret")
    stale = await rig.post("/slack/events", body, "application/json", timestamp=int(time.time()) - 6 * 60)
    unsigned = await rig.http.post("/slack/events", content=body, headers={"Content-Type": "application/json"})
    tampered_headers = {"X-Slack-Request-Timestamp": str(int(time.time()))}
    tampered = await rig.http.post(
        "/slack/events", content=body + b" ", headers={**tampered_headers, "X-Slack-Signature": "v0=" + "0" * 64}
    )
    command = await rig.post(
        "/slack/commands", b"team_id=T&trigger_id=x&text=new+x", "application/x-www-form-urlencoded", secret="wrong"
    )
    assert [r.status_code for r in (wrong, stale, unsigned, tampered, command)] == [401] * 5
    assert await count(rig, chat_inbox) == 0
    # Slack's own check of a new Request URL: the challenge comes back, signed requests only.
    ok = await rig.post("/slack/events", b'{"type":"url_verification","challenge":"3eZbrw1aB"}', "application/json")
    assert ok.status_code == 200 and ok.json() == {"challenge": "3eZbrw1aB"}


# -- slash commands -----------------------------------------------------------------------------------------


async def test_case_new_opens_a_case_in_the_channels_project_and_links_its_thread(rig: BridgeRig) -> None:
    started = time.monotonic()
    answer = await rig.command("new Checkout returns 502", user="U0ADA")
    assert answer.status_code == 200 and time.monotonic() - started < 3.0  # answered at once

    key = f"{rig.org.project_key}-1"

    async def opened() -> bool:
        return bool(rig.slack.posted("C0INC"))

    await until(opened)
    case = await rig.case(key)
    assert case is not None and case.title == "Checkout returns 502" and case.created_by_id == rig.org.admin
    [announcement] = rig.slack.posted("C0INC")
    assert key in announcement["text"]
    buttons = [b for b in announcement["blocks"] if b["type"] == "actions"][0]["elements"]
    assert [b["action_id"] for b in buttons] == ["casem_acknowledge", "casem_assign_to_me", "casem_close"]
    assert {b["value"] for b in buttons} == {case.id}

    async def linked() -> bool:
        return await count(rig, chat_links, chat_links.c.case_id == case.id) == 1

    await until(linked)
    async with rig.ctx.uow(read_only=True) as uow:
        link = (await uow.execute(sa.select(chat_links).where(chat_links.c.case_id == case.id))).one()
    assert (link.channel_id, link.thread_id) == ("C0INC", announcement["ts"])
    assert [c.type for c in await rig.cells(key)] == ["CASE_CREATED", "CHAT_LINK"]


async def test_case_key_shows_the_case_and_an_unknown_key_gets_an_ephemeral_message(rig: BridgeRig) -> None:
    _, key = await new_case(rig, "Latency on search")
    await rig.command(key.lower(), user="U0EVE")
    await rig.command("NOPE-42", user="U0EVE")
    await rig.command("new", user="U0ADA")  # no title
    await rig.command("new Something", user="U0EVE")  # Eve maps to no casem user

    async def answered() -> bool:
        return len(rig.slack.ephemerals) == 4

    await until(answered)
    by_text = {e["text"]: e for e in rig.slack.ephemerals}
    card = by_text[f"{key}: Latency on search"]
    assert card["user"] == "U0EVE" and card["channel"] == "C0INC"
    assert "casem_follow" in str(card["blocks"])
    assert "I found no case `NOPE-42` here." in by_text
    assert any("give the case a title" in t for t in by_text)
    assert any("not linked to a casem user" in t for t in by_text)
    assert await rig.case(f"{rig.org.project_key}-2") is None  # nothing opened for Eve
    assert await inbox_settled(rig)


async def test_case_link_links_an_account_with_a_one_time_code(rig: BridgeRig) -> None:
    async with rig.ctx.uow() as uow:
        code, _ = await users.create_link_code(uow, rig.org.org_id, rig.org.bob)
        await uow.commit()
    await rig.command(f"link {code}", user="U0EVE")

    async def linked() -> bool:
        return await count(rig, chat_user_links, chat_user_links.c.chat_user_id == "U0EVE") == 1

    await until(linked)
    case_id, key = await new_case(rig)
    await rig.interaction(rig.button("casem_assign_to_me", case_id, "U0EVE"))

    async def assigned() -> bool:
        row = await rig.case(key)
        return row is not None and row.assignee_id == rig.org.bob

    await until(assigned)


# -- notification buttons ---------------------------------------------------------------------------------


async def test_buttons_act_as_the_mapped_user_and_an_unmapped_one_is_told_how_to_link(rig: BridgeRig) -> None:
    case_id, key = await new_case(rig)
    await rig.interaction(rig.button("casem_acknowledge", case_id, "U0EVE"))  # unmapped
    await rig.interaction(rig.button("casem_acknowledge", case_id, "U0MAL"))  # unverified address
    await until(lambda: _n(rig, 2))
    assert all("link" in e["text"] for e in rig.slack.ephemerals)
    assert (await rig.case(key)).status == "OPEN"

    await rig.interaction(rig.button("casem_acknowledge", case_id, "U0BOB"))  # bob@ verified: mapped
    await rig.interaction(rig.button("casem_assign_to_me", case_id, "U0BOB"))
    await until(lambda: _n(rig, 4))
    await rig.interaction(rig.button("casem_close", case_id, "U0BOB"))
    await until(lambda: _n(rig, 5))
    row = await rig.case(key)
    assert (row.status, row.assignee_id) == ("CLOSED", rig.org.bob)
    texts = [e["text"] for e in ephemerals_to(rig, "U0BOB")]
    assert texts == [f"{key} acknowledged.", f"{key} assigned to you.", f"{key} closed."]
    statuses = [c.author_id for c in await rig.cells(key, "STATUS_CHANGE")]
    assert statuses == [rig.org.bob, rig.org.bob]
    assert await count(rig, chat_user_links, chat_user_links.c.chat_user_id == "U0MAL") == 0


async def _n(rig: BridgeRig, n: int) -> bool:
    return len(rig.slack.ephemerals) >= n


async def test_a_button_on_another_orgs_case_finds_nothing(
    rig: BridgeRig,
    context: AppContext,  # noqa: F811
    slack: SlackApi,  # noqa: F811
) -> None:
    from tests.chat.bridge_support import make_slack_org

    other = await make_slack_org(context, slack, rig.bridge.box)
    async with context.uow() as uow:
        theirs = await create_case(uow, other.org_id, other.admin, NewCase(other.project_id, "theirs"))
        await uow.commit()
    await rig.interaction(rig.button("casem_close", theirs.id, "U0BOB"))
    await until(lambda: _n(rig, 1))
    assert rig.slack.ephemerals[0]["text"].startswith("I found no case")
    async with context.uow(read_only=True) as uow:
        from casem.adapters.storage.tables import cases

        status = await uow.scalar(sa.select(cases.c.status).where(cases.c.id == theirs.id))
    assert status == "OPEN"


# -- "Add to case" and thread mirroring ------------------------------------------------------------------


async def test_add_to_case_appends_the_message_or_the_whole_thread(rig: BridgeRig) -> None:
    case_id, key = await new_case(rig)
    ws = rig.org.ws
    parent = rig.slack.say(ws, "C0OPS", "U0ADA", "checkout is down")
    rig.slack.say(ws, "C0OPS", "U0BOB", "502 from the payments pod", thread_ts=parent["ts"])
    reply = rig.slack.say(ws, "C0OPS", "U0EVE", "rolling back", thread_ts=parent["ts"])
    shortcut = {
        "type": "message_action",
        "callback_id": "add_to_case",
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "team": {"id": ws.team_id, "domain": ws.domain},
        "channel": {"id": "C0OPS", "name": "ops"},
        "user": {"id": "U0ADA", "name": "ada"},
        "message_ts": reply["ts"],
        "message": {
            "type": "message",
            "user": "U0EVE",
            "ts": reply["ts"],
            "text": "rolling back",
            "thread_ts": parent["ts"],
        },
        "response_url": "https://hooks.slack.com/app/T/1/x",
    }
    await rig.interaction(shortcut)
    await until(lambda: _n(rig, 1))
    picker = rig.slack.ephemerals[0]
    selects = [b for b in picker["blocks"] if b["type"] == "actions"][0]
    assert [e["action_id"] for e in selects["elements"]] == ["casem_add_message", "casem_add_thread"]
    assert any(o["value"] == case_id for o in selects["elements"][0]["options"])

    def pick(action_id: str) -> dict:
        return {
            "type": "block_actions",
            "user": {"id": "U0ADA", "team_id": ws.team_id},
            "team": {"id": ws.team_id, "domain": ws.domain},
            "channel": {"id": "C0OPS"},
            "container": {
                "type": "message",
                "message_ts": picker["message_ts"],
                "channel_id": "C0OPS",
                "is_ephemeral": True,
            },
            "trigger_id": f"{time.time_ns()}.pick",
            "actions": [
                {
                    "type": "static_select",
                    "action_id": action_id,
                    "block_id": selects["block_id"],
                    "selected_option": {"text": {"type": "plain_text", "text": key}, "value": case_id},
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }

    await rig.interaction(pick("casem_add_message"))
    await until(lambda: _n(rig, 2))
    assert rig.slack.ephemerals[1]["text"] == f"Added 1 message to {key}."
    await rig.interaction(pick("casem_add_thread"))
    await until(lambda: _n(rig, 3))
    assert rig.slack.ephemerals[2]["text"] == f"Added 2 messages to {key}."  # the reply was there already

    excerpts = await rig.cells(key, "CHAT_EXCERPT")
    assert len(excerpts) == 2 and all(c.author_id == rig.org.admin for c in excerpts)  # Ada added them
    first, thread = (c.content for c in excerpts)
    assert [m["text"] for m in first["messages"]] == ["rolling back"]
    assert first["messages"][0]["author_name"] == "Eve"
    assert first["messages"][0]["permalink"].startswith(f"https://{ws.domain}.slack.com/archives/C0OPS/p")
    assert [m["text"] for m in thread["messages"]] == ["checkout is down", "502 from the payments pod"]
    assert thread["conversation"]["thread_id"] == parent["ts"]


async def test_a_linked_thread_is_mirrored_once_under_retries_and_bots_are_not_echoed(rig: BridgeRig) -> None:
    await rig.command("new Search is slow", user="U0ADA")
    await until(lambda: _linked(rig))
    key = f"{rig.org.project_key}-1"
    [announcement] = rig.slack.posted("C0INC")
    thread = announcement["ts"]
    reply = rig.slack.say(rig.org.ws, "C0INC", "U0BOB", "index is rebuilding", thread_ts=thread)
    event = {
        "type": "message",
        "channel": "C0INC",
        "user": "U0BOB",
        "text": reply["text"],
        "ts": reply["ts"],
        "thread_ts": thread,
        "channel_type": "channel",
        "event_ts": reply["ts"],
    }
    # Slack delivers the event, then retries it three times (same event id) as if the answers were late.
    answers = await asyncio.gather(*(rig.event(event, "Ev0MIRROR01", retry=n) for n in range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    assert await count(rig, chat_inbox, chat_inbox.c.id.like("%Ev0MIRROR01")) == 1

    async def mirrored() -> bool:
        return len(await rig.cells(key, "CHAT_EXCERPT")) == 1 and await inbox_settled(rig)

    await until(mirrored)
    [cell] = await rig.cells(key, "CHAT_EXCERPT")
    assert cell.author_id == rig.org.bob and cell.content["messages"][0]["text"] == "index is rebuilding"
    # The same message again under a new event id (e.g. delivered as both message and app_mention): still one.
    await rig.event(event, "Ev0MIRROR02")
    # casem's own post into the thread comes back as an event: never mirrored.
    bot_post = {
        "type": "message",
        "subtype": "bot_message",
        "channel": "C0INC",
        "bot_id": "B0CASEM",
        "user": rig.org.ws.bot_user_id,
        "text": "*X-1* comment: hi",
        "ts": f"{time.time():.6f}",
        "thread_ts": thread,
    }
    await rig.event(bot_post, "Ev0MIRROR03")
    await rig.event({**bot_post, "subtype": None, "bot_id": None}, "Ev0MIRROR04")  # posted as the bot user
    # A message outside the thread is not the case's business.
    elsewhere = rig.slack.say(rig.org.ws, "C0INC", "U0BOB", "lunch?")
    await rig.event(
        {"type": "message", "channel": "C0INC", "user": "U0BOB", "text": "lunch?", "ts": elsewhere["ts"]}, "Ev0MIRROR05"
    )
    await until(lambda: inbox_settled(rig))
    assert len(await rig.cells(key, "CHAT_EXCERPT")) == 1
    events = await count(rig, domain_events, domain_events.c.type == "com.casem.case.chat_excerpt_added.v1")
    assert events == 1


async def _linked(rig: BridgeRig) -> bool:
    return await count(rig, chat_links) == 1


async def test_replies_wait_out_slack_rate_limits(rig: BridgeRig) -> None:
    _, key = await new_case(rig)
    rig.slack.rate_limit("chat.postEphemeral", times=1, retry_after=1)
    started = time.monotonic()
    await rig.command(key, user="U0ADA")
    await until(lambda: _n(rig, 1))
    assert time.monotonic() - started >= 1.0  # waited Retry-After
    calls = rig.slack.calls_of("chat.postEphemeral")
    assert len(calls) == 2  # the ratelimited call, then the one that went through
    # A rate-limited read while planning postpones the item (not lost, not failed).
    rig.slack.rate_limit("users.info", times=1, retry_after=1)
    case_id, key2 = await new_case(rig, "second")
    await rig.interaction(rig.button("casem_acknowledge", case_id, "U0BOB"))

    async def acknowledged() -> bool:
        row = await rig.case(key2)
        return row is not None and row.status == "IN_PROGRESS"

    await until(acknowledged, timeout=30)


# -- OAuth v2 install ----------------------------------------------------------------------------------------


async def test_oauth_install_stores_the_bot_token_sealed_and_links_the_installer(rig: BridgeRig) -> None:
    from casem.adapters.storage.tables import chat_installations
    from casem.app.chat import oauth

    rig.slack.oauth_apps["1111.2222"] = "client-secret"
    rig.slack.oauth_codes["c0de-1"] = (
        "1111.2222",
        {
            "access_token": "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
            "token_type": "bot",
            "scope": "commands,chat:write",
            "bot_user_id": "U0KRQLJ9H",
            "app_id": "A0KRD7HC3",
            "team": {"name": "Slack Softball Team", "id": "T9TK3CUKW"},
            "enterprise": None,
            "authed_user": {"id": "U1234", "scope": "chat:write", "access_token": "xoxp-1234", "token_type": "user"},
        },
    )
    caller_org, caller_user = rig.org.org_id, rig.org.admin
    state = oauth.issue_state(rig.bridge.settings.slack_signing_secret or "", caller_org, caller_user)

    done = await rig.http.get("/slack/oauth/callback", params={"code": "c0de-1", "state": state})
    assert done.status_code == 200 and "Slack Softball Team" in done.text
    async with rig.ctx.uow(read_only=True) as uow:
        row = (
            await uow.execute(sa.select(chat_installations).where(chat_installations.c.workspace_id == "T9TK3CUKW"))
        ).one()
        installer = await users.linked_user(uow, caller_org, "slack", "T9TK3CUKW", "U1234")
    assert row.org_id == caller_org and row.bot_user_id == "U0KRQLJ9H"
    assert row.bot_token.startswith("fernet:") and "xoxb" not in row.bot_token
    assert rig.bridge.box.open(row.bot_token) == "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
    assert installer == caller_user
    [exchange] = rig.slack.calls_of("oauth.v2.access")
    assert exchange.args["code"] == "c0de-1" and "client_secret" not in exchange.args  # sent by HTTP Basic

    replay = await rig.http.get("/slack/oauth/callback", params={"code": "c0de-1", "state": state})
    assert replay.status_code == 400 and "code_already_used" in replay.text
    forged = await rig.http.get("/slack/oauth/callback", params={"code": "c0de-1", "state": state[:-2] + "00"})
    assert forged.status_code == 400 and "not one casem issued" in forged.text
