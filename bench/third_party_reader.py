"""case-third-party-reader on real engines: reader events/s beside a raw consumer on the same topic, and the
latency from a remote change (a signed Jira webhook) to its timeline cell, beside the bus's own floor.

usage: .venv/bin/python bench/third_party_reader.py --postgres postgresql://postgres@127.0.0.1:55432/postgres \
           --bootstrap 127.0.0.1:59092 [--events 5000] [--issues 60] [--lag-rate 50] [--lag-seconds 10]

Measurements in one run, against the same database and broker (a fresh database, a namespaced bus):
  reader      drain a backlog of N remote comments (one per message, spread over --issues linked issues) with
              the reader as `casem run` configures it (RunTask, 64 in flight, commit every 200), events/s
  raw         a plain consumer group reads the same N messages from the same topic (poll + commit, no work)
  latency     webhooks are POSTed at --lag-rate/s to the connector ingress while the reader runs: the time from
              the remote change (the comment's time, set when the webhook is sent) to the commit of its timeline
              cell, p50/p99; beside it, the same webhooks' time to a raw consumer of the feed (ingress + bus)
Everything runs in this process (one event loop, like one pod each would have its own): figures are for
comparing casem with the raw consumer on this machine, not absolute capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import sqlalchemy as sa
import uvicorn
from _support import memory_column
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from casem.adapters.bus import ConsumerOptions, OutgoingMessage, open_bus
from casem.adapters.bus.namespace import NamespacedBus
from casem.adapters.http import AllowList
from casem.adapters.secrets import SecretBox
from casem.adapters.storage.tables import domain_events, handler_processed_events, timeline_cells
from casem.app.cases.service import NewCase, create_case
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.app.integrations import accounts
from casem.app.integrations.remote_events import RemoteEvent
from casem.app.integrations.remotes import RemoteSystems
from casem.app.projects.service import create_project, update_project
from casem.domain.integrations import IntegrationAccount, RemoteLink, record_linked
from casem.services.case_connector_ingress.app import Ingress, create_ingress_app
from casem.services.case_third_party_reader.runner import ReaderRunner, processed_name
from casem.services.case_third_party_reader.service import build_processor, prepare_topics
from casem.topology.tenants import CASE_MANAGEMENT, DatabaseEndpoints, to_async_dsn
from casem.topology.topics import reader_group

SECRET = "bench-webhook-secret-0123456789"
ALL_WAYS = {"sync_type": "bidirectional"}


def _fresh_database(admin: str) -> str:
    name = f"casem_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(to_async_dsn(admin)).set(database=name).render_as_string(hide_password=False)


def _drop_database(admin: str, dsn: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{make_url(dsn).database}" WITH (FORCE)')


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _world(ctx: AppContext, box: SecretBox, issues: int) -> tuple[IntegrationAccount, list[str]]:
    async with ctx.uow() as uow:
        creds = await bootstrap_org(uow, "bench", "bench@example.com")
        project = await create_project(uow, creds.org_id, creds.user_id, key="BENCH", name="Bench")
        account = IntegrationAccount(
            id=str(uuid.uuid4()),
            org_id=creds.org_id,
            system="jira",
            name="bench.atlassian.net",
            base_url="https://bench.atlassian.net",
            auth_type="api_token",
            principal="bot@example.com",
            sealed_credentials=box.seal('{"api_token": "unused"}'),
            sealed_webhook_secret=box.seal(SECRET),
            remote_user_id="acc-bot",
        )
        await accounts.save_account(uow, account)
        await uow.commit()
    settings = {
        "enabled": True,
        "metadata": {"account_id": account.id},
        "sync": {"enabled": True, "properties": {"comments": ALL_WAYS}},
    }
    async with ctx.uow() as uow:
        await update_project(uow, creds.org_id, creds.user_id, project.id, {"settings": {"integration_jira": settings}})
        await uow.commit()
    issue_ids = []
    for n in range(1, issues + 1):
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
                remote_key=f"BENCH-{n}",
                remote_url="",
                project_key="BENCH",
                how="linked",
            )
            await uow.commit()
        issue_ids.append(str(10000 + n))
    return account, issue_ids


def _comment(account: IntegrationAccount, issue_id: str, n: int, when: datetime) -> RemoteEvent:
    return RemoteEvent(
        id=f"jira:{account.id}:comment:backlog-{n}:created",
        system="jira",
        kind="comment_created",
        tenant=CASE_MANAGEMENT,
        org_id=account.org_id,
        account_id=account.id,
        issue_id=issue_id,
        issue_key=f"BENCH-{int(issue_id) - 10000}",
        occurred_at=when,
        source="webhook",
        actor={"id": "acc-human", "name": "Carol", "email": None},
        comment={"id": f"backlog-{n}", "body": f"comment {n}", "author": {"id": "acc-human", "name": "Carol"}},
    )


async def _processed(ctx: AppContext) -> int:
    async with ctx.uow(read_only=True) as uow:
        return await uow.scalar(
            sa.select(sa.func.count())
            .select_from(handler_processed_events)
            .where(handler_processed_events.c.flavor == processed_name("jira"))
        )


async def run(args: argparse.Namespace) -> dict[str, object]:
    dsn = _fresh_database(args.postgres)
    ctx = AppContext.open({CASE_MANAGEMENT: DatabaseEndpoints(master=dsn)})
    box = SecretBox([Fernet.generate_key()])
    env = {"CASEM_KAFKA_BOOTSTRAP": args.bootstrap} if args.bootstrap else {"CASEM_BUS_PATH": args.embedded}
    bus = NamespacedBus(open_bus(env), f"bench-{uuid.uuid4().hex[:8]}")
    topic = await prepare_topics(bus, "jira")
    account, issues = await _world(ctx, box, args.issues)
    producer = bus.producer()

    # -- a backlog of N remote comments: the reader and a raw consumer each drain it --------------------------
    start = datetime.now(UTC) - timedelta(hours=1)
    backlog = [
        _comment(account, issues[n % len(issues)], n, start + timedelta(milliseconds=n)) for n in range(args.events)
    ]
    for i in range(0, len(backlog), 500):
        await producer.publish_batch([OutgoingMessage(topic, e.key, e.to_bytes()) for e in backlog[i : i + 500]])

    raw = bus.consumer("bench-raw", [topic])
    received, started = 0, time.perf_counter()
    while received < args.events:
        batch = await raw.poll(500, timeout=1.0)
        received += len(batch)
        if batch:
            offsets = {}
            for m in batch:
                offsets[m.topic_partition] = m.next_offset
            await raw.commit(offsets)
    raw_s = time.perf_counter() - started
    await raw.close()

    dead_letters = bus.producer()
    consumer = bus.consumer(reader_group("jira"), [topic])
    processor = build_processor(ReaderRunner("jira", ctx, dead_letters), consumer)
    started = time.perf_counter()
    reader_task = asyncio.create_task(processor.run())
    while await _processed(ctx) < args.events:
        await asyncio.sleep(0.1)
    reader_s = time.perf_counter() - started

    # -- latency: signed webhooks through the ingress while the reader runs ------------------------------------
    remotes = RemoteSystems(box=box, allow=AllowList())
    server = uvicorn.Server(
        uvicorn.Config(
            create_ingress_app(Ingress(ctx, remotes, producer)), host="127.0.0.1", port=0, log_level="warning"
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    server_task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/webhooks/jira/{account.id}"
    floor_consumer = bus.consumer("bench-floor", [topic], ConsumerOptions(initial_position="latest"))
    await floor_consumer.poll(timeout=2.0)  # join the group before the clock starts
    expected = int(args.lag_rate * args.lag_seconds)
    sent: dict[str, float] = {}
    floor: list[float] = []

    async def sender() -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            for n in range(expected):
                now = datetime.now(UTC)
                stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"
                comment_id = f"live-{n}"
                body = json.dumps(
                    {
                        "timestamp": int(now.timestamp() * 1000),
                        "webhookEvent": "comment_created",
                        "comment": {
                            "id": comment_id,
                            "body": f"live {n}",
                            "author": {"accountId": "acc-human", "displayName": "Carol"},
                            "created": stamp,
                            "updated": stamp,
                        },
                        "issue": {"id": issues[n % len(issues)], "key": f"BENCH-{n % len(issues) + 1}", "fields": {}},
                    }
                ).encode()
                signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                sent[comment_id] = time.time()
                response = await http.post(
                    url, content=body, headers={"X-Hub-Signature": signature, "Content-Type": "application/json"}
                )
                assert response.status_code == 202, response.text
                await asyncio.sleep(1.0 / args.lag_rate)

    async def floor_reader() -> None:
        deadline = time.monotonic() + args.lag_seconds + 60
        while len(floor) < expected and time.monotonic() < deadline:
            for message in await floor_consumer.poll(timeout=0.5):
                event = RemoteEvent.from_bytes(message.value)
                if event.comment and event.comment["id"] in sent:
                    floor.append(time.time() - sent[event.comment["id"]])

    await asyncio.gather(sender(), floor_reader())
    deadline = time.monotonic() + 120
    while await _processed(ctx) < args.events + expected and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    processor.stop()
    await reader_task
    server.should_exit = True
    await server_task
    await floor_consumer.close()
    await consumer.close()

    # Remote time (the comment's, set when it was sent) → the commit of its cell (the outbox event's time).
    async with ctx.uow(read_only=True) as uow:
        created = dict(
            (
                await uow.execute(
                    sa.select(timeline_cells.c.id, timeline_cells.c.created_at).where(
                        timeline_cells.c.type == "COMMENT"
                    )
                )
            ).all()
        )
        rows = (
            await uow.execute(
                sa.select(domain_events.c.envelope).where(domain_events.c.type == "com.casem.case.comment_added.v1")
            )
        ).all()
    lags = []
    for (envelope,) in rows:
        data = envelope["data"]
        if str((data.get("origin") or {}).get("comment_id", "")).startswith("live-"):
            applied = datetime.fromisoformat(envelope["time"].replace("Z", "+00:00"))
            lags.append((applied - created[data["cell_id"]]).total_seconds())
    await producer.close()
    await dead_letters.close()
    await bus.close()
    await ctx.close()
    _drop_database(args.postgres, dsn)

    reader_rate = args.events / reader_s
    raw_rate = args.events / raw_s
    return {
        "bench": "third_party_reader",
        "database": "postgresql",
        "bus": "kafka" if args.bootstrap else "embedded",
        "events": args.events,
        "issues": args.issues,
        "reader_events_per_s": round(reader_rate, 1),
        "raw_consumer_msgs_per_s": round(raw_rate, 1),
        "ratio_reader_to_raw": round(reader_rate / raw_rate, 4),
        "latency": {
            "webhook_rate_per_s": args.lag_rate,
            "samples": len(lags),
            "remote_change_to_timeline_cell_p50_ms": round(statistics.median(lags) * 1000, 1) if lags else None,
            "remote_change_to_timeline_cell_p99_ms": round(_percentile(lags, 0.99) * 1000, 1) if lags else None,
            "raw_webhook_to_consumer_samples": len(floor),
            "raw_webhook_to_consumer_p50_ms": round(statistics.median(floor) * 1000, 1) if floor else None,
            "raw_webhook_to_consumer_p99_ms": round(_percentile(floor, 0.99) * 1000, 1) if floor else None,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", required=True, help="admin DSN; a fresh database is created for the run")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--bootstrap", help="Kafka bootstrap servers")
    target.add_argument("--embedded", help="path of an embedded bus file")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--issues", type=int, default=60)
    parser.add_argument("--lag-rate", type=float, default=50.0)
    parser.add_argument("--lag-seconds", type=float, default=10.0)
    result = asyncio.run(run(parser.parse_args()))
    result["peak_rss_mb"] = memory_column("third-party reader, loopback Jira, raw consumer")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
