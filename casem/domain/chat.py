"""Chat interactions: conversation excerpts on case timelines, cases linked to chat conversations, case
actions taken from chat, and the pure rules around them (excerpt formatting, what a linked conversation
is told, the chat automation triggers). Pure Python: the Slack and Teams bridges only translate.

Events recorded here (all about a case, so they reach the timeline, outbox, search index and audit):
- `case.chat_excerpt_added`: a CHAT_EXCERPT timeline cell (TimelineCell.chat_excerpt);
- `case.chat_linked`: the case now mirrors a channel or a thread (a CHAT_LINK change cell);
- `case.chat_action`: a chat user acted on the case (the change itself records its own event); no cell.

Echo guard: an excerpt event carries the conversation it came from, and `mirror_line` never returns a line
for an event that came from the very conversation it would be posted to; the bridges drop messages their
own bot posted. Together a thread reply and casem's post about it cannot loop.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from casem.domain.cases import Case, Priority, Status, parse_enum
from casem.domain.errors import InvalidInput
from casem.domain.events import DomainEvent, EventRecorder, utcnow
from casem.domain.timeline import COMMENT_MAX, TimelineCell

SLACK, TEAMS = "slack", "teams"
PLATFORMS = (SLACK, TEAMS)

EXCERPT_ADDED = "case.chat_excerpt_added"
CHAT_LINKED = "case.chat_linked"
CHAT_ACTION = "case.chat_action"
CHAT_EXCERPT = "CHAT_EXCERPT"  # the timeline cell type of an excerpt

# What a chat user can do to a case.
ACKNOWLEDGE = "ACKNOWLEDGE"  # OPEN -> IN_PROGRESS (someone is on it); no change otherwise
ASSIGN_TO_ME = "ASSIGN_TO_ME"
CLOSE = "CLOSE"
SET_STATUS = "SET_STATUS"
SET_PRIORITY = "SET_PRIORITY"
COMMENT = "COMMENT"
ACTIONS = (ACKNOWLEDGE, ASSIGN_TO_ME, CLOSE, SET_STATUS, SET_PRIORITY, COMMENT)

MAX_MESSAGES = 500
ID_MAX = 255
AUTHOR_MAX = 255
PERMALINK_MAX = 2048
KEYWORD_MAX = 100
EXCERPT_TEXT_MAX = 200_000  # all messages of one excerpt together


def _text(value: Any, pointer: str, *, required: bool = True, limit: int = ID_MAX) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput("must be a string", pointer)
    value = value.strip()
    if required and not value:
        raise InvalidInput("is required", pointer)
    if len(value) > limit:
        raise InvalidInput(f"is {len(value)} characters long; the limit is {limit}", pointer)
    return value


def validate_platform(platform: Any, pointer: str = "/platform") -> str:
    if platform not in PLATFORMS:
        raise InvalidInput(f"platform must be one of {', '.join(PLATFORMS)}", pointer)
    return str(platform)


@dataclass(frozen=True)
class Conversation:
    """Where messages were said: a channel of a workspace (Slack team, Teams tenant), optionally one thread."""

    platform: str
    workspace_id: str
    channel_id: str
    thread_id: str = ""  # "" = the channel itself

    @classmethod
    def of(
        cls, platform: Any, workspace_id: Any, channel_id: Any, thread_id: Any = "", pointer: str = ""
    ) -> Conversation:
        return cls(
            platform=validate_platform(platform, f"{pointer}/platform"),
            workspace_id=_text(workspace_id, f"{pointer}/workspace_id"),
            channel_id=_text(channel_id, f"{pointer}/channel_id"),
            thread_id=_text(thread_id, f"{pointer}/thread_id", required=False),
        )

    def as_dict(self) -> dict[str, str]:
        return {
            "platform": self.platform,
            "workspace_id": self.workspace_id,
            "channel_id": self.channel_id,
            "thread_id": self.thread_id,
        }

    def contains(self, other: Conversation) -> bool:
        """Whether `other` is this conversation, or a thread of this channel."""
        same_channel = (self.platform, self.workspace_id, self.channel_id) == (
            other.platform,
            other.workspace_id,
            other.channel_id,
        )
        return same_channel and (not self.thread_id or self.thread_id == other.thread_id)


@dataclass(frozen=True)
class ChatMessage:
    """One chat message as an excerpt keeps it."""

    message_id: str  # Slack: the message ts; Teams: the message id
    author_id: str  # the chat user id
    author_name: str
    text: str
    sent_at: datetime
    permalink: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "message_id": self.message_id,
            "author_id": self.author_id,
            "author_name": self.author_name,
            "text": self.text,
            "sent_at": self.sent_at.isoformat(),
            "permalink": self.permalink,
        }


def chat_message(
    *, message_id: Any, author_id: Any, author_name: Any, text: Any, sent_at: datetime, permalink: Any, pointer: str
) -> ChatMessage:
    """A validated message; `pointer` names it in the request (e.g. `/messages/3`)."""
    link = _text(permalink, f"{pointer}/permalink", required=False, limit=PERMALINK_MAX)
    if link and not link.startswith(("https://", "http://")):
        raise InvalidInput("permalink must be an http(s) URL", f"{pointer}/permalink")
    body = text if isinstance(text, str) else None
    if body is None:
        raise InvalidInput("must be a string", f"{pointer}/text")
    if len(body) > COMMENT_MAX:
        raise InvalidInput(f"is {len(body)} characters long; the limit is {COMMENT_MAX}", f"{pointer}/text")
    return ChatMessage(
        message_id=_text(message_id, f"{pointer}/message_id"),
        author_id=_text(author_id, f"{pointer}/author_id", required=False),
        author_name=_text(author_name, f"{pointer}/author_name", required=False, limit=AUTHOR_MAX),
        text=body,
        sent_at=sent_at if sent_at.tzinfo else sent_at.replace(tzinfo=UTC),
        permalink=link,
    )


def validate_messages(messages: list[ChatMessage], pointer: str = "/messages") -> list[ChatMessage]:
    """Non-empty, at most MAX_MESSAGES, in the order they were said, each message once."""
    if not messages:
        raise InvalidInput("an excerpt needs at least one message", pointer)
    if len(messages) > MAX_MESSAGES:
        raise InvalidInput(f"an excerpt holds at most {MAX_MESSAGES} messages", pointer)
    if sum(len(m.text) for m in messages) > EXCERPT_TEXT_MAX:
        raise InvalidInput(f"an excerpt's messages hold at most {EXCERPT_TEXT_MAX} characters of text", pointer)
    unique = {m.message_id: m for m in messages}
    return sorted(unique.values(), key=lambda m: (m.sent_at, m.message_id))


def format_excerpt(conversation: Conversation, messages: list[ChatMessage]) -> str:
    """The excerpt as one Markdown text (what search indexes and the timeline shows), within COMMENT_MAX.

    One quoted block per message: author and time, the text, a link to the message. A text too long for
    the cell is cut with a note; the full messages stay in the cell's `messages`.
    """
    where = {SLACK: "Slack", TEAMS: "Teams"}[conversation.platform]
    header = f"Chat excerpt from {where} ({len(messages)} message{'s' if len(messages) != 1 else ''})"
    parts = [header]
    for m in messages:
        who = m.author_name or m.author_id or "unknown"
        when = m.sent_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        quoted = "\n".join(f"> {line}" for line in (m.text or "(no text)").splitlines() or [""])
        link = f"\n[view message]({m.permalink})" if m.permalink else ""
        parts.append(f"**{who}** · {when}\n{quoted}{link}")
    text = "\n\n".join(parts)
    if len(text) > COMMENT_MAX:
        note = "\n\n… (excerpt truncated; every message is kept in the cell)"
        text = text[: COMMENT_MAX - len(note)] + note
    return text


_WORD = re.compile(r"\w+", re.UNICODE)


def validate_keyword(keyword: Any, pointer: str) -> str:
    value = _text(keyword, pointer, limit=KEYWORD_MAX)
    if not _WORD.search(value):
        raise InvalidInput("a keyword needs at least one letter or digit", pointer)
    return value


def mentions(text: str, keyword: str) -> bool:
    """Whether the text says the keyword as a whole word or phrase, ignoring case ("sev" in "SEV-1", not in
    "several")."""
    pattern = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in keyword.split()) + r"(?!\w)"
    return re.search(pattern, text, re.IGNORECASE) is not None


def excerpt_event_data(
    cell_id: str, case: Case, conversation: Conversation, messages: list[ChatMessage], text: str
) -> dict[str, Any]:
    return {
        "cell_id": cell_id,
        "message": text,
        # What was said, without authors or links: keyword triggers look here.
        "said": "\n".join(m.text for m in messages)[:COMMENT_MAX],
        "conversation": conversation.as_dict(),
        "message_ids": [m.message_id for m in messages],
        "authors": sorted({m.author_id for m in messages if m.author_id}),
        # The case as it was when the excerpt arrived: automation triggers narrow on it.
        "case_status": case.status,
        "key": case.key,
        "project_id": case.project_id,
    }


def excerpt_cell(
    case: Case, conversation: Conversation, messages: list[ChatMessage], author_id: str | None
) -> TimelineCell:
    """A CHAT_EXCERPT timeline cell on the case, recording `case.chat_excerpt_added`. `author_id` is the casem
    user the excerpt's sender maps to (None when unmapped: the chat authors stay in the content)."""
    kept = validate_messages(messages)
    text = format_excerpt(conversation, kept)
    cell = TimelineCell(
        id=str(uuid.uuid4()),
        org_id=case.org_id,
        case_id=case.id,
        type=CHAT_EXCERPT,
        content={"message": text, "conversation": conversation.as_dict(), "messages": [m.as_dict() for m in kept]},
        author_id=author_id,
    )
    cell.record(
        DomainEvent(
            type=EXCERPT_ADDED,
            org_id=case.org_id,
            actor_id=author_id,
            subject_id=case.id,
            case_id=case.id,
            time=cell.created_at,
            data=excerpt_event_data(cell.id, case, conversation, kept, text),
        )
    )
    return cell


# -- links ---------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class ChatLink(EventRecorder):
    """A case mirrors a channel or a thread: messages said there become excerpts, casem's changes go there."""

    id: str
    org_id: str
    case_id: str
    platform: str
    workspace_id: str
    channel_id: str
    thread_id: str
    created_by_id: str | None
    created_at: datetime = field(default_factory=utcnow)

    @property
    def conversation(self) -> Conversation:
        return Conversation(self.platform, self.workspace_id, self.channel_id, self.thread_id)

    @classmethod
    def create(cls, case: Case, conversation: Conversation, actor_id: str | None) -> ChatLink:
        link = cls(
            id=str(uuid.uuid4()),
            org_id=case.org_id,
            case_id=case.id,
            created_by_id=actor_id,
            **conversation.as_dict(),
        )
        where = "thread" if conversation.thread_id else "channel"
        case.record_fact(
            CHAT_LINKED,
            actor_id,
            {"link_id": link.id, "conversation": conversation.as_dict(), "message": f"linked to a chat {where}"},
        )
        return link


# -- actions -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatAction:
    kind: str
    value: str = ""  # the status, the priority or the comment


def validate_action(kind: Any, value: Any, pointer: str = "/action") -> ChatAction:
    if kind not in ACTIONS:
        raise InvalidInput(f"action must be one of {', '.join(ACTIONS)}", pointer)
    text = value if isinstance(value, str) else ""
    if kind == SET_STATUS:
        return ChatAction(kind, parse_enum(Status, text.strip().upper(), f"{pointer}/value").value)
    if kind == SET_PRIORITY:
        return ChatAction(kind, parse_enum(Priority, text.strip().upper(), f"{pointer}/value").value)
    if kind == COMMENT:
        if not text.strip():
            raise InvalidInput("a COMMENT action needs the comment in value", f"{pointer}/value")
        return ChatAction(kind, text)
    return ChatAction(kind)


def record_chat_action(
    case: Case, action: ChatAction, actor_id: str, conversation: Conversation, chat_user_id: str
) -> DomainEvent:
    """That a chat user acted on the case (the change records its own event; this one says it came from chat)."""
    return case.record_fact(
        CHAT_ACTION,
        actor_id,
        {
            "action": action.kind,
            "value": action.value if action.kind != COMMENT else "",
            "conversation": conversation.as_dict(),
            "chat_user_id": chat_user_id,
        },
    )


# -- mirroring into linked conversations ---------------------------------------------------------------------

_MIRRORED = {
    "case.status_changed": "status → {new}",
    "case.priority_changed": "priority → {new}",
    "case.assigned": "assigned",
    "case.unassigned": "unassigned",
    "case.title_changed": "title → {new}",
    "case.comment_added": "comment: {message}",
    EXCERPT_ADDED: "chat excerpt added from another conversation",
    "case.merged": "{message}",
    "case.sla_breached": "{summary}",
}
_MAIN = {"case.status_changed": "status", "case.priority_changed": "priority", "case.title_changed": "title"}
MIRRORED_EVENTS = frozenset(_MIRRORED)


def came_from(data: dict[str, Any]) -> Conversation | None:
    raw = data.get("conversation")
    if not isinstance(raw, dict):
        return None
    try:
        return Conversation(raw["platform"], raw["workspace_id"], raw["channel_id"], raw.get("thread_id") or "")
    except KeyError:
        return None


def mirror_line(
    event_type: str, data: dict[str, Any], key: str, linked: Conversation, *, bold: str = "*"
) -> str | None:
    """The line casem posts into a linked conversation for one case event, or None (not mirrored; or the event
    came from that very conversation, which must not be echoed back). `bold` marks the case key: `*` in Slack's
    mrkdwn, `**` in Teams' Markdown."""
    template = _MIRRORED.get(event_type)
    if template is None:
        return None
    origin = came_from(data)
    if origin is not None and (linked.contains(origin) or origin.contains(linked)):
        return None
    change = (data.get("changes") or {}).get(_MAIN.get(event_type, ""), {})
    message = str(data.get("message") or "")
    if len(message) > 500:
        message = message[:500] + "…"
    body = template.format(new=change.get("new") or "none", message=message, summary=data.get("summary") or "")
    return f"{bold}{key}{bold} {body}"


# -- cards casem posts into Teams ----------------------------------------------------------------------------

# The Adaptive Card universal action verbs of casem's Teams buttons (the Teams bridge acts on them).
TEAMS_VERBS = {"acknowledge": ACKNOWLEDGE, "assign_to_me": ASSIGN_TO_ME, "close": CLOSE}
_TEAMS_BUTTONS = (("acknowledge", "Acknowledge"), ("assign_to_me", "Assign to me"), ("close", "Close"))
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"


def teams_case_activity(line: str, case_id: str, case_key: str, case_url: str) -> dict[str, Any]:
    """A Bot Framework message activity carrying an Adaptive Card (1.4): the line, the case's buttons as universal
    actions (Action.Execute, data `caseId`; no `refresh`, so the card is not re-rendered per viewer) and a link to
    the case. `summary` is what clients that cannot show cards (and notifications) display."""
    actions: list[dict[str, Any]] = [
        {"type": "Action.Execute", "title": title, "verb": verb, "data": {"caseId": case_id}}
        for verb, title in _TEAMS_BUTTONS
    ]
    actions.append({"type": "Action.OpenUrl", "title": f"Open {case_key}", "url": case_url})
    card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [{"type": "TextBlock", "text": line, "wrap": True}],
        "actions": actions,
    }
    return {"type": "message", "summary": line, "attachments": [{"contentType": ADAPTIVE_CARD, "content": card}]}
