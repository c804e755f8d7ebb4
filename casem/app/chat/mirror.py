"""Mirroring a case into the chat conversations it is linked to: for each case event worth telling, one Slack
delivery per linked channel or thread (sent by the slack-delivery flavor with the workspace's bot token). An
event that came from a conversation is never posted back into it (casem/domain/chat.py, `mirror_line`).

Teams conversations are not posted to: sending into Teams needs the Bot Connector API, which casem does not
call yet; a linked Teams conversation still brings its messages in.
"""

from __future__ import annotations

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.chat.service import links_of_case
from casem.app.events import Event
from casem.domain.chat import MIRRORED_EVENTS, SLACK, mirror_line
from casem.domain.notifications import SLACK as SLACK_CHANNEL
from casem.domain.notifications import Delivery


async def mirror_deliveries(uow: UnitOfWork, event: Event, case_key: str) -> list[Delivery]:
    if event.case_id is None or event.type not in MIRRORED_EVENTS:
        return []
    deliveries = []
    for link in await links_of_case(uow, event.org_id, event.case_id):
        if link.platform != SLACK:
            continue
        line = mirror_line(event.type, event.data, case_key, link.conversation)
        if line is None:
            continue
        target = {"channel": link.channel_id, "workspace_id": link.workspace_id}
        if link.thread_id:
            target["thread_ts"] = link.thread_id
        deliveries.append(
            Delivery.request(
                org_id=event.org_id,
                rule_id=None,
                source_event_id=event.id,
                case_id=event.case_id,
                channel=SLACK_CHANNEL,
                target=target,
                payload={
                    "text": line,
                    "metadata": {"event_type": "casem_case_event", "event_payload": {"event_id": event.id}},
                },
            )
        )
    return deliveries
