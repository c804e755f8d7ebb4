"""Block Kit layouts the Slack bridge sends: the case card with its buttons, the "Add to case" picker. The
notification buttons (casem_acknowledge, casem_assign_to_me, casem_close) carry the case id as their value,
as casem's Slack notifications do (casem/domain/notifications.py)."""

from __future__ import annotations

from typing import Any

from casem.domain.cases import Case

ACKNOWLEDGE = "casem_acknowledge"
ASSIGN_TO_ME = "casem_assign_to_me"
CLOSE = "casem_close"
FOLLOW = "casem_follow"
ADD_MESSAGE = "casem_add_message"
ADD_THREAD = "casem_add_thread"
SHORTCUT_CALLBACK = "add_to_case"
PICKER_BLOCK_PREFIX = "casem_pick"


def case_url(app_url: str, key: str) -> str:
    return f"{app_url.rstrip('/')}/cases/{key}"


def case_buttons(case: Case, *, follow: bool = False) -> dict[str, Any]:
    buttons = [
        {"type": "button", "action_id": ACKNOWLEDGE, "text": {"type": "plain_text", "text": "Acknowledge"}},
        {"type": "button", "action_id": ASSIGN_TO_ME, "text": {"type": "plain_text", "text": "Assign to me"}},
        {
            "type": "button",
            "action_id": CLOSE,
            "style": "danger",
            "text": {"type": "plain_text", "text": "Close"},
        },
    ]
    if follow:
        buttons.append(
            {"type": "button", "action_id": FOLLOW, "text": {"type": "plain_text", "text": "Follow in this channel"}}
        )
    for button in buttons:
        button["value"] = case.id
    return {"type": "actions", "block_id": f"casem_case:{case.id}", "elements": buttons}


def case_card(case: Case, app_url: str, *, follow: bool = False, headline: str | None = None) -> list[dict[str, Any]]:
    url = case_url(app_url, case.key)
    title = headline or f"*<{url}|{case.key}>* {case.title}"
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": title}},
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": f"Status: {case.status} · Priority: {case.priority}"}],
        },
        case_buttons(case, follow=follow),
    ]


def case_picker(cases: list[Case], channel: str, message_ts: str, thread_ts: str) -> list[dict[str, Any]]:
    """The ephemeral "Add to case" picker: a case select for the message and, in a thread, one for the thread.

    The message it is about travels in the block id (`casem_pick:<channel>:<ts>:<thread_ts>`): the select's
    own payload only says where the ephemeral message is."""
    options = [{"text": {"type": "plain_text", "text": f"{c.key} {c.title}"[:75]}, "value": c.id} for c in cases[:100]]
    block_id = f"{PICKER_BLOCK_PREFIX}:{channel}:{message_ts}:{thread_ts}"
    elements = [
        {
            "type": "static_select",
            "action_id": ADD_MESSAGE,
            "placeholder": {"type": "plain_text", "text": "Add this message to…"},
            "options": options,
        }
    ]
    if thread_ts:
        elements.append(
            {
                "type": "static_select",
                "action_id": ADD_THREAD,
                "placeholder": {"type": "plain_text", "text": "…or the whole thread to…"},
                "options": options,
            }
        )
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Which case should this go to?"}},
        {"type": "actions", "block_id": block_id, "elements": elements},
    ]


USAGE = (
    "`/case new <title>` opens a case in this channel's project · `/case <KEY>` shows a case · "
    "`/case project <PROJECT KEY>` sets this channel's project · `/case link <CODE>` links your casem account"
)
