"""What each inbox item does, in three phases so no database transaction is held open across a network call:

1. `plan`: outbound reads (chat.getPermalink, users.info, conversations.replies) and read-only lookups;
2. `apply`: the change, in the unit of work that also marks the inbox row done (exactly once);
3. the replies it returns (chat.postMessage / chat.postEphemeral) are sent after the commit, each retried on
   `ratelimited` after Slack's Retry-After. A reply lost to a crash between 2 and 3 is not re-sent: the
   change itself is applied, and a linked thread still hears of it through the mirror deliveries.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog

from casem.adapters.chat.slack_web import SlackApiError, SlackWebApi
from casem.adapters.secrets import SecretBox
from casem.adapters.storage.tables import cases as cases_table
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases.service import NewCase, create_case, get_case
from casem.app.chat import installations, service, users
from casem.app.chat.access import ChatIdentity, acting_user, mapped_user
from casem.app.chat.inbox import InboxItem
from casem.app.chat.installations import Installation
from casem.app.context import AppContext
from casem.domain.cases import Case, Status
from casem.domain.chat import (
    ACKNOWLEDGE,
    ASSIGN_TO_ME,
    CLOSE,
    SLACK,
    ChatAction,
    ChatLink,
    ChatMessage,
    Conversation,
    chat_message,
)
from casem.domain.errors import Conflict, InvalidInput, NotFound
from casem.services.case_chat_interactions.bridge import slack_blocks as blocks
from casem.services.case_chat_interactions.bridge.settings import BridgeSettings

log = structlog.get_logger("case-chat-interactions.slack")

BUTTON_ACTIONS = {blocks.ACKNOWLEDGE: ACKNOWLEDGE, blocks.ASSIGN_TO_ME: ASSIGN_TO_ME, blocks.CLOSE: CLOSE}
DONE_WORDS = {ACKNOWLEDGE: "acknowledged", ASSIGN_TO_ME: "assigned to you", CLOSE: "closed"}
# Message subtypes that are people saying something; others (joins, edits, bot posts) are not mirrored.
SAID_SUBTYPES = frozenset({"", "thread_broadcast", "file_share"})
USER_CACHE_TTL_S = 600.0
LINKED_CACHE_TTL_S = 60.0
INSTALLATION_CACHE_TTL_S = 5.0


@dataclass
class Reply:
    kind: str  # "ephemeral" or "message"
    channel: str
    text: str
    user: str = ""
    blocks: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    # After posting: link this case (org, case id, actor) to the thread the posted message starts.
    link_case: tuple[str, str, str | None] | None = None


Apply = Callable[[UnitOfWork], Awaitable[list[Reply]]]


@dataclass
class Plan:
    installation: Installation
    token: str
    apply: Apply
    on_error: Callable[[Exception], list[Reply]] = field(default=lambda exc: [])


def error_text(exc: Exception) -> str:
    if isinstance(exc, NotFound):
        return f"I found no {exc.resource} `{exc.ident}` here."
    if isinstance(exc, InvalidInput | Conflict):
        return exc.detail
    return str(exc)


def _nothing() -> Apply:
    async def apply(uow: UnitOfWork) -> list[Reply]:
        return []

    return apply


class SlackFlows:
    def __init__(self, ctx: AppContext, api: SlackWebApi, box: SecretBox, settings: BridgeSettings) -> None:
        self.ctx = ctx
        self.api = api
        self.box = box
        self.settings = settings
        self._users: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        # Short-lived caches of what every request reads: the apply step re-reads what it relies on.
        self._installations: dict[str, tuple[float, Installation | None]] = {}
        self._linked: dict[tuple[str, str], float] = {}
        self._links: dict[tuple[str, Conversation], asyncio.Task[list[ChatLink]]] = {}
        self._mapped: dict[tuple[str, str], str | None] = {}

    def new_batch(self) -> None:
        """Forget what was read for the previous batch (links and mapped users are read once per batch)."""
        self._links = {}
        self._mapped = {}

    def forget_mapped(self) -> None:
        self._mapped = {}

    async def mapped_in_batch(self, uow: UnitOfWork, inst: Installation, who: ChatIdentity) -> str | None:
        """mapped_user, once per chat user in a batch's transaction (the batch applies in one unit of work)."""
        key = (inst.workspace_id, who.user_id)
        if key not in self._mapped:
            self._mapped[key] = await mapped_user(uow, inst, who)
        return self._mapped[key]

    async def links_in(self, org_id: str, conversation: Conversation) -> list[ChatLink]:
        key = (org_id, conversation)
        task = self._links.get(key)
        if task is None:

            async def read() -> list[ChatLink]:
                async with self.ctx.uow(read_only=True) as uow:
                    return await service.links_in(uow, org_id, conversation)

            task = self._links[key] = asyncio.ensure_future(read())
        return await task

    # -- helpers -------------------------------------------------------------------------------------
    async def _user(self, token: str, team: str, user: str) -> dict[str, Any]:
        """users.info, cached a few minutes (names and addresses change rarely; Slack rate-limits the method)."""
        cached = self._users.get((team, user))
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            found = await self.api.user_info(token, user)
        except SlackApiError as exc:
            if exc.transient:
                raise
            found = {}  # user_not_found, user_not_visible: an unknown author, not a failure
        self._users[(team, user)] = (time.monotonic() + USER_CACHE_TTL_S, found)
        return found

    async def identity(self, inst: Installation, token: str, user: str) -> ChatIdentity:
        """The Slack user as Slack describes them: the address counts only if Slack says it is confirmed."""
        if self._linked.get((inst.workspace_id, user), 0.0) > time.monotonic():
            return ChatIdentity(user)
        async with self.ctx.uow(read_only=True) as uow:
            linked = await users.linked_user(uow, inst.org_id, SLACK, inst.workspace_id, user)
        if linked is not None:
            self._linked[(inst.workspace_id, user)] = time.monotonic() + LINKED_CACHE_TTL_S
            return ChatIdentity(user)  # already mapped: no need to ask Slack (apply checks the link again)
        info = await self._user(token, inst.workspace_id, user)
        profile = info.get("profile") or {}
        verified = bool(info.get("is_email_confirmed")) and not info.get("is_bot") and not info.get("deleted")
        return ChatIdentity(user, _name(info), str(profile.get("email") or ""), verified)

    async def message_of(self, inst: Installation, token: str, channel: str, raw: dict[str, Any]) -> ChatMessage:
        ts = str(raw.get("ts") or "")
        author = str(raw.get("user") or raw.get("bot_id") or "")
        info = await self._user(token, inst.workspace_id, author) if raw.get("user") else {}
        try:
            permalink = await self.api.get_permalink(token, channel, ts)
        except SlackApiError as exc:
            if exc.transient:
                raise
            permalink = ""
        return chat_message(
            message_id=ts,
            author_id=author,
            author_name=_name(info) or author,
            text=str(raw.get("text") or ""),
            sent_at=_ts_time(ts),
            permalink=permalink,
            pointer="/message",
        )

    # -- dispatch ------------------------------------------------------------------------------------
    async def installation(self, workspace_id: str) -> Installation | None:
        cached = self._installations.get(workspace_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        async with self.ctx.uow(read_only=True) as uow:
            found = await installations.find_installation(uow, SLACK, workspace_id)
        self._installations[workspace_id] = (time.monotonic() + INSTALLATION_CACHE_TTL_S, found)
        return found

    async def plan(self, item: InboxItem) -> Plan | None:
        inst = await self.installation(item.workspace_id)
        if inst is None or not inst.sealed_token:
            log.warning("slack request for a workspace that is not installed", workspace=item.workspace_id)
            return None
        token = inst.bot_token(self.box)
        payload = item.payload
        if item.kind == "slack.event":
            return await self._event(inst, token, payload)
        if item.kind == "slack.command":
            return await self._command(inst, token, payload)
        if item.kind == "slack.interaction":
            if payload.get("type") == "block_actions":
                return await self._block_action(inst, token, payload)
            if payload.get("type") == "message_action":
                return await self._shortcut(inst, token, payload)
        return None

    # -- Events API: messages in linked conversations -------------------------------------------------
    async def _event(self, inst: Installation, token: str, payload: dict[str, Any]) -> Plan | None:
        event = payload.get("event") or {}
        if event.get("type") != "message" or (event.get("subtype") or "") not in SAID_SUBTYPES:
            return None
        # casem's own posts (and any bot's) are never mirrored back: no echo, no loop.
        if event.get("bot_id") or not event.get("user") or event.get("user") == inst.bot_user_id:
            return None
        channel = str(event.get("channel") or "")
        conversation = Conversation(SLACK, inst.workspace_id, channel, str(event.get("thread_ts") or ""))
        links = await self.links_in(inst.org_id, conversation)
        if not links:
            return None
        who = await self.identity(inst, token, str(event["user"]))
        message = await self.message_of(inst, token, channel, event)
        case_ids = list(dict.fromkeys(link.case_id for link in links))

        async def apply(uow: UnitOfWork) -> list[Reply]:
            author = await self.mapped_in_batch(uow, inst, who)
            for case_id in case_ids:
                await service.append_excerpt(uow, inst.org_id, author, case_id, conversation, [message])
            return []

        return Plan(inst, token, apply)

    # -- slash command /case ----------------------------------------------------------------------------
    async def _command(self, inst: Installation, token: str, payload: dict[str, Any]) -> Plan:
        user, channel = str(payload.get("user_id") or ""), str(payload.get("channel_id") or "")
        words = str(payload.get("text") or "").strip().split(maxsplit=1)
        verb = words[0].lower() if words else "help"
        rest = words[1].strip() if len(words) > 1 else ""

        def ephemeral(text: str, card: list[dict[str, Any]] | None = None) -> Reply:
            return Reply("ephemeral", channel, text, user=user, blocks=card)

        def on_error(exc: Exception) -> list[Reply]:
            return [ephemeral(error_text(exc))]

        if verb == "help":

            async def usage(uow: UnitOfWork) -> list[Reply]:
                return [ephemeral(blocks.USAGE)]

            return Plan(inst, token, usage, on_error)
        if verb == "link":

            async def link(uow: UnitOfWork) -> list[Reply]:
                await users.redeem_link_code(uow, inst.org_id, SLACK, inst.workspace_id, user, rest)
                return [ephemeral("Your Slack account is now linked to your casem account.")]

            return Plan(inst, token, link, on_error)
        who = await self.identity(inst, token, user)
        if verb == "new":
            key = f"slack:{inst.workspace_id}:{payload.get('trigger_id') or ''}"

            async def new(uow: UnitOfWork) -> list[Reply]:
                if not rest:
                    raise InvalidInput("give the case a title: `/case new <title>`", "/text")
                actor = await acting_user(uow, inst, who)
                project = await installations.channel_project(uow, inst, channel)
                if project is None:
                    raise InvalidInput("this channel has no project yet: `/case project <PROJECT KEY>`", "/text")
                case = await create_case(uow, inst.org_id, actor, NewCase(project, rest, intake_key=key[:255]))
                headline = (
                    f"<@{user}> opened *<{blocks.case_url(self.settings.app_url, case.key)}|{case.key}>* {case.title}"
                )
                card = blocks.case_card(case, self.settings.app_url, headline=headline)
                return [
                    Reply(
                        "message",
                        channel,
                        f"{case.key} opened: {case.title}",
                        blocks=card,
                        link_case=(inst.org_id, case.id, actor),
                    )
                ]

            return Plan(inst, token, new, on_error)
        if verb == "project":

            async def project(uow: UnitOfWork) -> list[Reply]:
                actor = await acting_user(uow, inst, who)
                await installations.set_channel_project(uow, inst, channel, rest, actor)
                return [ephemeral(f"New cases from this channel go to project {rest.upper()}.")]

            return Plan(inst, token, project, on_error)

        async def show(uow: UnitOfWork) -> list[Reply]:
            case = await get_case(uow, inst.org_id, words[0])
            return [ephemeral(f"{case.key}: {case.title}", blocks.case_card(case, self.settings.app_url, follow=True))]

        return Plan(inst, token, show, on_error)

    # -- buttons and selects --------------------------------------------------------------------------
    async def _block_action(self, inst: Installation, token: str, payload: dict[str, Any]) -> Plan | None:
        actions = payload.get("actions") or []
        if not actions:
            return None
        action = actions[0]
        action_id = str(action.get("action_id") or "")
        user = str((payload.get("user") or {}).get("id") or "")
        container = payload.get("container") or {}
        channel = str((payload.get("channel") or {}).get("id") or container.get("channel_id") or "")
        thread = str((payload.get("message") or {}).get("thread_ts") or container.get("thread_ts") or "")
        conversation = Conversation(SLACK, inst.workspace_id, channel, thread)

        def on_error(exc: Exception) -> list[Reply]:
            return [Reply("ephemeral", channel, error_text(exc), user=user)]

        who = await self.identity(inst, token, user)
        if action_id in BUTTON_ACTIONS:
            kind = BUTTON_ACTIONS[action_id]
            case_id = str(action.get("value") or "")

            async def act(uow: UnitOfWork) -> list[Reply]:
                actor = await acting_user(uow, inst, who)
                case = await service.perform_action(
                    uow, inst.org_id, actor, case_id, ChatAction(kind), conversation, user
                )
                return [Reply("ephemeral", channel, f"{case.key} {DONE_WORDS[kind]}.", user=user)]

            return Plan(inst, token, act, on_error)
        if action_id == blocks.FOLLOW:
            case_id = str(action.get("value") or "")

            async def follow(uow: UnitOfWork) -> list[Reply]:
                actor = await mapped_user(uow, inst, who)
                case = await get_case(uow, inst.org_id, case_id)
                card = blocks.case_card(case, self.settings.app_url)
                return [
                    Reply(
                        "message",
                        channel,
                        f"{case.key}: {case.title}",
                        blocks=card,
                        link_case=(inst.org_id, case.id, actor),
                    )
                ]

            return Plan(inst, token, follow, on_error)
        if action_id in (blocks.ADD_MESSAGE, blocks.ADD_THREAD):
            parts = str(action.get("block_id") or "").split(":")
            if len(parts) != 4 or parts[0] != blocks.PICKER_BLOCK_PREFIX:
                return None
            _, source_channel, message_ts, thread_ts = parts
            case_id = str((action.get("selected_option") or {}).get("value") or "")
            raw = await self.api.replies(token, source_channel, thread_ts or message_ts)
            if action_id == blocks.ADD_MESSAGE:
                raw = [m for m in raw if m.get("ts") == message_ts]
            messages = [await self.message_of(inst, token, source_channel, m) for m in raw]
            source = Conversation(SLACK, inst.workspace_id, source_channel, thread_ts)
            return Plan(inst, token, self._add(inst, who, case_id, source, messages, channel, user), on_error)
        return None

    def _add(
        self,
        inst: Installation,
        who: ChatIdentity,
        case_ref: str,
        source: Conversation,
        messages: list[ChatMessage],
        channel: str,
        user: str,
    ) -> Apply:
        async def add(uow: UnitOfWork) -> list[Reply]:
            author = await mapped_user(uow, inst, who)
            outcome = await service.append_excerpt(uow, inst.org_id, author, case_ref, source, messages)
            count = len(outcome.added)
            text = (
                f"Added {count} message{'s' if count != 1 else ''} to {outcome.case.key}."
                if count
                else f"Already on {outcome.case.key}: nothing added."
            )
            return [Reply("ephemeral", channel, text, user=user)]

        return add

    # -- message shortcut "Add to case" -------------------------------------------------------------------
    async def _shortcut(self, inst: Installation, token: str, payload: dict[str, Any]) -> Plan | None:
        if payload.get("callback_id") != blocks.SHORTCUT_CALLBACK:
            return None
        user = str((payload.get("user") or {}).get("id") or "")
        channel = str((payload.get("channel") or {}).get("id") or "")
        raw = payload.get("message") or {}
        message_ts = str(raw.get("ts") or payload.get("message_ts") or "")
        thread_ts = str(raw.get("thread_ts") or "")
        source = Conversation(SLACK, inst.workspace_id, channel, thread_ts)

        def on_error(exc: Exception) -> list[Reply]:
            return [Reply("ephemeral", channel, error_text(exc), user=user)]

        async with self.ctx.uow(read_only=True) as uow:
            links = await service.links_in(uow, inst.org_id, source)
        who = await self.identity(inst, token, user)
        if links:  # the conversation already mirrors a case: add it there
            message = await self.message_of(inst, token, channel, raw)
            return Plan(inst, token, self._add(inst, who, links[0].case_id, source, [message], channel, user), on_error)

        async def pick(uow: UnitOfWork) -> list[Reply]:
            found = await uow.scalars(
                sa.select(Case)
                .where(cases_table.c.org_id == inst.org_id, cases_table.c.status != Status.CLOSED.value)
                .order_by(cases_table.c.created_at.desc())
                .limit(100)
            )
            if not found:
                return [Reply("ephemeral", channel, "There is no open case to add this to.", user=user)]
            picker = blocks.case_picker(found, channel, message_ts, thread_ts)
            return [Reply("ephemeral", channel, "Add to case", user=user, blocks=picker)]

        return Plan(inst, token, pick, on_error)


def _name(info: dict[str, Any]) -> str:
    profile = info.get("profile") or {}
    return str(
        profile.get("display_name") or profile.get("real_name") or info.get("real_name") or info.get("name") or ""
    )


def _ts_time(ts: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(ts), UTC)
    except ValueError:
        return datetime.now(UTC)
