"""Chat interactions: Slack event -> timeline cell, next to a direct case-api comment in the same run.

usage: .venv/bin/python bench/chat.py [--events 1000] [--concurrency 8] [--postgres ADMIN_DSN]

Everything runs on this machine, on a SQLite tenant database in a temporary directory (or a fresh PostgreSQL
database with --postgres): the Slack bridge of case-chat-interactions served by uvicorn with its inbox
worker, a loopback Slack Web API (tests/support/slack_api.py) for the bridge's chat.getPermalink and
users.info calls, and case-api's gRPC server in a thread of its own. Prints one JSON object:

- slack.ack_ms p50/p99: a signed message event in a linked thread -> the bridge's HTTP 200 (Slack's 3 s
  budget is what this must stay far below);
- slack.event_to_cell_ms p50/p99: the event sent -> its excerpt cell committed (the cell's row time, same
  clock);
- slack.excerpts_per_s: events / (first sent -> last cell committed);
- grpc.append_excerpt_ms p50/p99 and excerpts_per_s: ChatInteractionsService.AppendExcerpt called directly;
- raw.case_api_comment_ms p50/p99 and comments_per_s: CaseAPI.AddComment, the same number of calls with the
  same concurrency (the raw figure: one timeline cell with no chat in front of it).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
import sqlalchemy as sa
import uvicorn
from cryptography.fernet import Fernet
from google.protobuf import timestamp_pb2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the loopback Slack lives with the tests

from _support import drop_postgres, fresh_postgres, memory_column  # noqa: E402

from casem.adapters.chat.slack_web import SlackWebApi  # noqa: E402
from casem.adapters.secrets import SecretBox  # noqa: E402
from casem.adapters.storage.tables import chat_excerpt_messages  # noqa: E402
from casem.app.cases.service import NewCase, create_case  # noqa: E402
from casem.app.chat import installations, service  # noqa: E402
from casem.app.context import AppContext  # noqa: E402
from casem.app.identity.service import bootstrap_org  # noqa: E402
from casem.app.projects.service import create_project  # noqa: E402
from casem.domain.chat import Conversation  # noqa: E402
from casem.proto_gen.casem.v1 import case_api_pb2, case_api_pb2_grpc  # noqa: E402
from casem.proto_gen.casem.v1 import chat_interactions_pb2 as chat_pb  # noqa: E402
from casem.proto_gen.casem.v1 import chat_interactions_pb2_grpc as chat_grpc  # noqa: E402
from casem.services.case_api.grpc.server import create_bound_server as case_api_server  # noqa: E402
from casem.services.case_chat_interactions.bridge.settings import BridgeSettings  # noqa: E402
from casem.services.case_chat_interactions.server import create_bound_server as chat_server  # noqa: E402
from casem.services.case_chat_interactions.service import build_bridge  # noqa: E402
from casem.topology.tenants import TENANTS, DatabaseEndpoints  # noqa: E402
from tests.support.slack_api import running_slack, sign  # noqa: E402

SECRET = "bench-signing-secret"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(values_ms: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values_ms, 50), 1), "p99": round(percentile(values_ms, 99), 1)}


class CaseApiThread:
    """case-api's gRPC server on its own loop and thread, as it would run in its own process."""

    def __init__(self, endpoints: dict[str, DatabaseEndpoints]) -> None:
        self.endpoints = endpoints
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stopping: asyncio.Event | None = None
        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(self._serve()), daemon=True)

    async def _serve(self) -> None:
        context = AppContext.open(self.endpoints, migrate=False)
        server, self.port = case_api_server(context, "127.0.0.1:0")
        await server.start()
        self.stopping = asyncio.Event()
        self.ready.set()
        await self.stopping.wait()
        await server.stop(2)
        await context.close()

    def start(self) -> CaseApiThread:
        self.thread.start()
        self.ready.wait(60)
        return self

    def stop(self) -> None:
        assert self.stopping is not None
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(30)


async def lanes(n: int, concurrency: int, call) -> float:  # type: ignore[no-untyped-def]
    """Run call(i) for i in range(n) on `concurrency` lanes; returns the elapsed seconds."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def lane() -> None:
        while not queue.empty():
            await call(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - started


async def run(args: argparse.Namespace) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="casem-bench-chat-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    if args.postgres:
        endpoints = {t.name: DatabaseEndpoints(master=fresh_postgres(args.postgres, t.name)) for t in TENANTS}
    else:
        endpoints = {t.name: DatabaseEndpoints(master=f"sqlite+aiosqlite:///{tmp / (t.name + '.db')}") for t in TENANTS}
    ctx = AppContext.open(endpoints)
    key = Fernet.generate_key()
    box = SecretBox([key])
    import os

    os.environ["CASEM_OUTBOUND_ALLOW"] = "127.0.0.1/32"  # the loopback Slack
    with running_slack() as slack:
        team = "TBENCH"
        ws = slack.add_workspace(team, "xoxb-bench", bot_user_id="U0BOT")
        slack.add_user(ws, "U0BOB", "Bob", "bob@bench.example")
        async with ctx.uow() as uow:
            creds = await bootstrap_org(uow, "bench", "bob@bench.example")
            project = await create_project(uow, creds.org_id, creds.user_id, key="BENCH", name="Bench")
            await installations.install(
                uow,
                creds.org_id,
                creds.user_id,
                platform="slack",
                workspace_id=team,
                bot_user_id="U0BOT",
                sealed_token=box.seal("xoxb-bench"),
            )
            case = await create_case(uow, creds.org_id, creds.user_id, NewCase(project.id, "Bench war room"))
            parent = slack.say(ws, "C0BENCH", "U0BOB", "war room")
            thread = Conversation("slack", team, "C0BENCH", parent["ts"])
            await service.link_case(uow, creds.org_id, None, case.id, thread)
            await uow.commit()

        settings = BridgeSettings(slack_signing_secret=SECRET, slack_api_url=slack.url)
        bridge = build_bridge(ctx, settings, api=SlackWebApi(slack.url), box=box, poll_s=0.05)
        stop = asyncio.Event()
        worker = asyncio.create_task(bridge.worker.run(stop))
        http = uvicorn.Server(uvicorn.Config(bridge.app, host="127.0.0.1", port=0, log_level="warning"))
        http.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        serving = asyncio.create_task(http.serve())
        while not http.started:
            await asyncio.sleep(0.05)
        http_port = http.servers[0].sockets[0].getsockname()[1]
        grpc_srv, grpc_port = chat_server(ctx, "127.0.0.1:0", settings=settings)
        await grpc_srv.start()
        case_api = CaseApiThread(endpoints).start()

        # -- Slack events into the linked thread ---------------------------------------------------------
        bodies, sent_at, ack_ms = [], {}, []
        for n in range(args.events):
            said = slack.say(ws, "C0BENCH", "U0BOB", f"update {n}", thread_ts=parent["ts"])
            event = {
                "type": "message",
                "channel": "C0BENCH",
                "user": "U0BOB",
                "text": said["text"],
                "ts": said["ts"],
                "thread_ts": parent["ts"],
            }
            body = {"type": "event_callback", "team_id": team, "event_id": f"Ev{n:07d}", "event": event}
            bodies.append((said["ts"], json.dumps(body).encode()))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=30) as client:

            async def send(i: int) -> None:
                ts, body = bodies[i]
                headers = {**sign(SECRET, body), "Content-Type": "application/json"}
                sent_at[ts] = time.time()
                started = time.perf_counter()
                answer = await client.post("/slack/events", content=body, headers=headers)
                ack_ms.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, answer.text

            first_sent = time.time()
            await lanes(args.events, args.concurrency, send)
            while True:
                async with ctx.uow(read_only=True) as uow:
                    rows = (
                        await uow.execute(
                            sa.select(chat_excerpt_messages.c.message_id, chat_excerpt_messages.c.created_at).where(
                                chat_excerpt_messages.c.case_id == case.id
                            )
                        )
                    ).all()
                if len(rows) >= args.events:
                    break
                await asyncio.sleep(0.1)
        cell_ms = [(row.created_at.timestamp() - sent_at[row.message_id]) * 1000 for row in rows]
        last_cell = max(row.created_at.timestamp() for row in rows)
        slack_rate = args.events / (last_cell - first_sent)

        # -- the chat gRPC service directly --------------------------------------------------------------
        metadata = (("dd-api-key", creds.api_key), ("dd-application-key", creds.app_key))
        grpc_ms: list[float] = []
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = chat_grpc.ChatInteractionsServiceStub(channel)

            async def append(i: int) -> None:
                stamp = timestamp_pb2.Timestamp()
                stamp.FromDatetime(datetime.now(UTC))
                request = chat_pb.AppendExcerptRequest(
                    conversation=chat_pb.Conversation(
                        platform=chat_pb.CHAT_PLATFORM_SLACK, workspace_id=team, channel_id="C0GRPC"
                    ),
                    case_id_or_key=case.id,
                    messages=[
                        chat_pb.ChatMessage(
                            message_id=f"g{i}",
                            text=f"grpc {i}",
                            sent_at=stamp,
                            author=chat_pb.ChatUser(user_id="U0BOB", display_name="Bob"),
                        )
                    ],
                )
                started = time.perf_counter()
                await stub.AppendExcerpt(request, metadata=metadata)
                grpc_ms.append((time.perf_counter() - started) * 1000)

            grpc_elapsed = await lanes(args.events, args.concurrency, append)

        # -- the raw figure: case-api AddComment ----------------------------------------------------------
        comment_ms: list[float] = []
        async with grpc.aio.insecure_channel(f"127.0.0.1:{case_api.port}") as channel:
            api = case_api_pb2_grpc.CaseAPIStub(channel)

            async def comment(i: int) -> None:
                started = time.perf_counter()
                await api.AddComment(
                    case_api_pb2.AddCommentRequest(case_id_or_key=case.id, message=f"comment {i}"), metadata=metadata
                )
                comment_ms.append((time.perf_counter() - started) * 1000)

            comment_elapsed = await lanes(args.events, args.concurrency, comment)

        case_api.stop()
        await grpc_srv.stop(2)
        stop.set()
        http.should_exit = True
        await asyncio.gather(worker, serving)
        await bridge.close()
    await ctx.close()
    if args.postgres:  # the scratch databases go with the run
        for ep in endpoints.values():
            drop_postgres(args.postgres, ep.master)
    return {
        "bench": "chat",
        "database": "postgres" if args.postgres else "sqlite",
        "events": args.events,
        "concurrency": args.concurrency,
        "slack": {
            "ack_ms": summary(ack_ms),
            "event_to_cell_ms": summary(cell_ms),
            "excerpts_per_s": round(slack_rate, 1),
            "mean_event_to_cell_ms": round(statistics.fmean(cell_ms), 1),
        },
        "grpc": {"append_excerpt_ms": summary(grpc_ms), "excerpts_per_s": round(args.events / grpc_elapsed, 1)},
        "raw": {"case_api_comment_ms": summary(comment_ms), "comments_per_s": round(args.events / comment_elapsed, 1)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--postgres", help="admin DSN: run on fresh PostgreSQL databases instead of SQLite")
    result = asyncio.run(run(parser.parse_args()))
    result["peak_rss_mb"] = memory_column("chat interactions, case-api use cases, loopback Slack")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
