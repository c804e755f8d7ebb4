"""Intake end to end: gRPC accept -> searchable, next to the raw producer and raw engine bulk rates.

usage: .venv/bin/python bench/intake_e2e.py [--intakes 2000] [--batch 100] [--concurrency 4]
       [--sustain-seconds 60] [--rate R]
       [--postgres ADMIN_DSN --bootstrap KAFKA --opensearch URL] [--no-flavor]

Everything runs on this machine: on embedded defaults (SQLite tenant database, embedded bus, embedded
search) in a temporary directory, or with the three real-engine options on PostgreSQL (fresh databases,
dropped afterwards), Kafka (a scratch namespace, its topics deleted afterwards) and OpenSearch (a scratch index
prefix, its indexes dropped afterwards).
case-api, case-intake and case-indexer each run as a process of their own (`casem run`), as deployed, and so do
case-event-relay and the search-indexing flavor of case-event-handler, which also write every case's document
(`--no-flavor` leaves those two out, as this bench did before); this process submits intakes and watches the index.
Prints one JSON object:

- backlog: `--intakes` submitted as fast as case-intake takes them (SubmitBatch of `--batch`, `--concurrency`
  callers): accept_rate, created_rate (first accept -> last case created, the database's clock), searchable_rate
  (first accept -> last case searchable), time_to_searchable_ms p50/p99 (per intake, accept -> its document first
  seen in the index, which is watched every 10 ms embedded and 50 ms on OpenSearch), and searchable_to_raw_bulk =
  searchable_rate / raw.engine_bulk_rate;
- indexer_stages (each phase): per stage of case-indexer (ingest = the IngestCases call, read = the enriched
  read of a batch's cases, write = the bulk write to the engine), from its /metrics: batches, mean batch size,
  seconds busy and items per busy second (one batch at a time; stages keep several batches in flight);
  accept_to_written: p50/p99 from case-intake's acknowledgement to the indexer's write, as histogram buckets;
- flavor (each phase, unless --no-flavor): the search-indexing flavor's events by outcome, its busy seconds (per-event
  effects and batch applies), events per busy second, documents written or found current (not written), and
  drain_s: how long after the phase's last intake was searchable the flavor went quiet (it was behind by that much);
- relay (each phase, unless --no-flavor): case-event-relay's passes, events published, busy seconds and mean pass
  (claim, publish, mark; on SQLite a pass holds the tenant database's write lock only while it marks);
- sustained (with `--sustain-seconds` > 0): intakes offered at `--rate` per second (default: half the backlog's
  searchable_rate) for that long, not as a backlog: time_to_searchable_ms p50/p99/max against the goal
  (embedded 200 ms; OpenSearch its refresh interval + 500 ms);
- raw.producer_rate: 1 KiB messages/s published straight to the same bus (batches of 1000);
- raw.engine_bulk_rate: documents/s written straight to the search port (bulk_upsert of 500);
- engine_writes (each phase, OpenSearch): the engine's own count of documents indexed and of writes it turned away
  (version conflicts), documents indexed per intake (1: each case's document indexed once; 2: twice), the shard's
  refreshes (all, and the periodic ones) and real-time gets (the flavor's version reads);
- cpu (each phase): CPU seconds each casem service, each real engine (PostgreSQL with its backends, Kafka,
  OpenSearch: the processes listening on the given ports) and this process used from the phase's first submit to
  its last intake searchable, their total, and the total per intake: where the machine's two cores went;
- services: per process, peak RSS (VmHWM) and CPU seconds used over the run;
- raw.engine_bulk_cpu_s_per_1000_docs: the engine's CPU per 1,000 documents of the raw bulk (OpenSearch's process;
  embedded: this process, where the engine runs), beside the phase's engine CPU per intake;
- load_average at the start and at the end (this machine is shared: compare ratios, not absolute rates).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import grpc
import httpx
import sqlalchemy as sa
from _support import (
    Service,
    bench_org_and_project,
    cpu_seconds,
    drop_kafka_namespace,
    drop_postgres,
    free_port,
    fresh_postgres,
    listening_pid,
    load_average,
    peak_rss_mb,
    tree_cpu_seconds,
)
from sqlalchemy.engine import make_url

from casem.adapters.bus import Bus, OutgoingMessage
from casem.adapters.bus.embedded import EmbeddedBus
from casem.adapters.bus.kafka import KafkaBus
from casem.adapters.bus.namespace import NamespacedBus
from casem.adapters.search import EmbeddedSearch, OpenSearchSearch, SearchPort
from casem.adapters.storage.migrate import upgrade
from casem.adapters.storage.tables import cases
from casem.app.context import AppContext
from casem.app.internal_auth import INTERNAL_TOKEN_ENV
from casem.app.search.documents import iter_documents
from casem.proto_gen.casem.v1 import intake_pb2, types_pb2
from casem.proto_gen.casem.v1 import intake_service_pb2 as pb
from casem.proto_gen.casem.v1 import intake_service_pb2_grpc as pb_grpc
from casem.services.case_intake.server import ensure_intake_topic
from casem.topology.tenants import CASE_MANAGEMENT, TENANTS, DatabaseEndpoints, tenant

EMBEDDED_GOAL_MS = 200.0
OPENSEARCH_REFRESH_MS = 1000.0  # OpenSearch's default index.refresh_interval: a written document is searchable after it


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def latency_summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    return {
        "p50": round(statistics.median(values), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values), 1),
    }


class EmbeddedWatch:
    """New documents of the org in the embedded index (the file the indexer writes), read incrementally: each poll
    reads the rows after the last one seen, by row id. (`+org_id` keeps SQLite off the index on org_id, which it
    otherwise took to read every row of the org and sort them, each poll: at 100 polls a second the watcher spent
    more CPU than case-intake, on the same two cores as the services it was timing.)"""

    interval_s = 0.01

    def __init__(self, path: Path, org_id: str) -> None:
        self.conn = sqlite3.connect(path)
        self.org_id = org_id
        self.after = 0

    async def new(self) -> list[tuple[str, str]]:
        row = self.conn.execute("SELECT value FROM meta WHERE name = 'alias'").fetchone()
        if row is None:
            return []
        table = "cases_" + row[0].rsplit("-v", 1)[1]
        rows = self.conn.execute(
            f"SELECT rid, id, json_extract(doc, '$.title') FROM {table} WHERE rid > ? AND +org_id = ? ORDER BY rid",
            (self.after, self.org_id),
        ).fetchall()
        if rows:
            self.after = rows[-1][0]
        return [(case_id, title) for _, case_id, title in rows]

    async def engine_writes(self) -> dict[str, int] | None:
        return None  # the embedded index keeps no write counts

    async def close(self) -> None:
        self.conn.close()


class OpenSearchWatch:
    """New documents of the org in OpenSearch, read incrementally by sequence number, as the embedded watcher reads by
    row id: each poll asks only for documents above the watermark (every sequence number at or below it was seen).

    The index has one primary shard (casem's mapping), so sequence numbers order its writes. A write becomes visible
    at a refresh, and two bulks in flight may be refreshed out of order: the watermark stays below a sequence
    number not seen yet, and passes it once it has been missing for `gap_s` (a number no document shows: a write
    the engine turned away, say). An earlier version asked every 50 ms for all documents created since the oldest
    accepted intake not yet seen, up to 10,000 hits a poll: under a backlog the engine spent more CPU answering the
    watcher than indexing (9.5 CPU seconds for 10,000 documents against 3.2 for the raw bulk of as many)."""

    interval_s = 0.05
    gap_s = 30.0  # far beyond a bulk's time in flight, even on a busy machine

    def __init__(self, url: str, alias: str, org_id: str) -> None:
        self.http = httpx.AsyncClient(base_url=url, timeout=30)
        self.alias = alias
        self.org_id = org_id
        self.watermark = -1
        self.above: set[int] = set()  # seen sequence numbers above the watermark
        self.gap_since: float | None = None

    async def new(self) -> list[tuple[str, str]]:
        body = {
            "size": 10_000,
            "_source": ["id", "title"],
            "seq_no_primary_term": True,
            "sort": [{"_seq_no": "asc"}],
            "query": {
                "bool": {"filter": [{"term": {"org_id": self.org_id}}, {"range": {"_seq_no": {"gt": self.watermark}}}]}
            },
        }
        response = await self.http.post(f"/{self.alias}/_search", json=body)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        found = []
        for hit in response.json()["hits"]["hits"]:
            if hit["_seq_no"] not in self.above:
                self.above.add(hit["_seq_no"])
                found.append((hit["_source"]["id"], hit["_source"]["title"]))
        self._advance()
        return found

    def _advance(self) -> None:
        while self.watermark + 1 in self.above:
            self.watermark += 1
            self.above.discard(self.watermark)
        if not self.above:
            self.gap_since = None
        elif self.gap_since is None:
            self.gap_since = time.monotonic()
        elif time.monotonic() - self.gap_since > self.gap_s:  # a number no document will show: pass it
            self.watermark = min(self.above) - 1
            self.gap_since = None
            self._advance()

    async def engine_writes(self) -> dict[str, int] | None:
        """The engine's own write counts on the index: documents indexed (each write of a document, a rewrite of an
        unchanged one too) and writes it turned away (a version conflict: a stale or, for writers that keep an equal
        version, a repeated write)."""
        response = await self.http.get(f"/{self.alias}/_stats/indexing,refresh,get")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        stats = response.json()["_all"]["primaries"]
        return {
            "indexed": stats["indexing"]["index_total"],
            "turned_away": stats["indexing"]["index_failed"],
            # Refreshes of the shard: the periodic ones searches see, and all (a real-time get of a document written
            # since the last one refreshes the shard's internal reader first).
            "refreshes": stats["refresh"]["total"],
            "periodic_refreshes": stats["refresh"].get("external_total", 0),
            "gets": stats["get"]["total"],
        }

    async def close(self) -> None:
        await self.http.aclose()


class Tracker:
    """Accept and first-seen times of each intake (keys are the case titles)."""

    def __init__(self) -> None:
        self.accepted: dict[str, float] = {}
        self.seen: dict[str, float] = {}

    def accept(self, keys: list[str]) -> None:
        now = time.perf_counter()
        for k in keys:
            self.accepted[k] = now

    def latencies_ms(self, keys: list[str]) -> list[float]:
        return [(self.seen[k] - self.accepted[k]) * 1000 for k in keys if k in self.seen and k in self.accepted]


async def watch(watcher: EmbeddedWatch | OpenSearchWatch, tracker: Tracker, stop: asyncio.Event) -> None:
    while not stop.is_set():
        for _, key in await watcher.new():
            tracker.seen.setdefault(key, time.perf_counter())
        await asyncio.sleep(watcher.interval_s)


async def wait_seen(tracker: Tracker, keys: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(k not in tracker.seen for k in keys[-50:]) or any(k not in tracker.seen for k in keys):
        if time.monotonic() > deadline:
            missing = sum(k not in tracker.seen for k in keys)
            raise TimeoutError(f"{missing} of {len(keys)} intakes not searchable after {timeout}s")
        await asyncio.sleep(0.05)


class CpuMeter:
    """CPU seconds used so far by each casem service, by each real engine (found by the port it listens on:
    PostgreSQL with its backends, Kafka, OpenSearch) and by this process (submitting, watching, and on the
    embedded run the raw figures' engine), so that a phase can say where its CPU went."""

    def __init__(self, services: list[Service], engine_ports: dict[str, int]) -> None:
        self.services = services
        self.engines = {name: pid for name, port in engine_ports.items() if (pid := listening_pid(port)) is not None}

    def snapshot(self) -> dict[str, float]:
        figures = {s.name: s.cpu_seconds() for s in self.services}
        for name, pid in self.engines.items():
            used = tree_cpu_seconds(pid)
            if used is not None:
                figures[name] = used
        figures["bench"] = cpu_seconds()
        return figures

    @staticmethod
    def phase(before: dict[str, float], after: dict[str, float], intakes: int) -> dict[str, object]:
        used = {name: round(after[name] - before[name], 2) for name in after if name in before}
        total = sum(used.values())
        return {
            "cpu_s": used,
            "cpu_s_total": round(total, 2),
            "cpu_us_per_intake": round(total * 1e6 / intakes, 1) if intakes else None,
        }


@dataclass(frozen=True)
class Probe:
    """Where a phase reads its stage figures: the indexer's ops port, the tenant database, the org."""

    indexer_ops: int
    context: AppContext
    org_id: str
    flavor_ops: int | None = None
    relay_ops: int | None = None
    watcher: EmbeddedWatch | OpenSearchWatch | None = None
    meter: CpuMeter | None = None


def intake_request(keys: list[str], project_id: str) -> pb.SubmitBatchRequest:
    return pb.SubmitBatchRequest(
        intakes=[
            intake_pb2.CaseIntake(
                schema_version=1,
                intake_key=k,
                project_id=project_id,
                title=k,
                description="benchmark intake",
                priority=types_pb2.CASE_PRIORITY_P3,
            )
            for k in keys
        ]
    )


async def backlog(stub: pb_grpc.CaseIntakeServiceStub, metadata, project_id, tracker, args, probe) -> dict[str, object]:  # type: ignore[no-untyped-def]
    keys = [f"backlog-{i}" for i in range(args.intakes)]
    stages_before = await indexer_stages(probe.indexer_ops)
    flavor_before = await flavor_figures(probe.flavor_ops)
    relay_before = await relay_figures(probe.relay_ops)
    writes_before = await engine_writes(probe)
    queue: asyncio.Queue[list[str]] = asyncio.Queue()
    for start in range(0, len(keys), args.batch):
        queue.put_nowait(keys[start : start + args.batch])

    async def caller() -> None:
        while not queue.empty():
            batch = queue.get_nowait()
            await stub.SubmitBatch(intake_request(batch, project_id), metadata=metadata)
            tracker.accept(batch)

    cpu_before = probe.meter.snapshot() if probe.meter else None
    started, started_wall = time.perf_counter(), time.time()
    await asyncio.gather(*(caller() for _ in range(args.concurrency)))
    accept_elapsed = time.perf_counter() - started
    await wait_seen(tracker, keys, 900)
    searchable_elapsed = max(tracker.seen[k] for k in keys) - started
    cpu = CpuMeter.phase(cpu_before, probe.meter.snapshot(), len(keys)) if probe.meter and cpu_before else None
    flavor = await flavor_phase(probe.flavor_ops, flavor_before)
    writes = write_delta(writes_before, await engine_writes(probe), len(keys))
    return {
        "intakes": args.intakes,
        "accept_rate": round(args.intakes / accept_elapsed, 1),
        "created_rate": await created_rate(probe.context, probe.org_id, "backlog-", started_wall),
        "searchable_rate": round(args.intakes / searchable_elapsed, 1),
        "time_to_searchable_ms": latency_summary(tracker.latencies_ms(keys)),
        "indexer_stages": stage_delta(stages_before, await indexer_stages(probe.indexer_ops)),
        "flavor": flavor,
        "relay": relay_phase(relay_before, await relay_figures(probe.relay_ops)),
        "engine_writes": writes,
        "cpu": cpu,
    }


async def sustained(stub, metadata, project_id, tracker, rate: float, seconds: float, probe) -> dict[str, object]:  # type: ignore[no-untyped-def]
    stages_before = await indexer_stages(probe.indexer_ops)
    flavor_before = await flavor_figures(probe.flavor_ops)
    relay_before = await relay_figures(probe.relay_ops)
    writes_before = await engine_writes(probe)
    batch = max(1, round(rate / 50))  # about 50 submits a second
    interval = batch / rate
    keys: list[str] = []
    in_flight: set[asyncio.Task[None]] = set()
    late = 0

    async def submit(chunk: list[str]) -> None:
        await stub.SubmitBatch(intake_request(chunk, project_id), metadata=metadata)
        tracker.accept(chunk)

    cpu_before = probe.meter.snapshot() if probe.meter else None
    started = time.perf_counter()
    i = 0
    while (now := time.perf_counter()) - started < seconds:
        due = started + i * interval
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > interval:
            late += 1  # this process fell behind its own schedule (it is counted, not hidden)
        chunk = [f"steady-{i}-{j}" for j in range(batch)]
        keys += chunk
        task = asyncio.create_task(submit(chunk))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
        i += 1
    offered_elapsed = time.perf_counter() - started
    await asyncio.gather(*in_flight)
    await wait_seen(tracker, keys, 600)
    cpu = CpuMeter.phase(cpu_before, probe.meter.snapshot(), len(keys)) if probe.meter and cpu_before else None
    flavor = await flavor_phase(probe.flavor_ops, flavor_before)
    writes = write_delta(writes_before, await engine_writes(probe), len(keys))
    return {
        "offered_rate": round(rate, 1),
        "seconds": seconds,
        "intakes": len(keys),
        "achieved_offer_rate": round(len(keys) / offered_elapsed, 1),
        "submits_behind_schedule": late,
        "time_to_searchable_ms": latency_summary(tracker.latencies_ms(keys)),
        "indexer_stages": stage_delta(stages_before, await indexer_stages(probe.indexer_ops)),
        "flavor": flavor,
        "relay": relay_phase(relay_before, await relay_figures(probe.relay_ops)),
        "engine_writes": writes,
        "cpu": cpu,
    }


async def indexer_stages(ops_port: int) -> dict[str, dict[str, float]]:
    """The indexer's stage counters from its /metrics: per stage, batches, items and seconds spent."""
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"http://127.0.0.1:{ops_port}/metrics")).text
    stages: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "casem_indexer_accept_to_searchable_seconds_bucket":
                # Accepted -> written (searchable at the engine's next refresh), as cumulative bucket counts.
                le = sample.labels["le"]
                stages.setdefault("accept_to_written", {})[le] = sample.value
                continue
            stage = sample.labels.get("stage")
            if stage is None:
                continue
            entry = stages.setdefault(stage, {"batches": 0.0, "items": 0.0, "busy_s": 0.0})
            if sample.name == "casem_indexer_stage_seconds_count":
                entry["batches"] = sample.value
            elif sample.name == "casem_indexer_stage_seconds_sum":
                entry["busy_s"] = sample.value
            elif sample.name == "casem_indexer_stage_items_total":
                entry["items"] = sample.value
    return stages


FLAVOR = "search-indexing"


async def flavor_figures(ops_port: int | None) -> dict[str, float] | None:
    """The search-indexing flavor's counters from its /metrics (names absent from a build count as 0)."""
    if ops_port is None:
        return None
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"http://127.0.0.1:{ops_port}/metrics")).text
    figures: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("flavor", FLAVOR) != FLAVOR:
                continue
            if sample.name == "casem_handler_events_total":
                figures[f"events_{labels['outcome']}"] = sample.value
            elif sample.name in ("casem_handler_effect_seconds_count", "casem_handler_effect_seconds_sum"):
                figures["effects" if sample.name.endswith("count") else "effect_s"] = sample.value
            elif sample.name in ("casem_handler_batch_seconds_count", "casem_handler_batch_seconds_sum"):
                figures["batches" if sample.name.endswith("count") else "batch_s"] = sample.value
            elif sample.name == "casem_handler_batch_events_total":
                figures["batch_events"] = sample.value
            elif sample.name == "casem_search_indexing_documents_total":
                figures[f"documents_{labels['outcome']}"] = sample.value
    return figures


async def relay_figures(ops_port: int | None) -> dict[str, float] | None:
    """case-event-relay's pass counters from its /metrics: passes (claim, publish, mark), their seconds, events."""
    if ops_port is None:
        return None
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"http://127.0.0.1:{ops_port}/metrics")).text
    names = {
        "casem_relay_pass_seconds_count": "passes",
        "casem_relay_pass_seconds_sum": "pass_s",
        "casem_relay_published_total": "events",
    }
    figures: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in names and sample.labels.get("tenant") == CASE_MANAGEMENT:
                figures[names[sample.name]] = sample.value
    return figures


def relay_phase(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, object] | None:
    """The relay over one phase (read when the phase's intakes are all searchable: its events may still be going
    out). A pass is its claim, publish and mark; on SQLite it used to hold the tenant database's write lock for all
    of it (busy_s was then how long case-api's writes could not commit), it now holds it only to mark."""
    if before is None or after is None:
        return None
    grown = {k: v - before.get(k, 0.0) for k, v in after.items()}
    passes = grown.get("passes", 0.0)
    return {
        "passes": int(passes),
        "events": int(grown.get("events", 0.0)),
        "busy_s": round(grown.get("pass_s", 0.0), 3),
        "mean_pass_ms": round(1000 * grown.get("pass_s", 0.0) / passes, 2) if passes else None,
    }


async def flavor_phase(ops_port: int | None, before: dict[str, float] | None) -> dict[str, object] | None:
    """The flavor over one phase, once it went quiet (no event handled for 2 s; at most 120 s after the phase: a
    drain_s of 120 means it was still behind then)."""
    if ops_port is None or before is None:
        return None
    started = time.perf_counter()
    now = await flavor_figures(ops_port)
    quiet_since = time.perf_counter()
    while time.perf_counter() - quiet_since < 2.0 and time.perf_counter() - started < 120:
        await asyncio.sleep(0.25)
        later = await flavor_figures(ops_port)
        if later != now:
            now, quiet_since = later, time.perf_counter()
    assert now is not None
    grown = {k: v - before.get(k, 0.0) for k, v in now.items()}
    busy = grown.get("effect_s", 0.0) + grown.get("batch_s", 0.0)
    events = sum(v for k, v in grown.items() if k in ("events_applied", "events_duplicate"))
    return {
        "events": {k.removeprefix("events_"): int(v) for k, v in grown.items() if k.startswith("events_") and v},
        "per_event_effects": int(grown.get("effects", 0)),
        "batches": int(grown.get("batches", 0)),
        "mean_batch": round(grown["batch_events"] / grown["batches"], 1) if grown.get("batches") else None,
        "busy_s": round(busy, 3),
        "events_per_busy_s": round(events / busy, 1) if busy else None,
        "documents": {k.removeprefix("documents_"): int(v) for k, v in grown.items() if k.startswith("documents_")},
        "drain_s": round(max(0.0, quiet_since - started), 2),
    }


async def engine_writes(probe: Probe) -> dict[str, int] | None:
    return await probe.watcher.engine_writes() if probe.watcher is not None else None


def write_delta(before: dict[str, int] | None, after: dict[str, int] | None, intakes: int) -> dict[str, object] | None:
    """The engine's writes over one phase (read once the flavor went quiet): documents indexed per intake is 1 when
    every case's document was indexed once, 2 when the indexer and the flavor both wrote each."""
    if before is None or after is None:
        return None
    grown = {k: after[k] - before[k] for k in after}
    return {**grown, "indexed_per_intake": round(grown["indexed"] / intakes, 2) if intakes else None}


def stage_delta(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]) -> dict[str, object]:
    """Per stage over one phase: batches, mean batch size, seconds busy, items per busy second (one batch at a
    time: a stage with several batches in flight goes up to that many times faster)."""
    out: dict[str, object] = {}
    for stage, now in after.items():
        if stage == "accept_to_written":
            out[stage] = bucket_percentiles(before.get(stage, {}), now)
            continue
        was = before.get(stage, {"batches": 0.0, "items": 0.0, "busy_s": 0.0})
        batches, items, busy = (now[k] - was[k] for k in ("batches", "items", "busy_s"))
        out[stage] = {
            "batches": int(batches),
            "mean_batch": round(items / batches, 1) if batches else None,
            "busy_s": round(busy, 3),
            "items_per_busy_s": round(items / busy, 1) if busy else None,
        }
    return out


def bucket_percentiles(before: dict[str, float], after: dict[str, float]) -> dict[str, str]:
    """p50 and p99 over one phase of a cumulative histogram, as the bucket they fall in ("<= 0.5 s")."""
    bounds = sorted(after, key=lambda le: float("inf") if le == "+Inf" else float(le))
    counts = [(le, after[le] - before.get(le, 0.0)) for le in bounds]
    total = counts[-1][1] if counts else 0.0
    found: dict[str, str] = {}
    for name, share in (("p50", 0.5), ("p99", 0.99)):
        le = next((le for le, n in counts if total and n >= share * total), None)
        found[name] = f"<= {le} s" if le is not None else "none"
    return found


async def created_rate(context: AppContext, org_id: str, prefix: str, started_wall: float) -> float | None:
    """Cases of the phase created per second, from its first accept to the last creation (the database's time)."""
    async with context.uow(read_only=True) as uow:
        last, n = (
            await uow.execute(
                sa.select(sa.func.max(cases.c.created_at), sa.func.count()).where(
                    cases.c.org_id == org_id, cases.c.title.like(f"{prefix}%")
                )
            )
        ).one()
    if not n or last is None:
        return None
    last_s = (last if last.tzinfo else last.replace(tzinfo=UTC)).timestamp()
    return round(n / max(last_s - started_wall, 1e-3), 1)


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


async def raw_engine_rate(
    search: SearchPort, template: dict[str, object], n: int, engine_pid: int | None
) -> tuple[float, float | None]:
    """Documents/s of the raw bulk, and the engine's CPU seconds per 1,000 documents meanwhile (OpenSearch's
    process; the embedded engine runs in this one)."""
    await search.ensure_index(CASE_MANAGEMENT)
    docs = [{**template, "id": str(uuid.uuid4()), "key": f"RAW-{i}", "title": f"raw {i}"} for i in range(n)]
    cpu_before = tree_cpu_seconds(engine_pid) if engine_pid else cpu_seconds()
    started = time.perf_counter()
    for start in range(0, n, 500):
        await search.bulk_upsert(CASE_MANAGEMENT, docs[start : start + 500])
    elapsed = time.perf_counter() - started
    cpu_after = tree_cpu_seconds(engine_pid) if engine_pid else cpu_seconds()
    await search.drop(CASE_MANAGEMENT)
    await search.close()
    per_1000 = None if cpu_before is None or cpu_after is None else round((cpu_after - cpu_before) * 1000 / n, 3)
    return n / elapsed, per_1000


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    """One run in the scratch directory `tmp` (the embedded engines' files, the raw figures' embedded index)."""
    load_before = load_average()
    real = bool(args.postgres)
    if real:
        endpoints = {t.name: DatabaseEndpoints(master=fresh_postgres(args.postgres, t.name)) for t in TENANTS}
    else:
        endpoints = {t.name: DatabaseEndpoints(master=f"sqlite+aiosqlite:///{tmp / (t.name + '.db')}") for t in TENANTS}
    for ep in endpoints.values():
        upgrade(ep.master)
    token = uuid.uuid4().hex
    context = AppContext.open(endpoints, migrate=False)
    creds, project = await bench_org_and_project(context, key="BENCH", name="Bench")
    metadata = (("dd-api-key", creds.api_key), ("dd-application-key", creds.app_key))

    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEM_")}
    env.update({f"{t.env_prefix}_DSN": endpoints[t.name].master for t in TENANTS})
    env.update(
        {
            "CASEM_DATA_DIR": str(tmp / "data"),
            INTERNAL_TOKEN_ENV: token,
            "CASEM_MIGRATE_ON_START": "0",
            "CASEM_HOST": "127.0.0.1",
            "CASEM_LOG_LEVEL": "warning",
        }
    )
    bus: Bus
    engine_ports: dict[str, int] = {}
    if real:
        engine_ports = {
            "postgres": make_url(args.postgres).port or 5432,
            "kafka": int(args.bootstrap.split(",")[0].rsplit(":", 1)[1]),
            "opensearch": httpx.URL(args.opensearch).port or 9200,
        }
        namespace = f"bench-{uuid.uuid4().hex[:8]}"
        bus = NamespacedBus(KafkaBus(args.bootstrap), namespace)
        prefix = f"bench{uuid.uuid4().hex[:8]}-"
        env.update(
            {
                "CASEM_KAFKA_BOOTSTRAP": args.bootstrap,
                "CASEM_BUS_NAMESPACE": namespace,
                "CASEM_SEARCH_URL": args.opensearch,
                "CASEM_SEARCH_INDEX_PREFIX": prefix,
            }
        )
        search: SearchPort = OpenSearchSearch(args.opensearch, index_prefix=prefix)
    else:
        env["CASEM_BUS_PATH"] = str(tmp / "bus.db")
        bus = EmbeddedBus(tmp / "bus.db")
        search = EmbeddedSearch(tmp / "data")
    await ensure_intake_topic(bus)
    await search.ensure_index(CASE_MANAGEMENT)  # the watcher reads before the indexer's first write

    api_grpc, intake_grpc = free_port(), free_port()
    services = [
        Service(
            "case-api",
            {**env, "CASEM_GRPC_PORT": str(api_grpc), "CASEM_HTTP_PORT": str(free_port())},
            ready_port=api_grpc,
        ),
        Service(
            "case-intake",
            {**env, "CASEM_GRPC_PORT": str(intake_grpc), "CASEM_OPS_PORT": str(free_port())},
            ready_port=intake_grpc,
        ),
    ]
    indexer_ops = free_port()
    services.append(
        Service(
            "case-indexer",
            {**env, "CASEM_CASE_API_GRPC": f"127.0.0.1:{api_grpc}", "CASEM_OPS_PORT": str(indexer_ops)},
            ready_port=indexer_ops,
        )
    )
    flavor_ops = free_port() if args.flavor else None
    relay_ops = None
    if flavor_ops is not None:
        relay_ops = free_port()
        services.append(Service("case-event-relay", {**env, "CASEM_OPS_PORT": str(relay_ops)}, ready_port=relay_ops))
        services.append(
            Service(
                "case-event-handler",
                {**env, "CASEM_OPS_PORT": str(flavor_ops)},
                ready_port=flavor_ops,
                args=["--flavor", FLAVOR],
            )
        )
    tracker = Tracker()
    watcher: EmbeddedWatch | OpenSearchWatch = (
        OpenSearchWatch(
            args.opensearch,
            prefix + tenant(CASE_MANAGEMENT).search_alias,
            creds.org_id,
        )
        if real
        else EmbeddedWatch(tmp / "data" / f"search-{CASE_MANAGEMENT}.db", creds.org_id)
    )
    stop_watching = asyncio.Event()
    result: dict[str, object] = {
        "backend": "Kafka + PostgreSQL + OpenSearch" if real else "embedded bus + SQLite + embedded search",
        "engine_refresh_interval_ms": OPENSEARCH_REFRESH_MS if real else 0,
        "batch": args.batch,
        "concurrency": args.concurrency,
        "search_indexing_flavor": bool(args.flavor),
    }
    try:
        for service in services:
            service.start()
        cpu_at_start = {s.name: s.cpu_seconds() for s in services}
        watching = asyncio.create_task(watch(watcher, tracker, stop_watching))
        async with grpc.aio.insecure_channel(f"127.0.0.1:{intake_grpc}") as channel:
            stub = pb_grpc.CaseIntakeServiceStub(channel)
            # Warm-up: the indexer has joined its group and every connection is open before the clock starts.
            await stub.SubmitBatch(intake_request(["warm-up"], project.id), metadata=metadata)
            tracker.accept(["warm-up"])
            await wait_seen(tracker, ["warm-up"], 120)
            meter = CpuMeter(services, engine_ports)
            probe = Probe(indexer_ops, context, creds.org_id, flavor_ops, relay_ops, watcher, meter)
            result["backlog"] = await backlog(stub, metadata, project.id, tracker, args, probe)
            if args.sustain_seconds > 0:
                rate = args.rate or result["backlog"]["searchable_rate"] / 2  # type: ignore[index]
                steady = await sustained(stub, metadata, project.id, tracker, rate, args.sustain_seconds, probe)
                goal = OPENSEARCH_REFRESH_MS + 500 if real else EMBEDDED_GOAL_MS
                steady["goal_p99_ms"] = goal
                result["sustained"] = steady
        stop_watching.set()
        await watching
        result["services"] = {
            s.name: {"peak_rss_mb": s.peak_rss_mb(), "cpu_s": round(s.cpu_seconds() - cpu_at_start[s.name], 1)}
            for s in services
        }
    finally:
        for service in services:
            service.stop()
        await watcher.close()

    async with context.uow(read_only=True) as uow:
        created = await uow.scalar(sa.select(sa.func.count()).select_from(cases).where(cases.c.org_id == creds.org_id))
        template = dict(await anext(iter_documents(uow, creds.org_id)))
    expected = 1 + args.intakes + (result.get("sustained", {}).get("intakes", 0))  # type: ignore[union-attr]
    if created != expected:
        raise AssertionError(f"{created} cases for {expected} distinct intakes")
    raw_producer = await raw_producer_rate(bus, max(args.intakes, 2000))
    raw_search: SearchPort = (
        OpenSearchSearch(args.opensearch, index_prefix=f"raw{uuid.uuid4().hex[:8]}-")
        if real
        else EmbeddedSearch(tmp / "raw-search")
    )
    raw_engine, raw_engine_cpu = await raw_engine_rate(
        raw_search, template, max(args.intakes, 2000), meter.engines.get("opensearch")
    )
    if real:
        for t in TENANTS:  # each service made every tenant's index at start-up
            await search.drop(t.name)
    await search.close()
    await bus.close()
    await context.close()
    if real:
        for ep in endpoints.values():
            drop_postgres(args.postgres, ep.master)
        drop_kafka_namespace(args.bootstrap, namespace)
    result["raw"] = {
        "producer_rate": round(raw_producer, 1),
        "engine_bulk_rate": round(raw_engine, 1),
        "engine_bulk_cpu_s_per_1000_docs": raw_engine_cpu,
    }
    backlog_result = result["backlog"]
    backlog_result["searchable_to_raw_bulk"] = round(backlog_result["searchable_rate"] / raw_engine, 3)  # type: ignore[index]
    result["services"]["bench (watcher, raw figures)"] = {
        "peak_rss_mb": peak_rss_mb(),
        "cpu_s": round(cpu_seconds(), 1),
    }  # type: ignore[index]
    result["load_average"] = {"start": load_before, "end": load_average()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intakes", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--sustain-seconds", type=float, default=60.0, help="0: backlog only")
    parser.add_argument("--rate", type=float, default=None, help="sustained intakes/s (default: half the backlog's)")
    parser.add_argument("--postgres", help="admin DSN: run on PostgreSQL (with --bootstrap and --opensearch)")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers")
    parser.add_argument("--opensearch", help="OpenSearch URL")
    parser.add_argument(
        "--no-flavor", dest="flavor", action="store_false", help="without case-event-relay and search-indexing"
    )
    # Removed afterwards: the embedded bus, databases and indexes of one run take up to a gigabyte.
    with tempfile.TemporaryDirectory(prefix="casem-bench-intake-") as tmp:
        result = asyncio.run(run(parser.parse_args(), Path(tmp)))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
