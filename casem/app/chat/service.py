"""Excerpts, links and actions: what a chat bridge does to a case, through the domain objects, so every change
records its events (timeline, outbox, search index, audit) like any other change."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

from casem.adapters.storage.tables import chat_excerpt_messages, chat_links
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases import updates
from casem.app.cases.service import get_case
from casem.app.timeline.service import add_comment
from casem.domain.cases import Case, Status
from casem.domain.chat import (
    ACKNOWLEDGE,
    ASSIGN_TO_ME,
    CLOSE,
    COMMENT,
    SET_PRIORITY,
    SET_STATUS,
    ChatAction,
    ChatLink,
    ChatMessage,
    Conversation,
    excerpt_cell,
    record_chat_action,
    validate_messages,
)
from casem.domain.timeline import TimelineCell


@dataclass
class ExcerptOutcome:
    case: Case
    cell: TimelineCell | None  # None: every message was already on the case
    added: list[str] = field(default_factory=list)
    already_there: list[str] = field(default_factory=list)


async def messages_on_case(uow: UnitOfWork, case_id: str, conversation: Conversation, ids: list[str]) -> set[str]:
    rows = await uow.execute(
        sa.select(chat_excerpt_messages.c.message_id).where(
            chat_excerpt_messages.c.case_id == case_id,
            chat_excerpt_messages.c.platform == conversation.platform,
            chat_excerpt_messages.c.workspace_id == conversation.workspace_id,
            chat_excerpt_messages.c.channel_id == conversation.channel_id,
            chat_excerpt_messages.c.message_id.in_(ids),
        )
    )
    return {r.message_id for r in rows}


async def append_excerpt(
    uow: UnitOfWork,
    org_id: str,
    actor_id: str | None,
    case_ref: str,
    conversation: Conversation,
    messages: list[ChatMessage],
) -> ExcerptOutcome:
    """Add the messages to the case's timeline as one CHAT_EXCERPT cell. A message already on the case (however it
    came: a retried event, the shortcut used twice, a mirrored thread) is not added again; when none is new,
    nothing is recorded. Another org's case is NotFound."""
    case = await get_case(uow, org_id, case_ref)
    kept = validate_messages(messages)
    present = await messages_on_case(uow, case.id, conversation, [m.message_id for m in kept])
    new = [m for m in kept if m.message_id not in present]
    outcome = ExcerptOutcome(case=case, cell=None, already_there=sorted(present))
    if not new:
        return outcome
    cell = excerpt_cell(case, conversation, new, actor_id)
    uow.add(cell)
    now = datetime.now(UTC)
    await uow.session.execute(
        sa.insert(chat_excerpt_messages),
        [
            {
                "case_id": case.id,
                "platform": conversation.platform,
                "workspace_id": conversation.workspace_id,
                "channel_id": conversation.channel_id,
                "message_id": m.message_id,
                "org_id": org_id,
                "cell_id": cell.id,
                "created_at": now,
            }
            for m in new
        ],
    )
    outcome.cell = cell
    outcome.added = [m.message_id for m in new]
    return outcome


async def link_case(
    uow: UnitOfWork, org_id: str, actor_id: str | None, case_ref: str, conversation: Conversation
) -> tuple[ChatLink, bool]:
    """Link the case to the conversation (idempotent: an existing link is returned, with False)."""
    case = await get_case(uow, org_id, case_ref)
    existing = await uow.scalar(
        sa.select(ChatLink).where(
            chat_links.c.case_id == case.id,
            chat_links.c.platform == conversation.platform,
            chat_links.c.workspace_id == conversation.workspace_id,
            chat_links.c.channel_id == conversation.channel_id,
            chat_links.c.thread_id == conversation.thread_id,
        )
    )
    if existing is not None:
        return existing, False
    link = ChatLink.create(case, conversation, actor_id)
    uow.add(link)
    return link, True


async def links_in(uow: UnitOfWork, org_id: str, conversation: Conversation) -> list[ChatLink]:
    """The org's cases that mirror this conversation: links to its channel, and to its thread if it is one."""
    threads = [""] if not conversation.thread_id else ["", conversation.thread_id]
    return await uow.scalars(
        sa.select(ChatLink)
        .where(
            chat_links.c.org_id == org_id,
            chat_links.c.platform == conversation.platform,
            chat_links.c.workspace_id == conversation.workspace_id,
            chat_links.c.channel_id == conversation.channel_id,
            chat_links.c.thread_id.in_(threads),
        )
        .order_by(chat_links.c.created_at, chat_links.c.id)
    )


async def links_of_case(uow: UnitOfWork, org_id: str, case_id: str) -> list[ChatLink]:
    return await uow.scalars(
        sa.select(ChatLink)
        .where(chat_links.c.org_id == org_id, chat_links.c.case_id == case_id)
        .order_by(chat_links.c.created_at, chat_links.c.id)
    )


async def perform_action(
    uow: UnitOfWork,
    org_id: str,
    actor_id: str,
    case_ref: str,
    action: ChatAction,
    conversation: Conversation,
    chat_user_id: str,
) -> Case:
    """Act on the case as the casem user the chat user maps to, through the same use cases as the API; records
    `case.chat_action` beside the change's own event(s)."""
    case = await get_case(uow, org_id, case_ref)
    if action.kind == ACKNOWLEDGE:
        if case.status == Status.OPEN:
            case = await updates.transition(uow, org_id, actor_id, case.id, Status.IN_PROGRESS.value)
    elif action.kind == ASSIGN_TO_ME:
        case = await updates.assign(uow, org_id, actor_id, case.id, actor_id)
    elif action.kind == CLOSE:
        case = await updates.transition(uow, org_id, actor_id, case.id, Status.CLOSED.value)
    elif action.kind == SET_STATUS:
        case = await updates.transition(uow, org_id, actor_id, case.id, action.value)
    elif action.kind == SET_PRIORITY:
        case = await updates.prioritize(uow, org_id, actor_id, case.id, action.value)
    elif action.kind == COMMENT:
        await add_comment(uow, org_id, actor_id, case.id, action.value)
    record_chat_action(case, action, actor_id, conversation, chat_user_id)
    return case
