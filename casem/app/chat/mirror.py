"""Mirroring a case into the chat conversations it is linked to: for each case event worth telling, one delivery
per linked channel or thread. An event that came from a conversation is never posted back into it
(casem/domain/chat.py, `mirror_line`).

- Slack: a `slack` delivery (its text), sent by the slack-delivery flavor with the workspace's bot token.
- Teams: an `msteams` delivery whose target names the tenant (`workspace_id`), the conversation
  (`conversation_id`) and the thread (`thread_id`, when linked to one); its payload is a message activity with an
  Adaptive Card holding the case's buttons, sent by the msteams-delivery flavor through the Bot Connector API.
"""

from __future__ import annotations

from typing import Any

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.chat.service import links_of_case
from casem.app.events import Event
from casem.domain.chat import MIRRORED_EVENTS, SLACK, TEAMS, ChatLink, mirror_line, teams_case_activity
from casem.domain.notifications import MSTEAMS, Delivery
from casem.domain.notifications import SLACK as SLACK_CHANNEL


def _slack(link: ChatLink, line: str, event: Event) -> tuple[str, dict[str, Any], dict[str, Any]]:
    target = {"channel": link.channel_id, "workspace_id": link.workspace_id}
    if link.thread_id:
        target["thread_ts"] = link.thread_id
    payload = {"text": line, "metadata": {"event_type": "casem_case_event", "event_payload": {"event_id": event.id}}}
    return SLACK_CHANNEL, target, payload


def _teams(link: ChatLink, line: str, case_id: str, case_key: str, case_url: str) -> tuple[str, dict, dict]:
    target = {"workspace_id": link.workspace_id, "conversation_id": link.channel_id}
    if link.thread_id:
        target["thread_id"] = link.thread_id
    return MSTEAMS, target, teams_case_activity(line, case_id, case_key, case_url)


async def mirror_deliveries(uow: UnitOfWork, event: Event, case_key: str, case_url: str) -> list[Delivery]:
    """The deliveries that tell the case's linked conversations about the event (`case_url` links to the case)."""
    if event.case_id is None or event.type not in MIRRORED_EVENTS:
        return []
    deliveries = []
    for link in await links_of_case(uow, event.org_id, event.case_id):
        if link.platform == SLACK:
            line = mirror_line(event.type, event.data, case_key, link.conversation)
            if line is None:
                continue
            channel, target, payload = _slack(link, line, event)
        elif link.platform == TEAMS:
            line = mirror_line(event.type, event.data, case_key, link.conversation, bold="**")
            if line is None:
                continue
            channel, target, payload = _teams(link, line, event.case_id, case_key, case_url)
        else:
            continue
        deliveries.append(
            Delivery.request(
                org_id=event.org_id,
                rule_id=None,
                source_event_id=event.id,
                case_id=event.case_id,
                channel=channel,
                target=target,
                payload=payload,
            )
        )
    return deliveries
