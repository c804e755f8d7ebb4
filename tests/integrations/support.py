"""Set-ups shared by the sync, reader and round-trip suites: an org with a project connected to loopback Jira and
ServiceNow through the use cases, and a driver feeding the outbox to a flavor runner in sequence."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from casem.adapters.bus import Message
from casem.adapters.storage.tables import timeline_cells
from casem.app.cases.service import NewCase, create_case
from casem.app.context import AppContext
from casem.app.identity.service import BootstrapCredentials, bootstrap_org
from casem.app.integrations import accounts
from casem.app.integrations.remotes import RemoteSystems
from casem.app.projects.service import create_project, update_project
from casem.services.case_event_handler.runner import FlavorRunner
from tests.integrations.jira_server import JiraLoopback
from tests.integrations.servicenow_server import ServiceNowLoopback
from tests.support.outbox import envelopes_after

WEBHOOK_SECRET = "a-webhook-secret-of-32-chars!!!!"
BOTH_WAYS = {"sync_type": "bidirectional"}


def jira_settings(account_id: str, **overrides: Any) -> dict[str, Any]:
    properties = {
        "title": BOTH_WAYS,
        "description": BOTH_WAYS,
        "comments": BOTH_WAYS,
        "assignee": BOTH_WAYS,
        "status": {
            "sync_type": "bidirectional",
            "mapping": {"OPEN": "To Do", "IN_PROGRESS": "In Progress", "CLOSED": "Done"},
        },
        "priority": BOTH_WAYS,
        "due_date": {"sync_type": "bidirectional", "jira_field_id": "duedate"},
    }
    settings = {
        "enabled": True,
        "metadata": {"account_id": account_id, "project_id": "10000", "issue_type_id": "10001"},
        "auto_creation": {"enabled": True},
        "sync": {"enabled": True, "properties": properties},
    }
    settings.update(overrides)
    return settings


def servicenow_settings(instance_name: str = "acme", **overrides: Any) -> dict[str, Any]:
    settings = {
        "enabled": True,
        "instance_name": instance_name,
        "auto_creation": {"enabled": True},
        "sync_config": {
            "enabled": True,
            "properties": {"comments": BOTH_WAYS, "status": BOTH_WAYS, "priority": BOTH_WAYS},
        },
    }
    settings.update(overrides)
    return settings


@dataclass
class Connected:
    creds: BootstrapCredentials
    project_id: str
    jira_account_id: str | None = None
    servicenow_instance_id: str | None = None

    @property
    def org_id(self) -> str:
        return self.creds.org_id

    @property
    def user_id(self) -> str:
        return self.creds.user_id


async def connect_org(
    ctx: AppContext,
    remotes: RemoteSystems,
    *,
    jira: JiraLoopback | None = None,
    snow: ServiceNowLoopback | None = None,
    key: str = "SYNC",
    jira_overrides: dict[str, Any] | None = None,
    servicenow_overrides: dict[str, Any] | None = None,
) -> Connected:
    async with ctx.uow() as uow:
        creds = await bootstrap_org(uow, f"org-{key}", "alice@example.com")
        project = await create_project(uow, creds.org_id, creds.user_id, key=key, name="Synced")
        await uow.commit()
    connected = Connected(creds, project.id)
    settings: dict[str, Any] = {}
    if jira is not None:
        new = await accounts.prepare_jira_account(
            remotes,
            creds.org_id,
            creds.user_id,
            {
                "instance_url": jira.url,
                "auth": {"type": "api_token", "email": jira.integration.email, "api_token": jira.integration.token},
                "webhook_secret": WEBHOOK_SECRET,
            },
        )
        async with ctx.uow() as uow:
            await accounts.save_account(uow, new.account)
            await uow.commit()
        connected.jira_account_id = new.account.id
        settings["integration_jira"] = jira_settings(new.account.id, **(jira_overrides or {}))
    if snow is not None:
        new = await accounts.prepare_servicenow_instance(
            remotes,
            creds.org_id,
            creds.user_id,
            {
                "instance_name": "acme",
                "instance_url": snow.url,
                "auth": {"type": "basic", "username": "casem.integration", "password": "bot-pass"},
                "webhook_secret": WEBHOOK_SECRET,
            },
        )
        async with ctx.uow() as uow:
            await accounts.save_account(uow, new.account)
            await uow.commit()
        connected.servicenow_instance_id = new.account.id
        settings["integration_service_now"] = servicenow_settings(**(servicenow_overrides or {}))
    async with ctx.uow() as uow:
        await update_project(uow, creds.org_id, creds.user_id, project.id, {"settings": settings})
        await uow.commit()
    return connected


async def new_case(ctx: AppContext, org: Connected, title: str = "Disk full on web-1", **fields: Any) -> str:
    async with ctx.uow() as uow:
        case = await create_case(uow, org.org_id, org.user_id, NewCase(org.project_id, title, **fields))
        await uow.commit()
    return case.id


class OutboxDriver:
    """Feeds the tenant outbox to flavor runners in sequence, as the relay and the bus would (one partition)."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.seen = 0

    async def pending(self) -> list[dict[str, Any]]:
        return await envelopes_after(self.ctx, self.seen)

    async def run(self, *runners: FlavorRunner) -> int:
        """Process every new outbox event (and what processing records) until the outbox is quiet."""
        handled = 0
        while envelopes := await self.pending():
            for envelope in envelopes:
                message = Message(
                    "domain-events",
                    0,
                    envelope["sequence"],
                    (envelope.get("caseid") or "").encode(),
                    json.dumps(envelope).encode(),
                )
                for runner in runners:
                    await runner.process(message)
                self.seen = envelope["sequence"]
                handled += 1
        return handled


async def cells(ctx: AppContext, case_id: str, cell_type: str | None = None) -> list[dict[str, Any]]:
    async with ctx.uow(read_only=True) as uow:
        statement = sa.select(timeline_cells).where(timeline_cells.c.case_id == case_id)
        if cell_type:
            statement = statement.where(timeline_cells.c.type == cell_type)
        rows = (await uow.execute(statement.order_by(timeline_cells.c.created_at, timeline_cells.c.id))).all()
    return [dict(r._mapping) for r in rows]
