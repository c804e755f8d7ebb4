"""Crash test of the Slack bridge: 1,000 message events in a linked thread are sent to a real
`casem run case-chat-interactions` process, which is killed with SIGKILL mid-way and restarted; Slack's
retries of every event are then replayed. Every event the bridge acknowledged (HTTP 200) is applied exactly
once: one excerpt cell and one `case.chat_excerpt_added` event per message, none twice, none lost."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from casem.adapters.secrets import SecretBox
from casem.adapters.storage.tables import chat_excerpt_messages, chat_inbox, domain_events, timeline_cells
from casem.app.cases.service import NewCase, create_case
from casem.app.chat import installations, service
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.app.projects.service import create_project
from casem.domain.chat import Conversation
from casem.topology.tenants import TENANTS
from tests.support.databases import tenant_endpoints
from tests.support.ports import free_port
from tests.support.slack_api import running_slack, sign

EVENTS = 1_000
KILL_AFTER = 400  # acknowledged events before the SIGKILL
SENDERS = 8
SECRET = "crash-test-signing-secret"


class ChatProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.http_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **self.env,
            "CASEM_HTTP_PORT": str(self.http_port),
            "CASEM_GRPC_PORT": str(free_port()),
            "CASEM_OPS_PORT": str(free_port()),
            "CASEM_HOST": "127.0.0.1",
            "CASEM_MIGRATE_ON_START": "0",
        }
        out = open(self.log, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "casem.cli.main", "run", "case-chat-interactions"], env=env, stdout=out, stderr=out
        )

    async def ready(self, client: httpx.AsyncClient) -> None:
        body = b'{"type":"url_verification","challenge":"ready"}'
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = await client.post(self.url("/slack/events"), content=body, headers=sign(SECRET, body))
                if answer.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "case-chat-interactions did not start"
            await asyncio.sleep(0.2)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


async def _count(ctx: AppContext, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    async with ctx.uow(read_only=True) as uow:
        return int(await uow.scalar(sa.select(sa.func.count()).select_from(table).where(*where)))


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_kill_9_while_1000_slack_events_flow_then_replay_retries(database: str, tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEM_TENANT_")}
    env.update(
        {
            "CASEM_DATA_DIR": str(tmp_path),
            "CASEM_SECRET_KEYS": key,
            "CASEM_SLACK_SIGNING_SECRET": SECRET,
            "CASEM_OUTBOUND_ALLOW": "127.0.0.1/32",
        }
    )
    with running_slack() as slack, tenant_endpoints(database, tmp_path) as endpoints:
        env["CASEM_SLACK_API_URL"] = slack.url
        for t in TENANTS:
            env[f"{t.env_prefix}_DSN"] = endpoints[t.name].master
        ctx = AppContext.open(endpoints)
        team = f"T{uuid.uuid4().hex[:8].upper()}"
        ws = slack.add_workspace(team, "xoxb-crash", bot_user_id="U0BOT")
        slack.add_user(ws, "U0BOB", "Bob", "bob@crash.example")
        async with ctx.uow() as uow:
            creds = await bootstrap_org(uow, "crash", "ada@crash.example")
            project = await create_project(uow, creds.org_id, creds.user_id, key="CHAT", name="Crash")
            await installations.install(
                uow,
                creds.org_id,
                creds.user_id,
                platform="slack",
                workspace_id=team,
                bot_user_id="U0BOT",
                sealed_token=SecretBox([key.encode()]).seal("xoxb-crash"),
            )
            case = await create_case(uow, creds.org_id, creds.user_id, NewCase(project.id, "War room"))
            parent = slack.say(ws, "C0WAR", "U0BOB", "war room")
            await service.link_case(
                uow, creds.org_id, None, case.id, Conversation("slack", team, "C0WAR", parent["ts"])
            )
            await uow.commit()
        events = []
        for n in range(EVENTS):
            said = slack.say(ws, "C0WAR", "U0BOB", f"update {n}", thread_ts=parent["ts"])
            event = {
                "type": "message",
                "channel": "C0WAR",
                "user": "U0BOB",
                "text": said["text"],
                "ts": said["ts"],
                "thread_ts": parent["ts"],
            }
            body = {
                "type": "event_callback",
                "team_id": team,
                "api_app_id": "A0CASEM",
                "event_id": f"Ev{n:06d}",
                "event_time": int(time.time()),
                "event": event,
            }
            events.append((f"Ev{n:06d}", said["ts"], json.dumps(body).encode()))

        chat = ChatProcess(env, tmp_path / "chat.log")
        acknowledged: set[str] = set()
        try:
            chat.start()
            async with httpx.AsyncClient(timeout=10) as client:
                await chat.ready(client)
                queue: asyncio.Queue[tuple[str, str, bytes]] = asyncio.Queue()
                for item in events:
                    queue.put_nowait(item)
                killed = asyncio.Event()

                async def sender(retry: int) -> None:
                    while not queue.empty():
                        event_id, _, body = queue.get_nowait()
                        headers = {**sign(SECRET, body), "Content-Type": "application/json"}
                        if retry:
                            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_error"}
                        try:
                            answer = await client.post(chat.url("/slack/events"), content=body, headers=headers)
                        except httpx.TransportError:
                            continue  # not acknowledged: Slack will retry it
                        if answer.status_code == 200:
                            acknowledged.add(event_id)
                        if len(acknowledged) >= KILL_AFTER and not killed.is_set() and not retry:
                            killed.set()
                            chat.kill()

                await asyncio.gather(*(sender(0) for _ in range(SENDERS)))
                first_round = set(acknowledged)
                assert killed.is_set() and KILL_AFTER <= len(first_round) < EVENTS
                applied_at_kill = await _count(ctx, chat_excerpt_messages)
                assert applied_at_kill < EVENTS  # killed mid-way: not everything was applied
                print(f"acknowledged before the kill: {len(first_round)}, applied at the kill: {applied_at_kill}")

                # Restart; Slack retries every event (those acknowledged too, as a late answer would cause).
                chat.start()
                await chat.ready(client)
                for item in events:
                    queue.put_nowait(item)
                await asyncio.gather(*(sender(1) for _ in range(SENDERS)))
            assert acknowledged == {e[0] for e in events}

            deadline = time.monotonic() + 240
            while await _count(ctx, chat_inbox, chat_inbox.c.status == "pending"):
                assert time.monotonic() < deadline, "the inbox did not drain"
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.5)  # anything still in flight would show up as a duplicate now

            async with ctx.uow(read_only=True) as uow:
                applied = (await uow.execute(sa.select(chat_excerpt_messages.c.message_id))).scalars().all()
                cells = (
                    (
                        await uow.execute(
                            sa.select(timeline_cells.c.content).where(
                                timeline_cells.c.case_id == case.id, timeline_cells.c.type == "CHAT_EXCERPT"
                            )
                        )
                    )
                    .scalars()
                    .all()
                )
                statuses = dict(
                    (
                        await uow.execute(sa.select(chat_inbox.c.status, sa.func.count()).group_by(chat_inbox.c.status))
                    ).all()
                )
            said_in_cells = [m["message_id"] for content in cells for m in content["messages"]]
            expected = sorted(ts for _, ts, _ in events)
            assert sorted(applied) == expected  # every acknowledged event applied
            assert sorted(said_in_cells) == expected  # ... exactly once on the timeline
            assert len(cells) == EVENTS
            assert (
                await _count(ctx, domain_events, domain_events.c.type == "com.casem.case.chat_excerpt_added.v1")
                == EVENTS
            )
            assert statuses == {"done": EVENTS}
        finally:
            chat.stop()
            await ctx.close()
