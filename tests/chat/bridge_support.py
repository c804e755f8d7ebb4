"""The Slack bridge under test: the bridge app over a tenant database, its inbox worker running, the loopback
Slack Web API, an org with its workspace installed, and requests signed exactly as Slack signs them."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from casem.adapters.chat.slack_web import SlackWebApi
from casem.adapters.secrets import SecretBox
from casem.adapters.storage.tables import cases, timeline_cells
from casem.app.chat import installations
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org, create_user
from casem.app.projects.service import create_project
from casem.services.case_chat_interactions.bridge.settings import BridgeSettings
from casem.services.case_chat_interactions.service import Bridge, build_bridge
from tests.support.slack_api import SlackApi, Workspace, form_body, sign

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@dataclass
class SlackOrg:
    org_id: str
    admin: str
    bob: str
    project_id: str
    project_key: str
    ws: Workspace


@dataclass
class BridgeRig:
    ctx: AppContext
    slack: SlackApi
    bridge: Bridge
    http: httpx.AsyncClient
    org: SlackOrg

    # -- requests as Slack sends them ------------------------------------------------------------------
    async def post(
        self,
        path: str,
        body: bytes,
        content_type: str,
        *,
        headers: dict[str, str] | None = None,
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
    ) -> httpx.Response:
        signed = {**sign(secret, body, timestamp), "Content-Type": content_type, **(headers or {})}
        return await self.http.post(path, content=body, headers=signed)

    def event_body(self, event: dict[str, Any], event_id: str | None = None) -> bytes:
        return json.dumps(
            {
                "token": "legacy-verification-token",
                "team_id": self.org.ws.team_id,
                "api_app_id": "A0CASEM",
                "event": event,
                "type": "event_callback",
                "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
                "event_time": int(time.time()),
                "authorizations": [
                    {"team_id": self.org.ws.team_id, "user_id": self.org.ws.bot_user_id, "is_bot": True}
                ],
            }
        ).encode()

    async def event(self, event: dict[str, Any], event_id: str | None = None, retry: int = 0) -> httpx.Response:
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else None
        return await self.post("/slack/events", self.event_body(event, event_id), "application/json", headers=headers)

    async def command(
        self, text: str, user: str = "U0ADA", channel: str = "C0INC", trigger: str | None = None
    ) -> httpx.Response:
        fields = {
            "token": "legacy",
            "team_id": self.org.ws.team_id,
            "team_domain": self.org.ws.domain,
            "channel_id": channel,
            "channel_name": "incidents",
            "user_id": user,
            "user_name": "ada",
            "command": "/case",
            "text": text,
            "api_app_id": "A0CASEM",
            "response_url": "https://hooks.slack.com/commands/T/1/x",
            "trigger_id": trigger or f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:20]}",
        }
        return await self.post("/slack/commands", form_body(fields), "application/x-www-form-urlencoded")

    async def interaction(self, payload: dict[str, Any]) -> httpx.Response:
        body = form_body({"payload": json.dumps(payload)})
        return await self.post("/slack/interactivity", body, "application/x-www-form-urlencoded")

    def button(self, action_id: str, case_id: str, user: str, channel: str = "C0INC") -> dict[str, Any]:
        return {
            "type": "block_actions",
            "user": {"id": user, "username": "someone", "team_id": self.org.ws.team_id},
            "api_app_id": "A0CASEM",
            "team": {"id": self.org.ws.team_id, "domain": self.org.ws.domain},
            "channel": {"id": channel, "name": "incidents"},
            "container": {"type": "message", "message_ts": "1700000000.000001", "channel_id": channel},
            "trigger_id": f"{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex[:20]}",
            "response_url": "https://hooks.slack.com/actions/T/1/x",
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": f"casem_case:{case_id}",
                    "value": case_id,
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }

    # -- state -----------------------------------------------------------------------------------------
    async def cells(self, case_key: str, type_: str | None = None) -> list[sa.Row]:
        async with self.ctx.uow(read_only=True) as uow:
            query = (
                sa.select(timeline_cells)
                .join(cases, cases.c.id == timeline_cells.c.case_id)
                .where(cases.c.key == case_key, cases.c.org_id == self.org.org_id)
                .order_by(timeline_cells.c.created_at)
            )
            if type_:
                query = query.where(timeline_cells.c.type == type_)
            return list((await uow.execute(query)).all())

    async def case(self, key: str) -> sa.Row | None:
        async with self.ctx.uow(read_only=True) as uow:
            return (
                await uow.execute(sa.select(cases).where(cases.c.key == key, cases.c.org_id == self.org.org_id))
            ).first()

    async def settle(self) -> None:
        """Until the inbox worker has applied everything recorded so far (and sent its replies)."""
        await self.bridge.worker.drain()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def make_slack_org(ctx: AppContext, slack: SlackApi, box: SecretBox) -> SlackOrg:
    tag = uuid.uuid4().hex[:6]
    team = f"T{tag.upper()}"
    token = f"xoxb-{tag}-bot"
    ws = slack.add_workspace(team, token, bot_user_id=f"U0BOT{tag.upper()}")
    async with ctx.uow() as uow:
        creds = await bootstrap_org(uow, f"org-{tag}", f"ada@{tag}.example")
        bob = await create_user(uow, creds.org_id, f"bob@{tag}.example", name="Bob")
        key = ("S" + tag).upper()
        project = await create_project(uow, creds.org_id, creds.user_id, key=key, name="Incidents")
        await installations.install(
            uow,
            creds.org_id,
            creds.user_id,
            platform="slack",
            workspace_id=team,
            workspace_name="Acme",
            bot_user_id=ws.bot_user_id,
            sealed_token=box.seal(token),
            default_project_id=project.id,
        )
        await uow.commit()
    slack.add_user(ws, "U0ADA", "Ada", f"ada@{tag}.example")
    slack.add_user(ws, "U0BOB", "Bob", f"bob@{tag}.example")
    slack.add_user(ws, "U0EVE", "Eve", "eve@elsewhere.example")  # no casem user
    slack.add_user(ws, "U0MAL", "Mallory", f"bob@{tag}.example", confirmed=False)  # claims bob's address
    return SlackOrg(creds.org_id, creds.user_id, bob.id, project.id, key, ws)


async def open_rig(
    ctx: AppContext, slack: SlackApi, monkeypatch: pytest.MonkeyPatch, *, poll_s: float = 0.05, max_poll_s: float = 1.0
) -> AsyncIterator[BridgeRig]:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("CASEM_SECRET_KEYS", key)  # the slack-delivery flavor opens tokens with the same key
    monkeypatch.setenv("CASEM_OUTBOUND_ALLOW", "127.0.0.1/32")  # the loopback Slack is a private address
    box = SecretBox([key.encode()])
    settings = BridgeSettings(
        slack_signing_secret=SIGNING_SECRET,
        slack_client_id="1111.2222",
        slack_client_secret="client-secret",
        slack_api_url=slack.url,
        app_url="https://casem.example",
    )
    bridge = build_bridge(ctx, settings, api=SlackWebApi(slack.url), box=box, poll_s=poll_s, max_poll_s=max_poll_s)
    org = await make_slack_org(ctx, slack, box)
    stop = asyncio.Event()
    worker = asyncio.create_task(bridge.worker.run(stop))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=bridge.app), base_url="http://bridge") as http:
        try:
            yield BridgeRig(ctx, slack, bridge, http, org)
        finally:
            stop.set()
            await asyncio.wait_for(worker, 10)
            await bridge.close()
