"""Engines that fail and come back: under a bounded write load, PostgreSQL, Kafka, OpenSearch and Temporal are
stopped in turn (`scripts/services/<engine>.sh stop`), kept down, and started again.

The system under test is casem as deployed: case-api, case-intake, case-indexer, the relay, the search-indexing
flavor and the caseworker, each a `casem run` process, restarted when it exits (as Kubernetes would; restarts
are counted and printed). The engines are private instances (their own ports and data directories), so the
engines other suites use are never touched.

Checked: while its database is down the API answers 503 with Retry-After (never 500); case-intake answers
UNAVAILABLE (never INTERNAL) while it cannot store or publish, and what it acknowledged is never dropped;
every acknowledged write is present afterwards; the outbox and every consumer group drain with nothing
dead-lettered; `casem search verify` is clean; every acknowledged merge's workflow completed exactly once.

Runs in CI (.ci/run sets CASEM_REQUIRE_* for every engine) or with CASEM_OUTAGE_TEST=1. It takes about six
minutes: see OUTAGE_S.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest
import sqlalchemy as sa
from confluent_kafka import Consumer
from confluent_kafka import TopicPartition as KafkaPartition
from temporalio.client import Client, WorkflowExecutionStatus

from casem.adapters.storage.migrate import upgrade
from casem.adapters.storage.tables import case_merges, cases, domain_events, domain_events_pending
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.domain.merges import merge_workflow_id
from casem.proto_gen.casem.v1 import intake_pb2, intake_service_pb2_grpc, types_pb2
from casem.services.case_indexer.indexer import GROUP as INDEXER_GROUP
from casem.services.case_indexer.indexer import dead_letter_topic as intake_dead_letter_topic
from casem.topology.tenants import CASE_MANAGEMENT, TENANTS, DatabaseEndpoints
from casem.topology.topics import dead_letter_topic, domain_events_topic, handler_group, intake_topic
from tests.backends import required
from tests.outage.engines import ENGINES, ROOT, PrivateEngines
from tests.support.ports import free_port

# 45 s, not the 60 s first asked for: the whole test must stay near six minutes on a 2-core machine, and the
# engines' restarts (OpenSearch ~30 s, Kafka ~15 s) come on top of the outages. 45 s already outlasts every
# bound an outage could trip: the bus's 30 s delivery timeout, the handlers' retry budget (~6 s), the indexer's
# write attempts (~25 s), the clients' 20 s timeouts and Temporal's RPC retries. CASEM_OUTAGE_SECONDS=60 runs
# the longer version.
OUTAGE_S = float(os.environ.get("CASEM_OUTAGE_SECONDS", "45"))
PACE_S = 0.4  # between writes of one writer: a bounded load (at most ~2.5 per second per writer)
MERGE_EVERY_S = 4.0
HTTP_TIMEOUT_S = 20.0
INTAKE_DEADLINE_S = 45.0  # beyond the bus's 30 s delivery timeout: the answer is UNAVAILABLE, not a client timeout
DRAIN_TIMEOUT_S = 180.0
TOKEN = "outage-internal-" + uuid.uuid4().hex
FLAVOR = "search-indexing"

pytestmark = [
    pytest.mark.outage,
    pytest.mark.skipif(
        not (os.environ.get("CASEM_OUTAGE_TEST") == "1" or all(required(e) for e in ENGINES)),
        reason="the engine outage test runs in CI (CASEM_REQUIRE_* for every engine) or with CASEM_OUTAGE_TEST=1",
    ),
]


# -- the services, supervised -------------------------------------------------------------------------------


@dataclass
class Supervisor:
    """Runs each service as `casem run ...` and starts it again when it exits, like a Deployment would."""

    env: dict[str, str]
    logs: Path
    commands: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    restarts: Counter[str] = field(default_factory=Counter)
    exits: list[tuple[float, str, int]] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def add(self, name: str, args: list[str], extra: dict[str, str] | None = None) -> None:
        self.commands[name] = (args, extra or {})
        self._spawn(name)

    def _spawn(self, name: str) -> None:
        args, extra = self.commands[name]
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "casem.cli.main", *args], env={**self.env, **extra}, stdout=log, stderr=log
        )

    def watch(self) -> None:
        while not self.stopping.wait(0.5):
            for name, proc in list(self.procs.items()):
                if proc.poll() is not None and not self.stopping.is_set():
                    self.exits.append((time.monotonic(), name, proc.returncode))
                    self.restarts[name] += 1
                    time.sleep(1.0)  # a crash loop while an engine is down stays gentle
                    self._spawn(name)

    def stop(self) -> None:
        self.stopping.set()
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def tail(self, name: str, lines: int = 30) -> str:
        text = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


# -- the load --------------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    at: float
    kind: str  # "case", "intake", "merge"
    result: str  # HTTP status, gRPC code name, or "timeout"/"error:..."
    retry_after: str | None = None
    detail: str = ""  # what a refusal said


@dataclass
class Load:
    api_url: str
    intake_address: str
    headers: dict[str, str]
    project_id: str
    outcomes: list[Outcome] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)  # acknowledged (201) case ids
    intakes: list[str] = field(default_factory=list)  # acknowledged (OK) intake keys
    merges: list[tuple[str, list[str]]] = field(default_factory=list)  # acknowledged (202) merges + duplicates
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, kind: str, result: str, retry_after: str | None = None, detail: str = "") -> None:
        with self.lock:
            self.outcomes.append(Outcome(time.monotonic(), kind, result, retry_after, detail[:160]))

    def _create(self, http: httpx.Client, title: str) -> str | None:
        body = {
            "data": {
                "type": "case",
                "attributes": {"title": title, "type_id": "00000000-0000-0000-0000-000000000001"},
                "relationships": {"project": {"data": {"id": self.project_id, "type": "project"}}},
            }
        }
        try:
            response = http.post("/api/v2/cases", json=body)
        except httpx.TimeoutException:
            self.note("case", "timeout")
            return None
        except httpx.TransportError as exc:
            self.note("case", f"error:{type(exc).__name__}")
            return None
        self.note("case", str(response.status_code), response.headers.get("retry-after"), _detail(response))
        if response.status_code != 201:
            return None
        case_id = response.json()["data"]["id"]
        with self.lock:
            self.cases.append(case_id)
        return case_id

    def cases_writer(self) -> None:
        with httpx.Client(base_url=self.api_url, headers=self.headers, timeout=HTTP_TIMEOUT_S) as http:
            n = 0
            while not self.stop.wait(PACE_S):
                n += 1
                self._create(http, f"outage case {n}")

    def merges_writer(self) -> None:
        with httpx.Client(base_url=self.api_url, headers=self.headers, timeout=HTTP_TIMEOUT_S) as http:
            n = 0
            while not self.stop.wait(MERGE_EVERY_S):
                n += 1
                primary, duplicate = self._create(http, f"merge primary {n}"), self._create(http, f"merge dup {n}")
                if primary is None or duplicate is None:
                    continue
                duplicates = {"data": [{"id": duplicate, "type": "case"}]}
                body = {"data": {"type": "merge", "relationships": {"duplicates": duplicates}}}
                try:
                    response = http.post(f"/api/v2/casem/cases/{primary}/merge", json=body)
                except httpx.TimeoutException:
                    self.note("merge", "timeout")
                    continue
                except httpx.TransportError as exc:
                    self.note("merge", f"error:{type(exc).__name__}")
                    continue
                self.note("merge", str(response.status_code), response.headers.get("retry-after"), _detail(response))
                if response.status_code == 202:
                    with self.lock:
                        self.merges.append((response.json()["data"]["id"], [duplicate]))

    def intake_writer(self) -> None:
        metadata = (
            ("dd-api-key", self.headers["DD-API-KEY"]),
            ("dd-application-key", self.headers["DD-APPLICATION-KEY"]),
        )
        with grpc.insecure_channel(self.intake_address) as channel:
            stub = intake_service_pb2_grpc.CaseIntakeServiceStub(channel)
            while not self.stop.wait(PACE_S):
                key = uuid.uuid4().hex
                intake = intake_pb2.CaseIntake(
                    schema_version=1,
                    intake_key=key,
                    project_id=self.project_id,
                    title=f"intake {key[:8]}",
                    priority=types_pb2.CASE_PRIORITY_P3,
                )
                try:
                    stub.Submit(intake, metadata=metadata, timeout=INTAKE_DEADLINE_S)
                except grpc.RpcError as exc:
                    self.note("intake", exc.code().name, detail=exc.details() or "")  # type: ignore[attr-defined]
                    continue
                self.note("intake", "OK")
                with self.lock:
                    self.intakes.append(key)

    def in_window(self, kind: str, start: float, end: float) -> Counter[str]:
        with self.lock:
            return Counter(o.result for o in self.outcomes if o.kind == kind and start <= o.at < end)


def _detail(response: httpx.Response) -> str:
    if response.status_code < 300:
        return ""
    try:
        return str(response.json()["errors"][0].get("detail", ""))
    except (ValueError, KeyError, IndexError, AttributeError):
        return response.text


# -- checks after the storm ------------------------------------------------------------------------------------


def consumer_lag(bootstrap: str, group: str, topic: str) -> int:
    """Messages of `topic` not yet committed by `group` (without joining the group)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        asked = [KafkaPartition(topic, p) for p in partitions]
        committed = {tp.partition: tp.offset for tp in consumer.committed(asked, timeout=10)}
        lag = 0
        for p in partitions:
            low, high = consumer.get_watermark_offsets(KafkaPartition(topic, p), timeout=10)
            position = committed[p] if committed[p] >= 0 else low
            lag += max(high - position, 0)
        return lag
    finally:
        consumer.close()


def topic_size(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "outage-probe"})
    try:
        found = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if found is None or found.error is not None:
            return 0
        total = 0
        for p in found.partitions:
            low, high = consumer.get_watermark_offsets(KafkaPartition(topic, p), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


async def merge_runs(temporal: str, merge_ids: list[str]) -> dict[str, list[str]]:
    """Every execution Temporal knows of each merge's workflow, by status."""
    client = await Client.connect(temporal)
    runs: dict[str, list[str]] = {}
    for merge_id in merge_ids:
        query = f'WorkflowId = "{merge_workflow_id(merge_id)}"'
        runs[merge_id] = [
            WorkflowExecutionStatus(w.status).name if w.status else "UNKNOWN"
            async for w in client.list_workflows(query)
        ]
    return runs


# -- the test --------------------------------------------------------------------------------------------------


async def test_engines_fail_and_come_back_under_load(tmp_path: Path, record_property) -> None:
    started = time.monotonic()
    engines = PrivateEngines()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("CASEM_TENANT_", "CASEM_TEST_"))}
    for name in ("CASEM_DATACENTER", "CASEM_CONFIG_FILE", "CASEM_BUS_PATH", "CASEM_CASE_SEARCH"):
        base_env.pop(name, None)
    supervisor: Supervisor | None = None
    load: Load | None = None
    report: list[str] = []
    try:
        engines.start_all(base_env)
        marks = {"engines up": time.monotonic()}
        dsns = engines.create_tenant_databases()
        for dsn in dsns.values():
            upgrade(dsn)
        endpoints = {name: DatabaseEndpoints(master=dsn) for name, dsn in dsns.items()}
        env = {
            **base_env,
            **engines.service_env(),
            **{f"{t.env_prefix}_DSN": dsns[t.name] for t in TENANTS},
            "CASEM_INTERNAL_TOKEN": TOKEN,
            "CASEM_DATA_DIR": str(tmp_path / "data"),
            "CASEM_BLOBS_URL": str(tmp_path / "blobs"),
            "CASEM_HOST": "127.0.0.1",
            "CASEM_MIGRATE_ON_START": "0",
        }
        ctx = AppContext.open(endpoints, migrate=False)
        try:
            async with ctx.uow() as uow:
                creds = await bootstrap_org(uow, "outage", "outage@example.com")
                await uow.commit()
        finally:
            await ctx.close()

        http_port, api_grpc, intake_grpc = free_port(), free_port(), free_port()
        # The services' logs outlive the test (pytest's temp dirs are rotated away by later runs): var/outage-logs.
        logs = ROOT / "var" / "outage-logs"
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)
        supervisor = Supervisor(env, logs)
        supervisor.add(
            "case-api", ["run", "case-api"], {"CASEM_HTTP_PORT": str(http_port), "CASEM_GRPC_PORT": str(api_grpc)}
        )
        supervisor.add(
            "case-intake",
            ["run", "case-intake"],
            {"CASEM_GRPC_PORT": str(intake_grpc), "CASEM_OPS_PORT": str(free_port())},
        )
        supervisor.add(
            "case-indexer",
            ["run", "case-indexer"],
            {"CASEM_CASE_API_GRPC": f"127.0.0.1:{api_grpc}", "CASEM_OPS_PORT": str(free_port())},
        )
        supervisor.add("case-event-relay", ["run", "case-event-relay"], {"CASEM_OPS_PORT": str(free_port())})
        supervisor.add(FLAVOR, ["run", "case-event-handler", "--flavor", FLAVOR], {"CASEM_OPS_PORT": str(free_port())})
        supervisor.add("caseworker", ["run", "caseworker"], {"CASEM_OPS_PORT": str(free_port())})
        watcher = threading.Thread(target=supervisor.watch, daemon=True)
        watcher.start()

        api_url = f"http://127.0.0.1:{http_port}"
        headers = {"DD-API-KEY": creds.api_key, "DD-APPLICATION-KEY": creds.app_key}
        project_id = await _create_project(api_url, headers)
        load = Load(api_url, f"127.0.0.1:{intake_grpc}", headers, project_id)
        await _until_serving(load)
        marks["services up"] = time.monotonic()
        threads = [
            threading.Thread(target=w, daemon=True) for w in (load.cases_writer, load.intake_writer, load.merges_writer)
        ]
        for t in threads:
            t.start()
        await asyncio.sleep(8)  # warm: every writer has been acknowledged at least once
        assert load.cases and load.intakes, load.outcomes[-10:]

        phases: dict[str, tuple[float, float, float]] = {}  # engine -> (stopped, restarting, recovered)
        for engine in ENGINES:
            await asyncio.to_thread(engines.run, engine, "stop", base_env)
            stopped = time.monotonic()
            await asyncio.sleep(OUTAGE_S)
            restarting = time.monotonic()
            await asyncio.to_thread(engines.run, engine, "start", base_env)
            recovered = await _until_recovered(load, time.monotonic())
            phases[engine] = (stopped, restarting, recovered)
            report.append(
                f"{engine}: down {restarting - stopped:.0f}s, start {engines.timings[f'{engine} start']:.0f}s, "
                f"writes again {recovered - restarting:.0f}s after the start began"
            )
        load.stop.set()
        marks["outages over"] = time.monotonic()
        for t in threads:
            t.join(INTAKE_DEADLINE_S + 5)

        # While each engine was down (from a few seconds after the stop: in-flight requests and caches end).
        for engine, (stopped, restarting, _) in phases.items():
            report.append(
                f"  during {engine}: cases {dict(load.in_window('case', stopped, restarting))}, "
                f"intakes {dict(load.in_window('intake', stopped, restarting))}, "
                f"merges {dict(load.in_window('merge', stopped, restarting))}"
            )
        pg_stop, pg_restart, _ = phases["postgres"]
        during_pg = load.in_window("case", pg_stop + 3, pg_restart)
        assert during_pg["503"] > 0, f"no 503 while PostgreSQL was down: {during_pg}"
        assert set(during_pg) <= {"503"}, f"the API answered more than 503 without its database: {during_pg}"
        no_retry_after = [o for o in load.outcomes if o.result == "503" and not o.retry_after]
        assert not no_retry_after, f"503 without Retry-After: {no_retry_after[:3]}"
        intake_pg = load.in_window("intake", pg_stop + 8, pg_restart)  # after the 5 s key cache
        assert intake_pg["UNAVAILABLE"] > 0 and set(intake_pg) <= {"UNAVAILABLE"}, intake_pg
        kafka_stop, kafka_restart, _ = phases["kafka"]
        intake_kafka = load.in_window("intake", kafka_stop + 3, kafka_restart + 35)
        assert intake_kafka["UNAVAILABLE"] > 0, (
            f"case-intake never said UNAVAILABLE while Kafka was down: {intake_kafka}"
        )
        assert load.in_window("case", kafka_stop + 3, kafka_restart)["201"] > 0  # the API writes to its outbox
        os_stop, os_restart, _ = phases["opensearch"]
        assert load.in_window("case", os_stop + 3, os_restart)["201"] > 0
        assert load.in_window("intake", os_stop + 3, os_restart)["OK"] > 0
        temporal_stop, temporal_restart, _ = phases["temporal"]
        merges_down = load.in_window("merge", temporal_stop + 3, temporal_restart)
        assert merges_down["503"] > 0 and "202" not in merges_down, merges_down
        every = Counter(o.result for o in load.outcomes)
        server_errors = {r: n for r, n in every.items() if r.startswith("5") and r != "503"}
        assert not server_errors, f"server errors other than 503: {server_errors}"
        assert not {"INTERNAL", "UNKNOWN", "DATA_LOSS"} & set(every), every

        # Everything drains, and every acknowledged write is there.
        bootstrap = engines.service_env()["CASEM_KAFKA_BOOTSTRAP"]
        temporal = engines.service_env()["CASEM_TEMPORAL_ADDRESS"]
        groups = [
            (INDEXER_GROUP, intake_topic().name),
            (handler_group(FLAVOR), domain_events_topic(CASE_MANAGEMENT).name),
        ]
        merge_ids = [m for m, _ in load.merges]
        ctx = AppContext.open(endpoints, migrate=False)
        try:
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while True:
                async with ctx.uow(read_only=True) as uow:
                    unpublished = await uow.scalar(sa.select(sa.func.count()).select_from(domain_events_pending))
                    present_intakes = await uow.scalar(
                        sa.select(sa.func.count())
                        .select_from(cases)
                        .where(cases.c.org_id == creds.org_id, cases.c.intake_key.in_(load.intakes))
                    )
                    completed = await uow.scalar(
                        sa.select(sa.func.count())
                        .select_from(case_merges)
                        .where(case_merges.c.id.in_(merge_ids), case_merges.c.status == "COMPLETED")
                    )
                lags = {g: await asyncio.to_thread(consumer_lag, bootstrap, g, t) for g, t in groups}
                finished = completed == len(merge_ids)
                if unpublished == 0 and not any(lags.values()) and present_intakes == len(load.intakes) and finished:
                    marks["drained"] = time.monotonic()
                    break
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"not drained after {DRAIN_TIMEOUT_S:.0f}s: outbox {unpublished}, lags {lags}, intakes "
                        f"{present_intakes}/{len(load.intakes)}, merges completed {completed}/{len(merge_ids)}"
                    )
                await asyncio.sleep(2)
            runs = await merge_runs(temporal, merge_ids)  # Temporal's own record: one execution each, completed
            async with ctx.uow(read_only=True) as uow:
                present_cases = set(
                    (await uow.execute(sa.select(cases.c.id).where(cases.c.id.in_(load.cases)))).scalars()
                )
                duplicates = [d for _, dups in load.merges for d in dups]
                closed = dict(
                    (await uow.execute(sa.select(cases.c.id, cases.c.status).where(cases.c.id.in_(duplicates)))).all()
                )
                merged_events = Counter(
                    (
                        await uow.execute(
                            sa.select(domain_events.c.case_id).where(
                                domain_events.c.type == "com.casem.case.merged.v1",
                                domain_events.c.case_id.in_(duplicates),
                            )
                        )
                    ).scalars()
                )
        finally:
            await ctx.close()
        lost_cases = sorted(set(load.cases) - present_cases)
        lost_intakes = len(load.intakes) - present_intakes
        dead_letters = {
            t: await asyncio.to_thread(topic_size, bootstrap, t)
            for t in (intake_dead_letter_topic(), dead_letter_topic(FLAVOR))
        }
        verify = subprocess.run(
            [sys.executable, "-m", "casem.cli.main", "search", "verify"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        acked = len(load.cases) + len(load.intakes) + len(load.merges)
        present = (
            len(present_cases)
            + present_intakes
            + sum(1 for m, dups in load.merges if runs[m] == ["COMPLETED"] and all(merged_events[d] == 1 for d in dups))
        )
        marks["verified"] = time.monotonic()
        steps, previous = [], started
        for name, at in marks.items():
            steps.append(f"{name} +{at - previous:.0f}s")
            previous = at
        report[:0] = [
            "timeline: " + ", ".join(steps),
            "engine scripts: " + ", ".join(f"{k} {v:.0f}s" for k, v in engines.timings.items()),
            "service exits (restarted): " + _exits_by_phase(supervisor.exits, phases),
            "refusals: " + _refusals(load),
            f"outage test: {OUTAGE_S:.0f}s per engine, {time.monotonic() - started:.0f}s in all",
            f"writes acknowledged {acked} (cases {len(load.cases)}, intakes {len(load.intakes)}, merges "
            f"{len(load.merges)}), present {present}, lost {acked - present}",
            f"answers: {dict(sorted(Counter(o.kind + ' ' + o.result for o in load.outcomes).items()))}",
            f"service restarts: {dict(supervisor.restarts) or 'none'}; dead letters: {dead_letters}",
        ]
        print("\n".join(report))
        record_property("outage_report", "\n".join(report))
        assert not lost_cases, f"{len(lost_cases)} acknowledged cases missing, e.g. {lost_cases[:3]}"
        assert lost_intakes == 0
        assert all(runs[m] == ["COMPLETED"] for m in merge_ids), runs
        assert all(closed.get(d) == "CLOSED" and merged_events[d] == 1 for d in duplicates), (closed, merged_events)
        assert acked - present == 0
        assert dead_letters == dict.fromkeys(dead_letters, 0), dead_letters
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        if load is not None:
            load.stop.set()
        if supervisor is not None:
            supervisor.stop()
            if not report:  # failed before the report: the services' last words help
                for name in supervisor.procs:
                    print(f"--- {name}\n{supervisor.tail(name)}")
        engines.stop_all(base_env)


def _exits_by_phase(exits: list[tuple[float, str, int]], phases: dict[str, tuple[float, float, float]]) -> str:
    """Which service exited while which engine was down or coming back."""
    counts: Counter[str] = Counter()
    for at, name, code in exits:
        during = next((e for e, (stop, _, back) in phases.items() if stop <= at <= back + 5), "no outage")
        counts[f"{name} (exit {code}) during {during}"] += 1
    return ", ".join(f"{k} x{n}" for k, n in sorted(counts.items())) or "none"


def _refusals(load: Load) -> str:
    """One example of what each kind of refusal said."""
    seen: dict[str, str] = {}
    for o in load.outcomes:
        if o.result not in ("201", "202", "OK"):
            seen.setdefault(f"{o.kind} {o.result}", o.detail)
    return "; ".join(f"{k}: {v!r}" for k, v in sorted(seen.items())) or "none"


async def _create_project(api_url: str, headers: dict[str, str]) -> str:
    body = {"data": {"type": "project", "attributes": {"key": "OUT", "name": "Outage"}}}
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=10) as http:
        while True:
            try:
                response = await http.post("/api/v2/cases/projects", json=body)
                if response.status_code == 201:
                    return response.json()["data"]["id"]
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "case-api did not come up"
            await asyncio.sleep(0.5)


async def _until_serving(load: Load) -> None:
    """Both front doors answer: one case over HTTP, one intake over gRPC (warming case-intake's topics)."""
    deadline = time.monotonic() + 120
    while True:
        ok = await asyncio.to_thread(_one_intake, load)
        if ok:
            return
        assert time.monotonic() < deadline, "case-intake did not come up"
        await asyncio.sleep(1)


def _one_intake(load: Load) -> bool:
    metadata = (("dd-api-key", load.headers["DD-API-KEY"]), ("dd-application-key", load.headers["DD-APPLICATION-KEY"]))
    with grpc.insecure_channel(load.intake_address) as channel:
        stub = intake_service_pb2_grpc.CaseIntakeServiceStub(channel)
        intake = intake_pb2.CaseIntake(
            schema_version=1, intake_key=uuid.uuid4().hex, project_id=load.project_id, title="warm-up"
        )
        try:
            stub.Submit(intake, metadata=metadata, timeout=10)
        except grpc.RpcError:
            return False
    with load.lock:
        load.intakes.append(intake.intake_key)  # acknowledged: it counts like any other
    return True


async def _until_recovered(load: Load, since: float) -> float:
    """When a case and an intake were acknowledged again after `since` (the engine's start began)."""
    deadline = since + 120
    while True:
        with load.lock:
            kinds = {o.kind for o in load.outcomes if o.at > since and o.result in ("201", "OK")}
        if {"case", "intake"} <= kinds:
            return time.monotonic()
        assert time.monotonic() < deadline, f"writes did not resume: {load.outcomes[-6:]}"
        await asyncio.sleep(0.5)
