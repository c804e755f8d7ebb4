"""Crash test of case-third-party-reader: 2,000 remote changes (100 comments on each of 20 linked Jira issues) on
the feed; the reader, a real `casem run` process, is killed with SIGKILL after 500 and restarted. Afterwards every
change was applied exactly once (2,000 comment cells, none twice) and each issue's changes in their order."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from casem.adapters.bus import OutgoingMessage, open_bus
from casem.adapters.secrets import SecretBox
from casem.adapters.storage.tables import domain_events, handler_processed_events, remote_objects, timeline_cells
from casem.app.cases.service import NewCase, create_case
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.app.integrations import accounts
from casem.app.integrations.remote_events import RemoteEvent
from casem.app.projects.service import create_project, update_project
from casem.domain.integrations import IntegrationAccount, RemoteLink, record_linked
from casem.services.case_third_party_reader.runner import processed_name
from casem.topology.tenants import CASE_MANAGEMENT, TENANTS
from casem.topology.topics import third_party_topic
from tests.backends import engine_address
from tests.integrations.support import jira_settings
from tests.support.databases import tenant_endpoints
from tests.support.ports import free_port

ISSUES = 20
COMMENTS_PER_ISSUE = 100  # 2,000 changes
KILL_AFTER = 500


async def _count(ctx: AppContext, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    async with ctx.uow(read_only=True) as uow:
        return await uow.scalar(sa.select(sa.func.count()).select_from(table).where(*where))


async def _linked_world(ctx: AppContext, box: SecretBox) -> tuple[str, str, dict[str, str]]:
    """An org with a Jira account and 20 cases linked to issues OPS-1..OPS-20; answers (org, account, issue → case)."""
    async with ctx.uow() as uow:
        creds = await bootstrap_org(uow, "crash", "crash@example.com")
        project = await create_project(uow, creds.org_id, creds.user_id, key="CRASH", name="Crash")
        account = IntegrationAccount(
            id=str(uuid.uuid4()),
            org_id=creds.org_id,
            system="jira",
            name="crash.atlassian.net",
            base_url="https://crash.atlassian.net",
            auth_type="api_token",
            principal="bot@example.com",
            sealed_credentials=box.seal('{"api_token": "unused"}'),
            sealed_webhook_secret=box.seal("unused-secret-0123456789"),
            remote_user_id="acc-bot",
        )
        await accounts.save_account(uow, account)
        await uow.commit()
    async with ctx.uow() as uow:
        await update_project(
            uow, creds.org_id, creds.user_id, project.id, {"settings": {"integration_jira": jira_settings(account.id)}}
        )
        await uow.commit()
    issues: dict[str, str] = {}
    for n in range(1, ISSUES + 1):
        async with ctx.uow() as uow:
            case = await create_case(uow, creds.org_id, creds.user_id, NewCase(project.id, f"case {n}"))
            link = RemoteLink(
                id=str(uuid.uuid4()), org_id=creds.org_id, case_id=case.id, system="jira", account_id=account.id
            )
            uow.add(link)
            record_linked(
                case,
                link,
                None,
                remote_id=str(10000 + n),
                remote_key=f"OPS-{n}",
                remote_url=f"https://crash.atlassian.net/browse/OPS-{n}",
                project_key="OPS",
                how="linked",
            )
            await uow.commit()
        issues[str(10000 + n)] = case.id
    return creds.org_id, account.id, issues


def _changes(org_id: str, account_id: str) -> list[RemoteEvent]:
    """Comment n of issue i, for n in order, the issues interleaved as a busy Jira site would send them."""
    start = datetime.now(UTC) - timedelta(hours=1)
    events = []
    for n in range(COMMENTS_PER_ISSUE):
        for i in range(1, ISSUES + 1):
            comment_id = f"{i}-{n}"
            events.append(
                RemoteEvent(
                    id=f"jira:{account_id}:comment:{comment_id}:created",
                    system="jira",
                    kind="comment_created",
                    tenant=CASE_MANAGEMENT,
                    org_id=org_id,
                    account_id=account_id,
                    issue_id=str(10000 + i),
                    issue_key=f"OPS-{i}",
                    occurred_at=start + timedelta(milliseconds=n * ISSUES + i),
                    source="webhook",
                    actor={"id": "acc-human", "name": "Carol", "email": "carol@example.com"},
                    comment={
                        "id": comment_id,
                        "body": f"c{i}-{n}",
                        "author": {"id": "acc-human", "name": "Carol", "email": "carol@example.com"},
                    },
                )
            )
    return events


@pytest.mark.parametrize(
    ("database", "bus_kind"),
    [("sqlite", "embedded"), pytest.param("postgres", "kafka", marks=[pytest.mark.postgres, pytest.mark.kafka])],
)
async def test_kill_9_the_reader_after_500_of_2000_remote_changes(database: str, bus_kind: str, tmp_path: Path) -> None:
    key = Fernet.generate_key()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEM_TENANT_")}
    env.update(
        CASEM_DATA_DIR=str(tmp_path), CASEM_SECRET_KEYS=key.decode(), CASEM_HOST="127.0.0.1", CASEM_MIGRATE_ON_START="0"
    )
    if bus_kind == "kafka":
        env["CASEM_KAFKA_BOOTSTRAP"] = engine_address("kafka")
        env["CASEM_BUS_NAMESPACE"] = f"crash-reader-{uuid.uuid4().hex[:8]}"
    else:
        env["CASEM_BUS_PATH"] = str(tmp_path / "bus.db")
    with tenant_endpoints(database, tmp_path) as endpoints:
        for t in TENANTS:
            env[f"{t.env_prefix}_DSN"] = endpoints[t.name].master
        ctx = AppContext.open(endpoints)
        bus = open_bus(env)
        reader: subprocess.Popen[bytes] | None = None
        log = open(tmp_path / "reader.log", "ab")  # noqa: SIM115 - closed below
        record = processed_name("jira")

        def start() -> subprocess.Popen[bytes]:
            args = [sys.executable, "-m", "casem.cli.main", "run", "case-third-party-reader", "--flavor", "jira"]
            return subprocess.Popen(args, env={**env, "CASEM_OPS_PORT": str(free_port())}, stdout=log, stderr=log)

        try:
            org_id, account_id, issues = await _linked_world(ctx, SecretBox([key]))
            topic = third_party_topic("jira")
            await bus.ensure_topic(topic.name, topic.partitions)
            producer = bus.producer()
            changes = _changes(org_id, account_id)
            assert len(changes) == 2000
            await producer.publish_batch([OutgoingMessage(topic.name, e.key, e.to_bytes()) for e in changes])
            await producer.close()

            reader = start()
            deadline = time.monotonic() + 180
            while await _count(ctx, handler_processed_events, handler_processed_events.c.flavor == record) < KILL_AFTER:
                assert reader.poll() is None, f"the reader ended; see {tmp_path / 'reader.log'}"
                assert time.monotonic() < deadline, "the reader did not get going"
                await asyncio.sleep(0.02)
            reader.send_signal(signal.SIGKILL)
            reader.wait(timeout=30)
            done_before_kill = await _count(ctx, handler_processed_events, handler_processed_events.c.flavor == record)
            assert KILL_AFTER <= done_before_kill < 2000, done_before_kill  # it really died part-way

            reader = start()
            deadline = time.monotonic() + 300
            while await _count(ctx, handler_processed_events, handler_processed_events.c.flavor == record) < 2000:
                assert reader.poll() is None, f"the reader ended; see {tmp_path / 'reader.log'}"
                assert time.monotonic() < deadline, "the reader did not catch up"
                await asyncio.sleep(0.2)
            await asyncio.sleep(2)  # anything still in flight would show up as a duplicate now

            # Exactly once: one comment cell and one remote object per change, nothing else.
            assert await _count(ctx, timeline_cells, timeline_cells.c.type == "COMMENT") == 2000
            assert await _count(ctx, remote_objects) == 2000
            assert await _count(ctx, handler_processed_events, handler_processed_events.c.flavor == record) == 2000
            # In order per issue: each case's comments were committed (outbox sequence) in the issue's order.
            async with ctx.uow(read_only=True) as uow:
                rows = (
                    await uow.execute(
                        sa.select(domain_events.c.case_id, domain_events.c.envelope)
                        .where(domain_events.c.type == "com.casem.case.comment_added.v1")
                        .order_by(domain_events.c.seq)
                    )
                ).all()
            applied: dict[str, list[int]] = {}
            for row in rows:
                _issue, _, n = row.envelope["data"]["message"][1:].partition("-")
                applied.setdefault(row.case_id, []).append(int(n))
            assert set(applied) == set(issues.values())
            for sequence in applied.values():
                assert sequence == list(range(COMMENTS_PER_ISSUE))
        finally:
            if reader is not None and reader.poll() is None:
                reader.send_signal(signal.SIGTERM)
                try:
                    reader.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    reader.kill()
            log.close()
            await bus.close()
            await ctx.close()
