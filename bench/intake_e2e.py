"""Intake end to end: gRPC accept -> searchable, next to the raw producer and raw engine bulk rates.

usage: .venv/bin/python bench/intake_e2e.py [--intakes 2000] [--batch 100] [--concurrency 4]
       [--postgres ADMIN_DSN --bootstrap KAFKA --opensearch URL]

Everything runs on this machine: on embedded defaults (SQLite tenant database, embedded bus, embedded
search) in a temporary directory, or with the three real-engine options on PostgreSQL (fresh databases),
Kafka (a scratch namespace) and OpenSearch (a scratch index prefix). case-api gRPC runs in a thread of its
own, case-intake and case-indexer in this process. Prints one JSON object:

- e2e.accept_rate: intakes/s acknowledged by case-intake (SubmitBatch, `--concurrency` callers);
- e2e.searchable_rate: intakes/s from the first accept to the last case searchable;
- e2e.time_to_searchable_ms p50/p99: per intake, accept -> its document first seen by a search
  (the index is sampled every 20 ms, so add up to 20 ms of resolution);
- raw.producer_rate: 1 KiB messages/s published straight to the same bus (batches of 1000);
- raw.engine_bulk_rate: documents/s written straight to the search port (bulk_upsert of 500);
- engine_refresh_interval_ms: how long the engine may take to make a write searchable (0: at commit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import grpc
import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from casem.adapters.bus import Bus, OutgoingMessage
from casem.adapters.bus.embedded import EmbeddedBus
from casem.adapters.bus.kafka import KafkaBus
from casem.adapters.bus.namespace import NamespacedBus
from casem.adapters.search import EmbeddedSearch, OpenSearchSearch, SearchPort
from casem.adapters.storage.migrate import upgrade
from casem.adapters.storage.tables import cases
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.app.internal_auth import INTERNAL_TOKEN_ENV
from casem.app.projects.service import create_project
from casem.app.search.documents import iter_documents
from casem.proto_gen.casem.v1 import intake_pb2, types_pb2
from casem.proto_gen.casem.v1 import intake_service_pb2 as pb
from casem.proto_gen.casem.v1 import intake_service_pb2_grpc as pb_grpc
from casem.services.case_api.grpc.server import create_bound_server
from casem.services.case_indexer.indexer import IndexerSettings, run_indexer
from casem.services.case_intake.server import create_intake_server, ensure_intake_topic
from casem.topology.tenants import CASE_MANAGEMENT, TENANTS, DatabaseEndpoints, to_async_dsn


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class CaseApiThread:
    def __init__(self, endpoints: dict[str, DatabaseEndpoints]) -> None:
        self.endpoints = endpoints
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stopping: asyncio.Event | None = None
        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(self._serve()), daemon=True)

    async def _serve(self) -> None:
        context = AppContext.open(self.endpoints)
        server, self.port = create_bound_server(context, "127.0.0.1:0")
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


async def raw_producer_rate(bus: Bus, n: int) -> float:
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    await bus.ensure_topic(topic, 8)
    producer = bus.producer()
    value = b"x" * 1024
    started = time.perf_counter()
    for start in range(0, n, 1000):
        await producer.publish_batch(
            [OutgoingMessage(topic, str(i).encode(), value) for i in range(start, min(n, start + 1000))]
        )
    elapsed = time.perf_counter() - started
    await producer.close()
    return n / elapsed


async def raw_engine_rate(search: SearchPort, template: dict[str, object], n: int) -> float:
    await search.ensure_index(CASE_MANAGEMENT)
    docs = [{**template, "id": str(uuid.uuid4()), "key": f"RAW-{i}", "title": f"raw {i}"} for i in range(n)]
    started = time.perf_counter()
    for start in range(0, n, 500):
        await search.bulk_upsert(CASE_MANAGEMENT, docs[start : start + 500])
    elapsed = time.perf_counter() - started
    await search.drop(CASE_MANAGEMENT)
    await search.close()
    return n / elapsed


def _fresh_postgres(admin: str, label: str) -> str:
    name = f"casem_bench_{label.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(to_async_dsn(admin)).set(database=name).render_as_string(hide_password=False)


async def run(args: argparse.Namespace) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="casem-bench-intake-"))
    real = bool(args.postgres)
    if real:
        endpoints = {t.name: DatabaseEndpoints(master=_fresh_postgres(args.postgres, t.name)) for t in TENANTS}
        for ep in endpoints.values():
            upgrade(ep.master)
    else:
        endpoints = {t.name: DatabaseEndpoints(master=f"sqlite+aiosqlite:///{tmp / (t.name + '.db')}") for t in TENANTS}
    token = uuid.uuid4().hex
    os.environ[INTERNAL_TOKEN_ENV] = token
    api = CaseApiThread(endpoints).start()
    context = AppContext.open(endpoints, migrate=False)
    async with context.uow() as uow:
        creds = await bootstrap_org(uow, "bench", "bench@example.com")
        await uow.commit()
    async with context.uow() as uow:
        project = await create_project(uow, creds.org_id, creds.user_id, key="BENCH", name="Bench")
        await uow.commit()
    metadata = (("dd-api-key", creds.api_key), ("dd-application-key", creds.app_key))

    bus: Bus
    if real:
        bus = NamespacedBus(KafkaBus(args.bootstrap), f"bench-{uuid.uuid4().hex[:8]}")
        prefix = f"bench{uuid.uuid4().hex[:8]}-"
        search: SearchPort = OpenSearchSearch(args.opensearch, index_prefix=prefix, write_refresh="wait_for")
        refresh_ms = 1000  # OpenSearch's default index.refresh_interval; the indexer writes with wait_for
    else:
        bus = EmbeddedBus(tmp / "bus.db")
        search = EmbeddedSearch(tmp / "search")
        refresh_ms = 0  # the embedded index is searchable at commit
    await ensure_intake_topic(bus)
    await search.ensure_index(CASE_MANAGEMENT)  # the sampler searches before the indexer's first write
    producer = bus.producer()
    intake = create_intake_server(context, producer, "127.0.0.1:0")
    await intake.server.start()
    stop = asyncio.Event()
    indexer = asyncio.create_task(
        run_indexer(
            context, bus, f"127.0.0.1:{api.port}", search=search, token=token, settings=IndexerSettings(), stop=stop
        )
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{intake.port}")
    stub = pb_grpc.CaseIntakeServiceStub(channel)

    accepted: dict[str, float] = {}
    seen: dict[str, float] = {}
    keys = [f"bench-{i}" for i in range(args.intakes)]
    batches = [keys[i : i + args.batch] for i in range(0, len(keys), args.batch)]
    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)

    async def caller() -> None:
        while not queue.empty():
            batch = queue.get_nowait()
            request = pb.SubmitBatchRequest(
                intakes=[
                    intake_pb2.CaseIntake(
                        schema_version=1,
                        intake_key=k,
                        project_id=project.id,
                        title=k,
                        description="benchmark intake",
                        priority=types_pb2.CASE_PRIORITY_P3,
                    )
                    for k in batch
                ]
            )
            await stub.SubmitBatch(request, metadata=metadata)
            now = time.perf_counter()
            for k in batch:
                accepted[k] = now

    async def sampler() -> None:
        while len(seen) < args.intakes:
            ids = await search.all_checksums(CASE_MANAGEMENT, creds.org_id)
            now = time.perf_counter()
            for case_id in ids:
                seen.setdefault(case_id, now)
            await asyncio.sleep(0.02)

    sampling = asyncio.create_task(sampler())
    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(args.concurrency)))
    accept_elapsed = time.perf_counter() - started
    await asyncio.wait_for(sampling, 600)
    searchable_elapsed = max(seen.values()) - started

    async with context.uow(read_only=True) as uow:
        by_case = dict(
            (await uow.execute(sa.select(cases.c.id, cases.c.intake_key).where(cases.c.org_id == creds.org_id))).all()
        )
        template = dict(await anext(iter_documents(uow, creds.org_id)))
    latencies = [(seen[case_id] - accepted[by_case[case_id]]) * 1000 for case_id in seen]

    stop.set()
    await indexer
    await channel.close()
    await intake.stop(2)
    await producer.close()
    raw_producer = await raw_producer_rate(bus, args.intakes)
    raw_search: SearchPort = (
        OpenSearchSearch(args.opensearch, index_prefix=f"raw{uuid.uuid4().hex[:8]}-")
        if real
        else EmbeddedSearch(tmp / "raw-search")
    )
    raw_engine = await raw_engine_rate(raw_search, template, args.intakes)
    if real:
        await search.drop(CASE_MANAGEMENT)
    await search.close()
    await bus.close()
    await context.close()
    api.stop()
    return {
        "intakes": args.intakes,
        "batch": args.batch,
        "concurrency": args.concurrency,
        "backend": "Kafka + PostgreSQL + OpenSearch" if real else "embedded bus + SQLite + embedded search",
        "engine_refresh_interval_ms": refresh_ms,
        "e2e": {
            "accept_rate": round(args.intakes / accept_elapsed, 1),
            "searchable_rate": round(args.intakes / searchable_elapsed, 1),
            "time_to_searchable_ms": {
                "p50": round(statistics.median(latencies), 1),
                "p99": round(percentile(latencies, 99), 1),
            },
        },
        "raw": {"producer_rate": round(raw_producer, 1), "engine_bulk_rate": round(raw_engine, 1)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intakes", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--postgres", help="admin DSN: run on PostgreSQL (with --bootstrap and --opensearch)")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers")
    parser.add_argument("--opensearch", help="OpenSearch URL")
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
