"""Reconciliation: read what changed remotely since the last poll, so nothing depends on every webhook arriving.

Per account, the poller asks for the linked issues changed since its watermark (Jira: JQL `updated >= "…"`
with their changelogs and comments; ServiceNow: `sys_updated_on>=…` through the Table API, and the journal's
new comments), turns each change into the same `RemoteEvent` a webhook would have produced (same id), and
the connector ingress publishes them. Polls overlap by `OVERLAP` (JQL dates have minute precision, clocks
drift); the reader applies an id once, so overlap costs nothing but a skipped duplicate. The watermark moves
only after everything read was published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from casem.adapters.integrations import RemoteError
from casem.adapters.storage.tables import integration_accounts, integration_poll_state, remote_links
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.integrations.ingress import (
    jira_changes,
    jira_comment,
    jira_time,
    jira_user,
    servicenow_changes,
    servicenow_time,
)
from casem.app.integrations.remote_events import RemoteEvent
from casem.app.integrations.remotes import RemoteSystems
from casem.domain.integrations import JIRA, SERVICENOW, IntegrationAccount, LinkStatus

OVERLAP = timedelta(minutes=2)
JIRA_FIELDS = ["summary", "description", "status", "priority", "assignee", "duedate", "comment", "updated"]
INCIDENT_FIELDS = [
    "sys_id",
    "number",
    "sys_mod_count",
    "sys_updated_on",
    "sys_updated_by",
    "state",
    "priority",
    "short_description",
    "description",
    "assigned_to.email",
]
BATCH = 50  # linked issues per query


@dataclass
class Poll:
    account: IntegrationAccount
    since: datetime
    started: datetime
    events: list[RemoteEvent]


async def accounts_to_poll(uow: UnitOfWork) -> list[IntegrationAccount]:
    return await uow.scalars(
        sa.select(IntegrationAccount)
        .where(integration_accounts.c.deleted_at.is_(None))
        .order_by(integration_accounts.c.created_at)
    )


async def watermark(uow: UnitOfWork, account_id: str) -> datetime | None:
    return await uow.scalar(
        sa.select(integration_poll_state.c.watermark).where(integration_poll_state.c.account_id == account_id)
    )


async def save_watermark(uow: UnitOfWork, account_id: str, mark: datetime) -> None:
    now = datetime.now(UTC)
    updated = await uow.execute(
        sa.update(integration_poll_state)
        .where(integration_poll_state.c.account_id == account_id)
        .values(watermark=mark, polled_at=now)
    )
    if updated.rowcount == 0:
        await uow.execute(
            sa.insert(integration_poll_state).values(account_id=account_id, watermark=mark, polled_at=now)
        )


async def linked_issues(uow: UnitOfWork, account_id: str) -> dict[str, str]:
    """The account's linked remote issues: remote id -> key."""
    rows = await uow.execute(
        sa.select(remote_links.c.remote_id, remote_links.c.remote_key).where(
            remote_links.c.account_id == account_id, remote_links.c.status == LinkStatus.COMPLETED.value
        )
    )
    return {r.remote_id: r.remote_key for r in rows if r.remote_id}


async def poll_account(
    remotes: RemoteSystems, account: IntegrationAccount, tenant: str, since: datetime, linked: dict[str, str]
) -> Poll:
    """Everything that changed on the account's linked issues since `since` (minus the overlap)."""
    started = datetime.now(UTC)
    events: list[RemoteEvent] = []
    if linked:
        if account.system == JIRA:
            events = await _poll_jira(remotes, account, tenant, since - OVERLAP, linked)
        else:
            events = await _poll_servicenow(remotes, account, tenant, since - OVERLAP, linked)
    events.sort(key=lambda e: (e.issue_id, e.occurred_at, e.id))
    return Poll(account, since, started, events)


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]


async def _poll_jira(
    remotes: RemoteSystems, account: IntegrationAccount, tenant: str, since: datetime, linked: dict[str, str]
) -> list[RemoteEvent]:
    events: list[RemoteEvent] = []
    prefix = f"{JIRA}:{account.id}"
    async with remotes.jira(account) as client:
        for keys in _chunks(sorted(linked.values())):
            jql = f'updated >= "{since:%Y/%m/%d %H:%M}" AND key in ({", ".join(keys)}) ORDER BY updated ASC'
            async for issue in client.search(jql, JIRA_FIELDS, expand="changelog"):
                if str(issue.get("id")) not in linked:
                    continue
                base = {
                    "system": JIRA,
                    "tenant": tenant,
                    "org_id": account.org_id,
                    "account_id": account.id,
                    "issue_id": str(issue["id"]),
                    "issue_key": str(issue["key"]),
                    "source": "poll",
                }
                fields = issue.get("fields") or {}
                for history in (issue.get("changelog") or {}).get("histories") or []:
                    when = jira_time(history.get("created"))
                    if when < since:
                        continue
                    changes = jira_changes(history.get("items") or [], fields)
                    events.append(
                        RemoteEvent(
                            id=f"{prefix}:changelog:{history['id']}",
                            kind="issue_updated",
                            occurred_at=when,
                            actor=jira_user(history.get("author")),
                            changes=changes,
                            **base,
                        )
                    )
                for raw in (fields.get("comment") or {}).get("comments") or []:
                    comment = jira_comment(raw)
                    created = jira_time(comment["created"])
                    updated = jira_time(comment["updated"]) if comment.get("updated") else created
                    if created >= since:
                        events.append(
                            RemoteEvent(
                                id=f"{prefix}:comment:{comment['id']}:created",
                                kind="comment_created",
                                occurred_at=created,
                                actor=comment["author"],
                                comment=comment,
                                **base,
                            )
                        )
                    if updated >= since and comment.get("updated") != comment.get("created"):
                        events.append(
                            RemoteEvent(
                                id=f"{prefix}:comment:{comment['id']}:updated:{comment['updated']}",
                                kind="comment_updated",
                                occurred_at=updated,
                                actor=jira_user(raw.get("updateAuthor")) or comment["author"],
                                comment=comment,
                                **base,
                            )
                        )
    return events


async def _poll_servicenow(
    remotes: RemoteSystems, account: IntegrationAccount, tenant: str, since: datetime, linked: dict[str, str]
) -> list[RemoteEvent]:
    events: list[RemoteEvent] = []
    prefix = f"{SERVICENOW}:{account.id}"
    mark = since.strftime("%Y-%m-%d %H:%M:%S")
    async with remotes.servicenow(account) as client:
        for ids in _chunks(sorted(linked)):
            query = f"sys_idIN{','.join(ids)}^sys_updated_on>={mark}^ORDERBYsys_updated_on"
            async for record in client.query("incident", query, INCIDENT_FIELDS):
                sys_id = str(record.get("sys_id"))
                events.append(
                    RemoteEvent(
                        id=f"{prefix}:incident:{sys_id}:mod:{record.get('sys_mod_count')}",
                        kind="issue_updated",
                        system=SERVICENOW,
                        tenant=tenant,
                        org_id=account.org_id,
                        account_id=account.id,
                        issue_id=sys_id,
                        issue_key=str(record.get("number") or linked.get(sys_id) or sys_id),
                        occurred_at=servicenow_time(record.get("sys_updated_on")),
                        source="poll",
                        actor={"id": None, "name": record.get("sys_updated_by"), "email": None},
                        changes=servicenow_changes(record),
                    )
                )
            journal_query = f"element_idIN{','.join(ids)}^element=comments^sys_created_on>={mark}^ORDERBYsys_created_on"
            fields = ["sys_id", "element_id", "value", "sys_created_by", "sys_created_on"]
            async for entry in client.query("sys_journal_field", journal_query, fields):
                author = {"id": None, "name": entry.get("sys_created_by"), "email": None}
                sys_id = str(entry.get("element_id"))
                events.append(
                    RemoteEvent(
                        id=f"{prefix}:journal:{entry['sys_id']}",
                        kind="comment_created",
                        system=SERVICENOW,
                        tenant=tenant,
                        org_id=account.org_id,
                        account_id=account.id,
                        issue_id=sys_id,
                        issue_key=linked.get(sys_id) or sys_id,
                        occurred_at=servicenow_time(entry.get("sys_created_on")),
                        source="poll",
                        actor=author,
                        comment={
                            "id": str(entry["sys_id"]),
                            "body": str(entry.get("value") or ""),
                            "author": author,
                            "created": entry.get("sys_created_on"),
                            "updated": entry.get("sys_created_on"),
                        },
                    )
                )
    return events


__all__ = [
    "OVERLAP",
    "Poll",
    "RemoteError",
    "accounts_to_poll",
    "linked_issues",
    "poll_account",
    "save_watermark",
    "watermark",
]
