"""search-indexing flavor: every later change reaches the index (updates, comments, archive, move, delete)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from casem.adapters.search import EmbeddedSearch, document_checksum
from casem.adapters.storage.tables import cases as cases_table
from casem.app.cases import service as cases
from casem.app.cases import updates
from casem.app.cases.batch import BatchItem, create_cases_retrying
from casem.app.context import AppContext
from casem.app.projects.service import create_project
from casem.app.search.documents import case_document
from casem.app.search.service import search_cases
from casem.app.timeline import service as timeline
from casem.domain.cases import Case
from casem.services.case_event_handler.framework import Event, HandlerServices
from casem.services.case_event_handler.runner import FlavorRunner
from casem.services.case_event_handler.service import load_flavor
from casem.topology.tenants import CASE_MANAGEMENT
from tests.intake.stack import new_tenant
from tests.support.outbox import envelopes_after


@pytest.fixture
async def search(tmp_path: Path) -> AsyncIterator[EmbeddedSearch]:
    s = EmbeddedSearch(tmp_path / "search")
    yield s
    await s.close()


def documents_written() -> float:
    return documents("written")


def documents(outcome: str) -> float:
    return REGISTRY.get_sample_value("casem_search_indexing_documents_total", {"outcome": outcome}) or 0.0


class Outbox:
    """Applies the outbox's new events through the flavor runner, as the relay + handler would."""

    def __init__(self, context: AppContext, search: EmbeddedSearch) -> None:
        self.context = context
        self.after = 0
        self.runner = FlavorRunner(
            load_flavor("search-indexing"),
            context,
            dead_letters=None,
            services=HandlerServices(extras={"search": search}),
        )  # type: ignore[arg-type]

    async def apply_new(self) -> int:
        envelopes = await envelopes_after(self.context, self.after)
        for envelope in envelopes:
            event = Event.from_bytes(json.dumps(envelope).encode())
            assert await self.runner.apply(event)
            # A redelivery is applied again (no processed record: the effect converges) and writes nothing.
            written = documents_written()
            assert await self.runner.apply(event)
            assert documents_written() == written
            self.after = envelope["sequence"]
        return len(envelopes)


async def assert_in_sync(context: AppContext, search: EmbeddedSearch, org_id: str, case_id: str) -> None:
    async with context.uow(read_only=True) as uow:
        expected = await case_document(uow, org_id, case_id)
    stored = await search.get(CASE_MANAGEMENT, org_id, case_id)
    assert expected is not None and stored is not None
    assert stored["checksum"] == document_checksum(expected)


async def test_changes_reach_the_index(context: AppContext, search: EmbeddedSearch) -> None:
    tenant = await new_tenant(context)
    org, user = tenant.creds.org_id, tenant.creds.user_id
    outbox = Outbox(context, search)
    async with context.uow() as uow:
        case = await cases.create_case(uow, org, user, cases.NewCase(project_id=tenant.project_id, title="printer jam"))
        other = await create_project(uow, org, user, key="MOVED", name="Moved")
        await uow.commit()
    await outbox.apply_new()
    await assert_in_sync(context, search, org, case.id)

    async with context.uow() as uow:
        await updates.retitle(uow, org, user, case.id, "printer on fire")
        await updates.prioritize(uow, org, user, case.id, "P1")
        await updates.assign(uow, org, user, case.id, user)
        cell = await timeline.add_comment(uow, org, user, case.id, "smoke seen near the toner")
        await uow.commit()
    assert await outbox.apply_new() >= 4
    await assert_in_sync(context, search, org, case.id)
    doc = await search.get(CASE_MANAGEMENT, org, case.id)
    assert doc is not None
    assert (doc["title"], doc["priority"], doc["assignee_handle"]) == ("printer on fire", "P1", "admin@example.com")
    assert doc["comments"] == ["smoke seen near the toner"]
    assert (await search_cases(search, CASE_MANAGEMENT, org, "toner"))[1] == 1

    async with context.uow() as uow:
        await timeline.delete_comment(uow, org, user, case.id, cell.id)
        await updates.archive(uow, org, user, case.id)
        await uow.commit()
    await outbox.apply_new()
    await assert_in_sync(context, search, org, case.id)
    assert (await search_cases(search, CASE_MANAGEMENT, org, "toner archived:true"))[1] == 0
    assert (await search_cases(search, CASE_MANAGEMENT, org, "fire"))[1] == 0  # archived: hidden by default
    assert (await search_cases(search, CASE_MANAGEMENT, org, "fire archived:true"))[1] == 1

    async with context.uow() as uow:
        await updates.unarchive(uow, org, user, case.id)
        await updates.move(uow, org, user, case.id, other.id)
        await uow.commit()
    await outbox.apply_new()
    await assert_in_sync(context, search, org, case.id)
    assert (await search_cases(search, CASE_MANAGEMENT, org, "project:MOVED"))[0] == [case.id]

    async with context.uow() as uow:
        loaded = await uow.get(Case, org, case.id, resource="case")
        loaded.record_deleted(user)
        await uow.execute(sa.delete(cases_table).where(cases_table.c.id == case.id))
        await uow.commit()
    await outbox.apply_new()
    assert await search.get(CASE_MANAGEMENT, org, case.id) is None


async def test_a_created_case_its_creator_indexes_is_left_to_it_but_not_its_later_changes(
    context: AppContext, search: EmbeddedSearch
) -> None:
    """case-indexer creates intake cases with `indexed_by_caller` and writes their documents itself: the flavor skips
    their `case.created` (no read, no write), still indexes a case created without the flag, and handles every later
    event of a marked case."""
    tenant = await new_tenant(context)
    org, user = tenant.creds.org_id, tenant.creds.user_id
    outbox = Outbox(context, search)
    items = [
        BatchItem(org, user, cases.NewCase(project_id=tenant.project_id, title="indexed by its creator"), None, True),
        BatchItem(org, user, cases.NewCase(project_id=tenant.project_id, title="left to the flavor")),
    ]
    outcomes, _ = await create_cases_retrying(context.uow, items)
    marked, unmarked = (o.case for o in outcomes)
    assert marked is not None and unmarked is not None
    left_before, written_before = documents("left_to_creator"), documents_written()
    await outbox.apply_new()
    assert documents("left_to_creator") - left_before == 2  # the marked creation, applied twice (a redelivery)
    assert documents_written() - written_before == 1  # the unmarked case only
    assert await search.get(CASE_MANAGEMENT, org, marked.id) is None  # nobody wrote it: its creator would have
    await assert_in_sync(context, search, org, unmarked.id)

    # The marked case's later events are the flavor's: a change, a comment.
    async with context.uow() as uow:
        await updates.retitle(uow, org, user, marked.id, "changed after its creation")
        await timeline.add_comment(uow, org, user, marked.id, "a later comment")
        await uow.commit()
    await outbox.apply_new()
    await assert_in_sync(context, search, org, marked.id)
    doc = await search.get(CASE_MANAGEMENT, org, marked.id)
    assert doc is not None and doc["comments"] == ["a later comment"]


async def test_a_batch_with_a_marked_creation_and_a_later_change_of_its_case_indexes_the_case(
    context: AppContext, search: EmbeddedSearch
) -> None:
    """In one polled batch, the skipped creation does not hide the same case's later event."""
    tenant = await new_tenant(context)
    org, user = tenant.creds.org_id, tenant.creds.user_id
    after = (await envelopes_after(context, 0))[-1]["sequence"]
    item = BatchItem(org, user, cases.NewCase(project_id=tenant.project_id, title="created"), None, True)
    [outcome], _ = await create_cases_retrying(context.uow, [item])
    assert outcome.case is not None
    async with context.uow() as uow:
        await updates.prioritize(uow, org, user, outcome.case.id, "P2")
        await uow.commit()
    events = [Event.from_bytes(json.dumps(e).encode()) for e in await envelopes_after(context, after)]
    assert [e.type for e in events] == ["case.created", "case.priority_changed"]
    assert events[0].data["indexed_by_creator"] is True
    flavor = load_flavor("search-indexing")
    async with context.uow(read_only=True) as uow:
        await flavor.apply_batch(events, uow, HandlerServices(extras={"search": search}))  # type: ignore[attr-defined]
    await assert_in_sync(context, search, org, outcome.case.id)
    doc = await search.get(CASE_MANAGEMENT, org, outcome.case.id)
    assert doc is not None and doc["priority"] == "P2"
