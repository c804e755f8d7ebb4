"""Batch creation (IngestCases) keeps creation's guarantees at batch sizes 1, 100 and 1,000, on SQLite and
PostgreSQL: gap-free keys per project, exactly one case per intake key (with concurrent callers racing on the
same keys, as concurrent indexers do after a rebalance), one `case.created` event and one creation cell per
case, a case's later events after its creation in the outbox order and its revision as one-at-a-time creation
leaves it; and two indexers sharing the intake
stream make every intake searchable exactly once."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from casem.adapters.bus.embedded import EmbeddedBus
from casem.adapters.search import EmbeddedSearch
from casem.adapters.search.document import content, prepare, stamped
from casem.adapters.storage.tables import cases, domain_events, timeline_cells
from casem.app.context import AppContext
from casem.app.internal_auth import INTERNAL_TOKEN_METADATA, internal_metadata
from casem.app.projects.service import create_project
from casem.app.search.documents import case_documents
from casem.app.search.maintenance import verify_tenant
from casem.proto_gen.casem.v1 import case_api_pb2 as pb
from casem.proto_gen.casem.v1 import case_api_pb2_grpc, intake_pb2, types_pb2
from casem.proto_gen.casem.v1 import intake_service_pb2 as intake_pb
from casem.services.case_indexer.indexer import IndexerSettings, run_indexer
from casem.topology.tenants import CASE_MANAGEMENT, DatabaseEndpoints
from tests.intake.stack import TOKEN, Tenant, case_api_server, intake, intake_server, new_tenant
from tests.support.databases import tenant_endpoints
from tests.support.outbox import envelopes_after

BATCH_SIZES = [1, 100, 1000]
CALLERS = 3  # concurrent callers sending the same intakes in different orders and batches


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def endpoints(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, DatabaseEndpoints]]:
    with tenant_endpoints(request.param, tmp_path) as found:
        yield found


def intakes_for(batch: int) -> int:
    # Enough for several full batches; size 1 makes one call per intake, so fewer of them.
    return 200 if batch == 1 else 2 * batch + 37


async def second_project(context: AppContext, tenant: Tenant) -> tuple[str, str]:
    async with context.uow() as uow:
        project = await create_project(uow, tenant.creds.org_id, tenant.creds.user_id, key="SECOND", name="Second")
        await uow.commit()
    return project.id, project.key


def item(tenant: Tenant, key: str, project_id: str, **fields: object) -> pb.IngestItem:
    return pb.IngestItem(
        org_id=tenant.creds.org_id,
        user_id=tenant.creds.user_id,
        intake=intake(tenant, key, project_id=project_id, **{"title": f"case {key}", **fields}),
    )


@pytest.mark.parametrize("batch", BATCH_SIZES)
async def test_concurrent_batches_create_each_intake_once_with_gap_free_keys(
    endpoints: dict[str, DatabaseEndpoints], batch: int
) -> None:
    with case_api_server(endpoints) as live:
        context = AppContext.open(endpoints, migrate=False)
        try:
            tenant = await new_tenant(context)
            other_project, _ = await second_project(context, tenant)
            n = intakes_for(batch)
            keys = [f"k-{i}" for i in range(n)]
            project_of = {k: (tenant.project_id if i % 3 else other_project) for i, k in enumerate(keys)}
            results: dict[str, list[pb.IngestResult]] = defaultdict(list)

            async def caller(seed: int) -> None:
                order = keys[:]
                random.Random(seed).shuffle(order)
                async with grpc.aio.insecure_channel(live.address) as channel:
                    stub = case_api_pb2_grpc.CaseAPIStub(channel)
                    for start in range(0, n, batch):
                        chunk = order[start : start + batch]
                        request = pb.IngestCasesRequest(items=[item(tenant, k, project_of[k]) for k in chunk])
                        response = await stub.IngestCases(request, metadata=((INTERNAL_TOKEN_METADATA, TOKEN),))
                        assert len(response.results) == len(chunk)
                        for k, result in zip(chunk, response.results, strict=True):
                            assert result.error_code == 0, result
                            results[k].append(result)

            await asyncio.gather(*(caller(seed) for seed in range(CALLERS)))

            # Every caller got the same case for a key, and exactly one of them created it.
            for k in keys:
                assert len({r.case_id for r in results[k]}) == 1, k
                assert sum(r.created for r in results[k]) == 1, k
            async with context.uow(read_only=True) as uow:
                rows = (
                    await uow.execute(
                        sa.select(
                            cases.c.id, cases.c.project_id, cases.c.number, cases.c.key, cases.c.intake_key
                        ).where(cases.c.org_id == tenant.creds.org_id)
                    )
                ).all()
                created_events = (
                    await uow.execute(
                        sa.select(domain_events.c.case_id, domain_events.c.type).where(
                            domain_events.c.org_id == tenant.creds.org_id
                        )
                    )
                ).all()
                creation_cells = Counter(
                    (
                        await uow.execute(
                            sa.select(timeline_cells.c.case_id).where(
                                timeline_cells.c.org_id == tenant.creds.org_id, timeline_cells.c.type == "CASE_CREATED"
                            )
                        )
                    ).scalars()
                )
            assert sorted(r.intake_key for r in rows) == sorted(keys)  # one case per intake key
            assert {r.intake_key: r.id for r in rows} == {k: results[k][0].case_id for k in keys}
            numbers: dict[str, list[int]] = defaultdict(list)
            for r in rows:
                numbers[r.project_id].append(r.number)
                assert r.key.endswith(f"-{r.number}")
            for project_id, taken in numbers.items():
                assert sorted(taken) == list(range(1, len(taken) + 1)), f"gaps or repeats in {project_id}"
            assert Counter(case_id for case_id, t in created_events if t == "com.casem.case.created.v1") == {
                r.id: 1 for r in rows
            }
            assert creation_cells == {r.id: 1 for r in rows}
        finally:
            await context.close()


@pytest.mark.parametrize("batch", BATCH_SIZES)
async def test_refused_items_are_reported_beside_created_ones(
    endpoints: dict[str, DatabaseEndpoints], batch: int
) -> None:
    with case_api_server(endpoints) as live:
        context = AppContext.open(endpoints, migrate=False)
        try:
            tenant, stranger = await new_tenant(context), await new_tenant(context)
            good = [item(tenant, f"ok-{i}", tenant.project_id) for i in range(batch)]
            bad = {
                "no title": item(tenant, "bad-title", tenant.project_id, title=""),
                "unknown project": item(tenant, "bad-project", stranger.project_id),  # another org's project
                "no key": pb.IngestItem(
                    org_id=tenant.creds.org_id,
                    user_id=tenant.creds.user_id,
                    intake=intake_pb2.CaseIntake(schema_version=1, project_id=tenant.project_id, title="no key"),
                ),
                "acting as a user of another org": pb.IngestItem(
                    org_id=tenant.creds.org_id,
                    user_id=stranger.creds.user_id,
                    intake=intake(tenant, "bad-user"),
                ),
            }
            items = [*good[: batch // 2], *bad.values(), *good[batch // 2 :]]
            async with grpc.aio.insecure_channel(live.address) as channel:
                stub = case_api_pb2_grpc.CaseAPIStub(channel)
                response = await stub.IngestCases(
                    pb.IngestCasesRequest(items=items), metadata=((INTERNAL_TOKEN_METADATA, TOKEN),)
                )
                by_key = {i.intake.intake_key or "<none>": r for i, r in zip(items, response.results, strict=True)}
                assert [by_key[f"ok-{i}"].created for i in range(batch)] == [True] * batch
                assert by_key["bad-title"].error_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
                assert by_key["bad-title"].error_field == "/title"
                assert by_key["bad-project"].error_code == grpc.StatusCode.NOT_FOUND.value[0]
                assert by_key["<none>"].error_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
                assert by_key["<none>"].error_field == "/intake_key"
                assert by_key["bad-user"].error_code == grpc.StatusCode.PERMISSION_DENIED.value[0]
                keys = sorted(r.case_key for r in response.results if not r.error_code)
                assert keys == sorted(f"{tenant.project_key}-{n}" for n in range(1, batch + 1))  # refusals take no key

                # Without the service credential, or with a wrong one, nothing is created.
                for metadata in (tenant.metadata, ((INTERNAL_TOKEN_METADATA, "wrong"),)):
                    with pytest.raises(grpc.aio.AioRpcError) as caught:
                        await stub.IngestCases(
                            pb.IngestCasesRequest(items=[item(tenant, "x", tenant.project_id)]), metadata=metadata
                        )
                    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
        finally:
            await context.close()


@pytest.mark.parametrize("batch", BATCH_SIZES)
async def test_a_case_created_in_a_batch_has_its_later_events_after_its_creation(
    endpoints: dict[str, DatabaseEndpoints], batch: int
) -> None:
    """Updates racing with the batches that create their cases, sent by two callers at once with the same intakes
    (two indexers after a rebalance): in the outbox, a case's creation always comes first, once, and its revision
    counts the commits that changed it, as when cases are created one at a time."""
    with case_api_server(endpoints) as live:
        context = AppContext.open(endpoints, migrate=False)
        try:
            tenant = await new_tenant(context)
            org, user = tenant.creds.org_id, tenant.creds.user_id
            n = 2 * batch if batch > 1 else 150
            keys = [f"o-{i}" for i in range(n)]
            updated_every = max(1, n // 150)  # about 150 updates racing with the creations: a few seconds
            async with grpc.aio.insecure_channel(live.address) as channel:
                stub = case_api_pb2_grpc.CaseAPIStub(channel)
                created: asyncio.Queue[str] = asyncio.Queue()

                async def create(order: list[str], report: bool) -> None:
                    for start in range(0, n, batch):
                        chunk = order[start : start + batch]
                        request = pb.IngestCasesRequest(items=[item(tenant, k, tenant.project_id) for k in chunk])
                        response = await stub.IngestCases(request, metadata=((INTERNAL_TOKEN_METADATA, TOKEN),))
                        for k, result in zip(chunk, response.results, strict=True):
                            assert result.error_code == 0, result
                            if report and int(k.removeprefix("o-")) % updated_every == 0:
                                created.put_nowait(result.case_id)
                    if report:
                        created.put_nowait("")

                async def update() -> None:
                    while case_id := await created.get():
                        await stub.UpdateCase(
                            pb.UpdateCaseRequest(id_or_key=case_id, priority=types_pb2.CASE_PRIORITY_P1),
                            metadata=internal_metadata(TOKEN, org, user),
                        )

                await asyncio.gather(create(keys, True), create(keys[::-1], False), update())
            async with context.uow(read_only=True) as uow:
                rows = (
                    await uow.execute(
                        sa.select(domain_events.c.case_id, domain_events.c.type)
                        .where(domain_events.c.org_id == org, domain_events.c.case_id.is_not(None))
                        .order_by(domain_events.c.seq)
                    )
                ).all()
                revisions = dict(
                    (
                        await uow.execute(sa.select(cases.c.intake_key, cases.c.revision).where(cases.c.org_id == org))
                    ).all()
                )
            by_case: dict[str, list[str]] = defaultdict(list)
            for case_id, event_type in rows:
                by_case[case_id].append(event_type.removeprefix("com.casem.").rsplit(".v", 1)[0])
            assert len(by_case) == len(keys) == len(revisions)
            updated = ["case.created", "case.priority_changed"]
            assert Counter(tuple(events) for events in by_case.values()) == Counter(
                {
                    tuple(updated): len(range(0, n, updated_every)),
                    ("case.created",): n - len(range(0, n, updated_every)),
                }
            )
            assert revisions == {k: 2 if int(k.removeprefix("o-")) % updated_every == 0 else 1 for k in keys}
        finally:
            await context.close()


@pytest.mark.parametrize("batch", BATCH_SIZES)
async def test_two_indexers_make_every_intake_searchable_once(
    endpoints: dict[str, DatabaseEndpoints], tmp_path: Path, batch: int
) -> None:
    with case_api_server(endpoints) as live:
        context = AppContext.open(endpoints, migrate=False)
        bus = EmbeddedBus(tmp_path / "bus.db", heartbeat_interval_s=0.2)
        search = EmbeddedSearch(tmp_path / "search")
        stop_first, stop_second = asyncio.Event(), asyncio.Event()
        settings = IndexerSettings(ingest_batch=batch, max_batch=batch, session_timeout_s=1.5)

        def indexer(stop: asyncio.Event) -> asyncio.Task[None]:
            return asyncio.create_task(
                run_indexer(context, bus, live.address, search=search, token=TOKEN, settings=settings, stop=stop)
            )

        first, second = indexer(stop_first), indexer(stop_second)
        try:
            tenant = await new_tenant(context)
            org = tenant.creds.org_id
            n = intakes_for(batch)
            async with intake_server(context, bus) as (_, stub):
                for start in range(0, n, 50):
                    chunk = [intake(tenant, f"i-{i}", title=f"case {i}") for i in range(start, min(n, start + 50))]
                    await stub.SubmitBatch(intake_pb.SubmitBatchRequest(intakes=chunk), metadata=tenant.metadata)
                    if start == 0:
                        await stub.SubmitBatch(intake_pb.SubmitBatchRequest(intakes=chunk), metadata=tenant.metadata)
                    if start == (n // 100) * 50:  # half-way, one indexer leaves: its partitions move over
                        stop_first.set()
            deadline = time.monotonic() + 300
            while len(await search.all_checksums(CASE_MANAGEMENT, org)) < n:
                assert not second.done(), second
                assert time.monotonic() < deadline, "not every intake became searchable"
                await asyncio.sleep(0.1)
            report = await verify_tenant(context, search, CASE_MANAGEMENT, org)
            assert report.ok, report
            async with context.uow(read_only=True) as uow:
                numbers = sorted((await uow.execute(sa.select(cases.c.number).where(cases.c.org_id == org))).scalars())
            assert numbers == list(range(1, n + 1))
        finally:
            stop_first.set()
            stop_second.set()
            await asyncio.wait_for(asyncio.gather(first, second), 60)
            await search.close()
            await bus.close()
            await context.close()


async def test_only_a_caller_that_indexes_the_cases_marks_their_creation_and_gets_their_documents(
    endpoints: dict[str, DatabaseEndpoints],
) -> None:
    """`indexed_by_caller` (case-indexer sets it) marks each created case's `case.created`, so the search-indexing
    flavor leaves the document to the caller, and the result carries that document, the one the database gives
    back; another caller of IngestCases leaves it unmarked, for the flavor, and gets none. Nor does an intake whose
    case exists already: it may have changed since, the caller reads it."""
    with case_api_server(endpoints) as live:
        context = AppContext.open(endpoints, migrate=False)
        try:
            tenant = await new_tenant(context)
            results = []
            async with grpc.aio.insecure_channel(live.address) as channel:
                stub = case_api_pb2_grpc.CaseAPIStub(channel)
                for key, indexed in (("by-indexer", True), ("by-other", False), ("by-indexer", True)):
                    response = await stub.IngestCases(
                        pb.IngestCasesRequest(items=[item(tenant, key, tenant.project_id)], indexed_by_caller=indexed),
                        metadata=((INTERNAL_TOKEN_METADATA, TOKEN),),
                    )
                    results.append(response.results[0])
            first, other, replay = results
            assert (first.created, other.created, replay.created) == (True, True, False)
            assert other.document == "" and replay.document == ""
            async with context.uow(read_only=True) as uow:
                stored = await case_documents(uow, [(tenant.creds.org_id, first.case_id)])
            # Stamped by case-api: the fields are the stored ones with their checksum, the text is the content (the
            # version travels beside it), ready to be written as it came.
            sent = stamped(first.document, first.document_version)
            assert sent.fields == prepare(stored[first.case_id])
            assert json.loads(sent.text) == content(prepare(stored[first.case_id]))
            assert first.document_version == stored[first.case_id]["version"] == 1
            created = [
                e
                for e in await envelopes_after(context, 0)
                if e["type"] == "com.casem.case.created.v1" and e["orgid"] == tenant.creds.org_id
            ]
            marks = {e["data"]["title"]: e["data"].get("indexed_by_creator") for e in created}
            assert marks == {"case by-indexer": True, "case by-other": None}
        finally:
            await context.close()
