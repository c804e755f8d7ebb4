"""Merge automation: the merge workflow on the Temporal dev server, its activities' idempotency, the
casem merge API, and automatic merges from duplicate-detection suggestions."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from casem.adapters.storage.tables import case_merges, domain_events, timeline_cells
from casem.adapters.workflows.client import TemporalCaseworker
from casem.adapters.workflows.contracts import MergeRequest
from casem.app.automation.rules import put_duplicates
from casem.app.cases.service import NewCase, create_case, get_case
from casem.app.identity.service import API_KEY, APP_KEY, issue_key
from casem.app.merges.service import insert_merge
from casem.domain.events import with_sequence
from casem.domain.merges import auto_merge_id, merge_workflow_id
from casem.services.case_api.http.app import create_app
from casem.services.case_event_handler.framework import Event, HandlerServices
from casem.services.case_event_handler.runner import FlavorRunner
from casem.services.case_event_handler.service import load_flavor
from casem.services.caseworker.merges import MergeActivities, MergeStep
from casem.services.caseworker.worker import build_worker
from casem.services.caseworker.workflows import CaseMergeWorkflow
from tests.backends import engine_address
from tests.caseworker.support import assert_merged_once, seed_merge
from tests.support.caseworker_world import World


def _request(world: World, primary_id: str, duplicate_ids: list[str]) -> MergeRequest:
    return MergeRequest("case-management", world.org_id, str(uuid.uuid4()), primary_id, duplicate_ids, world.user_id)


async def _cell_count(world: World, case_id: str) -> int:
    async with world.ctx.uow(read_only=True) as uow:
        return await uow.scalar(
            sa.select(sa.func.count()).select_from(timeline_cells).where(timeline_cells.c.case_id == case_id)
        )


async def test_a_rerun_merge_step_changes_nothing(world: World) -> None:
    """The worker died after the step committed: Temporal runs it again, and it only reports what was done."""
    fixture = await seed_merge(world.ctx, world.org_id, world.user_id, world.project_id, duplicates=2, comments=3)
    request = _request(world, fixture.primary_id, fixture.duplicate_ids)
    activities = MergeActivities(world.ctx)
    env = ActivityEnvironment()
    plan = await env.run(activities.begin_merge, request)
    assert plan.status == "RUNNING" and plan.primary_key == fixture.primary_key
    first = [await env.run(activities.merge_duplicate, MergeStep(request, d)) for d in fixture.duplicate_ids]
    assert [s.outcome for s in first] == ["merged", "merged"] and not any(s.replayed for s in first)
    assert [s.cells_copied for s in first] == [len(fixture.cells[d]) for d in fixture.duplicate_ids]
    cells_after = await _cell_count(world, fixture.primary_id)

    again = [await env.run(activities.merge_duplicate, MergeStep(request, d)) for d in fixture.duplicate_ids]
    assert all(s.replayed for s in again)
    assert [(s.outcome, s.cells_copied, s.watchers_added) for s in again] == [
        (s.outcome, s.cells_copied, s.watchers_added) for s in first
    ]
    assert await _cell_count(world, fixture.primary_id) == cells_after
    await assert_merged_once(world.ctx, world.org_id, fixture, request.merge_id)

    # A second merge naming an already merged duplicate leaves it alone.
    other = await world.new_case("Another primary")
    second = _request(world, other.id, [fixture.duplicate_ids[0], str(uuid.uuid4())])
    assert (await env.run(activities.begin_merge, second)).status == "RUNNING"
    outcomes = [(await env.run(activities.merge_duplicate, MergeStep(second, d))).outcome for d in second.duplicate_ids]
    assert outcomes == ["already_merged", "missing"]
    assert await _cell_count(world, other.id) == 1  # only its own CASE_CREATED cell


async def test_a_merge_into_a_vanished_primary_fails_without_merging(world: World) -> None:
    primary, dup = await world.new_case("Primary"), await world.new_case("Dup")
    request = _request(world, primary.id, [dup.id])
    async with world.ctx.uow() as uow:
        await insert_merge(uow, request)
        await uow.execute(sa.delete(timeline_cells).where(timeline_cells.c.case_id == primary.id))
        await uow.session.delete(await get_case(uow, world.org_id, primary.id))
        await uow.commit()
    plan = await ActivityEnvironment().run(MergeActivities(world.ctx).begin_merge, request)
    assert plan.status == "FAILED" and "no longer exists" in (plan.detail or "")
    async with world.ctx.uow(read_only=True) as uow:
        assert (await get_case(uow, world.org_id, dup.id)).status == "OPEN"
        row = (await uow.execute(sa.select(case_merges).where(case_merges.c.id == request.merge_id))).one()
    assert row.status == "FAILED" and row.completed_at is not None


@pytest.fixture
async def temporal(world: World) -> AsyncIterator[TemporalCaseworker]:
    """A caseworker worker on the dev server, on a task queue of its own."""
    client = await Client.connect(engine_address("temporal"))
    queue = f"merge-test-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, world.ctx, world.blobs, task_queue=queue):
        yield TemporalCaseworker(client, task_queue=queue)


@pytest.mark.temporal
async def test_the_merge_workflow_merges_every_duplicate_once(world: World, temporal: TemporalCaseworker) -> None:
    fixture = await seed_merge(world.ctx, world.org_id, world.user_id, world.project_id, duplicates=4, comments=3)
    request = _request(world, fixture.primary_id, fixture.duplicate_ids)
    handle = await temporal.start_merge(request)
    result = await asyncio.wait_for(handle.result(), 60)
    assert result.status == "COMPLETED"
    assert [s.duplicate_id for s in result.steps] == fixture.duplicate_ids
    await assert_merged_once(world.ctx, world.org_id, fixture, request.merge_id)
    # Starting the same merge again joins the finished one: nothing runs twice.
    again = await temporal.start_merge(request)
    assert again.id == merge_workflow_id(request.merge_id)
    await assert_merged_once(world.ctx, world.org_id, fixture, request.merge_id)


async def _api(world: World, caseworker: TemporalCaseworker | None) -> httpx.AsyncClient:
    app = create_app(world.ctx)
    app.state.caseworker = caseworker
    async with world.ctx.uow() as uow:
        api_key = issue_key(uow, world.org_id, API_KEY, "merge-test")
        app_key = issue_key(uow, world.org_id, APP_KEY, "merge-test", user_id=world.user_id)
        await uow.commit()
    headers = {"DD-API-KEY": api_key.secret, "DD-APPLICATION-KEY": app_key.secret}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://casem", headers=headers)


def _merge_body(*ids: str) -> dict[str, object]:
    return {
        "data": {"type": "merge", "relationships": {"duplicates": {"data": [{"id": i, "type": "case"} for i in ids]}}}
    }


@pytest.mark.temporal
async def test_merge_api_starts_the_workflow_and_reports_progress(world: World, temporal: TemporalCaseworker) -> None:
    fixture = await seed_merge(world.ctx, world.org_id, world.user_id, world.project_id, duplicates=3, comments=2)
    async with await _api(world, temporal) as api:
        dup_keys = []
        async with world.ctx.uow(read_only=True) as uow:
            for d in fixture.duplicate_ids:
                dup_keys.append((await get_case(uow, world.org_id, d)).key)
        # Duplicates by key or id, the primary by key.
        response = await api.post(
            f"/api/v2/casem/cases/{fixture.primary_key}/merge",
            json=_merge_body(dup_keys[0], *fixture.duplicate_ids[1:]),
        )
        assert response.status_code == 202, response.text
        merge = response.json()["data"]
        assert merge["type"] == "merge" and merge["attributes"]["workflow_id"] == merge_workflow_id(merge["id"])
        assert merge["relationships"]["primary"]["data"]["id"] == fixture.primary_id
        for _ in range(300):
            found = (await api.get(f"/api/v2/casem/merges/{merge['id']}")).json()["data"]["attributes"]
            if found["status"] == "COMPLETED":
                break
            await asyncio.sleep(0.1)
        assert found["status"] == "COMPLETED", found
        assert [(r["case_id"], r["outcome"]) for r in found["results"]] == [
            (d, "merged") for d in fixture.duplicate_ids
        ]
        await assert_merged_once(world.ctx, world.org_id, fixture, merge["id"])

        other = await world.new_case("Other")
        conflict = await api.post(f"/api/v2/casem/cases/{other.id}/merge", json=_merge_body(fixture.duplicate_ids[0]))
        assert conflict.status_code == 409 and fixture.primary_key in conflict.text
        into_merged = await api.post(
            f"/api/v2/casem/cases/{fixture.duplicate_ids[0]}/merge", json=_merge_body(other.id)
        )
        assert into_merged.status_code == 409
        itself = await api.post(f"/api/v2/casem/cases/{other.id}/merge", json=_merge_body(other.id))
        assert itself.status_code == 400
        assert itself.json()["errors"][0]["source"]["pointer"] == "/data/relationships/duplicates/data"
        unknown = str(uuid.uuid4())
        missing = await api.post(f"/api/v2/casem/cases/{other.id}/merge", json=_merge_body(unknown))
        assert missing.status_code == 404 and unknown in missing.text
        assert (await api.get(f"/api/v2/casem/merges/{uuid.uuid4()}")).status_code == 404
        assert (await api.get("/api/v2/casem/merges/not-a-uuid")).status_code == 400


async def test_merge_api_without_temporal_is_503_and_records_nothing(world: World) -> None:
    primary, dup = await world.new_case("P"), await world.new_case("D")
    async with await _api(world, None) as api:
        response = await api.post(f"/api/v2/casem/cases/{primary.id}/merge", json=_merge_body(dup.id))
    assert response.status_code == 503
    async with world.ctx.uow(read_only=True) as uow:
        assert await uow.scalar(sa.select(sa.func.count()).select_from(case_merges)) == 0


@pytest.mark.temporal
async def test_duplicate_detection_merges_a_suggested_duplicate_when_the_project_enables_it(
    world: World, temporal: TemporalCaseworker
) -> None:
    async with world.ctx.uow() as uow:
        await put_duplicates(uow, world.org_id, world.user_id, world.project_id, {"auto_merge": True})
        await uow.commit()
    original = await world.new_case("Checkout API returns 500 errors")
    async with world.ctx.uow() as uow:
        dup = await create_case(
            uow, world.org_id, world.user_id, NewCase(world.project_id, "Checkout API returning 500 errors")
        )
        await uow.commit()
    async with world.ctx.uow(read_only=True) as uow:
        row = (
            await uow.execute(
                sa.select(domain_events).where(
                    domain_events.c.case_id == dup.id, domain_events.c.type == "com.casem.case.created.v1"
                )
            )
        ).one()
    created = Event.from_bytes(json.dumps(with_sequence(row.envelope, row.seq)).encode())
    runner = FlavorRunner(
        load_flavor("duplicate-detection"),
        world.ctx,
        dead_letters=None,  # type: ignore[arg-type]
        services=HandlerServices(extras={"caseworker": temporal}),
    )
    assert await runner.apply(created) is True
    handle = temporal.client.get_workflow_handle_for(
        CaseMergeWorkflow.run, merge_workflow_id(auto_merge_id(created.id))
    )
    result = await asyncio.wait_for(handle.result(), 60)
    assert result.status == "COMPLETED" and [s.outcome for s in result.steps] == ["merged"]
    async with world.ctx.uow(read_only=True) as uow:
        merged = await get_case(uow, world.org_id, dup.id)
        row = (await uow.execute(sa.select(case_merges).where(case_merges.c.id == auto_merge_id(created.id)))).one()
    assert merged.status == "CLOSED" and merged.resolved_reason == f"duplicate of {original.key}"
    assert row.source == "duplicate-detection" and row.requested_by_id is None and row.primary_case_id == original.id
    assert await runner.apply(created) is False  # redelivered: no second suggestion, no second merge
    async with world.ctx.uow(read_only=True) as uow:
        assert await uow.scalar(sa.select(sa.func.count()).select_from(case_merges)) == 1
