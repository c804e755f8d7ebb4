"""Batch apply: a flavor with `apply_batch` gets polled batches. search-indexing writes each case of a batch once,
in one bulk request, and leaves alone the documents stored at their case's revision already; it records no event as
processed (its effect converges on the database: a redelivered batch finds every document current and writes
nothing); a failing batch is applied again event by event, so only the poison event is dead-lettered and the rest of
its batch is applied and committed (there a flavor that keeps the record)."""

from __future__ import annotations

import json
from typing import ClassVar

import sqlalchemy as sa
from prometheus_client import REGISTRY

from casem.adapters.bus.port import Message
from casem.adapters.search import SearchPort, document_checksum
from casem.adapters.storage.tables import cases as cases_table
from casem.adapters.storage.tables import domain_events, handler_processed_events
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases import service as cases
from casem.app.cases import updates
from casem.app.context import AppContext
from casem.app.search.documents import case_documents
from casem.app.timeline import service as timeline
from casem.domain.cases import Case
from casem.services.case_event_handler.framework import Event, HandlerServices
from casem.services.case_event_handler.runner import FlavorRunner, RetryPolicy
from casem.services.case_event_handler.service import load_flavor
from casem.topology.tenants import CASE_MANAGEMENT
from casem.topology.topics import dead_letter_topic
from tests.handlers.test_runner import count, publish_outbox, run_until
from tests.intake.stack import new_tenant
from tests.relay.test_relay import make_changes
from tests.support.bus_harness import Harness, drain
from tests.support.outbox import envelopes_after

FLAVOR = "search-indexing"


def documents(outcome: str) -> float:
    return REGISTRY.get_sample_value("casem_search_indexing_documents_total", {"outcome": outcome}) or 0.0


def handled(outcome: str, flavor: str = FLAVOR) -> float:
    return REGISTRY.get_sample_value("casem_handler_events_total", {"flavor": flavor, "outcome": outcome}) or 0.0


class Outbox:
    """The outbox's new events as consumed messages, as the relay would publish them."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.after = 0

    async def new_messages(self) -> list[Message]:
        envelopes = await envelopes_after(self.context, self.after)
        if envelopes:
            self.after = envelopes[-1]["sequence"]
        return [Message("events", 0, e["sequence"], None, json.dumps(e).encode()) for e in envelopes]


async def assert_in_sync(context: AppContext, search: SearchPort, org_id: str, case_ids: list[str]) -> None:
    async with context.uow(read_only=True) as uow:
        expected = await case_documents(uow, [(org_id, c) for c in case_ids])
    for case_id in case_ids:
        stored = await search.get(CASE_MANAGEMENT, org_id, case_id)
        assert stored is not None, case_id
        assert stored["checksum"] == document_checksum(expected[case_id])


async def test_a_batch_writes_each_case_once_and_skips_documents_already_current(
    context: AppContext, port: SearchPort
) -> None:
    tenant = await new_tenant(context)
    org, user = tenant.creds.org_id, tenant.creds.user_id
    runner = FlavorRunner(load_flavor(FLAVOR), context, None, HandlerServices(extras={"search": port}))  # type: ignore[arg-type]
    outbox = Outbox(context)
    await outbox.new_messages()  # the tenant's own set-up events: not this test's
    made = []
    for title in ("indexed by intake", "changed a lot", "untouched"):
        async with context.uow() as uow:
            made.append(
                await cases.create_case(uow, org, user, cases.NewCase(project_id=tenant.project_id, title=title))
            )
            await uow.commit()
    by_intake, changed, untouched = (c.id for c in made)
    # case-indexer wrote the first one already, at its revision (it reads and writes as the flavor does).
    async with context.uow(read_only=True) as uow:
        docs = await case_documents(uow, [(org, by_intake)])
    await port.ensure_index(CASE_MANAGEMENT)
    await port.bulk_upsert(CASE_MANAGEMENT, list(docs.values()))
    async with context.uow() as uow:
        await updates.retitle(uow, org, user, changed, "printer on fire")
        await updates.prioritize(uow, org, user, changed, "P1")
        await timeline.add_comment(uow, org, user, changed, "smoke seen near the toner")
        await uow.commit()

    messages = await outbox.new_messages()
    assert len(messages) >= 6
    before = {o: documents(o) for o in ("written", "current", "deleted")}
    applied, duplicate = handled("applied"), handled("duplicate")
    await runner.handle_batch(messages)
    # Three cases named by many events: two written (once each), the one case-indexer wrote left alone.
    assert {o: documents(o) - before[o] for o in before} == {"written": 2, "current": 1, "deleted": 0}
    assert handled("applied") - applied == len(messages)
    await assert_in_sync(context, port, org, [by_intake, changed, untouched])
    stored = await port.get(CASE_MANAGEMENT, org, changed)
    assert stored is not None and stored["comments"] == ["smoke seen near the toner"]
    # No processed-events record: the effect converges on the database, so the flavor writes nothing there.
    assert await count(context, handler_processed_events, handler_processed_events.c.flavor == FLAVOR) == 0

    # Redelivered (a rebalance, a crash before the commit): applied again, the three cases are read and found
    # current, and nothing is written to the index.
    await runner.handle_batch(messages)
    assert handled("applied") - applied == 2 * len(messages)
    assert handled("duplicate") == duplicate
    assert {o: documents(o) - before[o] for o in before} == {"written": 2, "current": 4, "deleted": 0}
    await assert_in_sync(context, port, org, [by_intake, changed, untouched])

    # A later event of an indexed case is written; a deleted case leaves the index.
    async with context.uow() as uow:
        await updates.retitle(uow, org, user, by_intake, "indexed, then renamed")
        loaded = await uow.get(Case, org, untouched, resource="case")
        loaded.record_deleted(user)
        await uow.execute(sa.delete(cases_table).where(cases_table.c.id == untouched))
        await uow.commit()
    await runner.handle_batch(await outbox.new_messages())
    assert {o: documents(o) - before[o] for o in before} == {"written": 3, "current": 4, "deleted": 1}
    await assert_in_sync(context, port, org, [by_intake, changed])
    assert await port.get(CASE_MANAGEMENT, org, untouched) is None


class PickyBatchFlavor:
    """A batch flavor (a real effect: the processed records) that cannot apply one chosen event, alone or batched."""

    name: ClassVar[str] = "picky-batch-test"
    handles: ClassVar[frozenset[str]] = frozenset({"case.created"})

    def __init__(self) -> None:
        self.poison: str | None = None
        self.batches: list[int] = []  # sizes of the batches applied
        self.alone: list[str] = []  # events applied one by one

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        self.alone.append(event.id)
        if event.id == self.poison:
            raise ValueError(f"cannot apply {event.id}")

    async def apply_batch(self, events: list[Event], uow: UnitOfWork, services: HandlerServices) -> None:
        if any(event.id == self.poison for event in events):
            raise ValueError("a batch with the poison event")
        self.batches.append(len(events))


async def test_a_poison_event_is_dead_lettered_alone_and_the_rest_of_its_batch_applied(
    context: AppContext, harness: Harness
) -> None:
    await make_changes(context, cases=5, changes_per_case=1)
    bus = harness.bus()
    topic, _ = await publish_outbox(context, harness, bus)
    async with context.uow(read_only=True) as uow:
        created = list(
            (await uow.execute(sa.select(domain_events.c.id).where(domain_events.c.type.like("%case.created%"))))
            .scalars()
            .all()
        )
    assert len(created) == 5
    flavor = PickyBatchFlavor()
    flavor.poison = created[2]
    await bus.ensure_topic(dead_letter_topic(flavor.name), 1)
    dlq_reader = harness.consumer(bus, harness.name("dlq-reader"), [dead_letter_topic(flavor.name)])
    await dlq_reader.poll(timeout=0.5)  # joined before anything is dead-lettered
    runner = FlavorRunner(flavor, context, harness.producer(bus), retry=RetryPolicy(2, 0.01, 0.05))
    processed = handler_processed_events.c
    dead_letters: list[Message] = []

    async def settled() -> bool:
        dead_letters.extend(
            m
            for m in await dlq_reader.poll(timeout=0.2)
            if dict(m.headers).get("dlq_source", b"").startswith(f"{topic}/".encode())  # not the other variant's
        )
        return (
            bool(dead_letters) and await count(context, handler_processed_events, processed.flavor == flavor.name) == 4
        )

    group = harness.name("picky")
    await run_until(runner, harness, bus, topic, group, settled)
    assert len(dead_letters) == 1
    assert json.loads(dead_letters[0].value)["id"] == flavor.poison
    assert dict(dead_letters[0].headers)["dlq_attempts"] == b"2"
    applied = await count(context, handler_processed_events, processed.flavor == flavor.name)
    assert applied == 4
    # The poison event's batch went one by one (it twice: its attempts), and nothing else was lost.
    assert flavor.alone.count(flavor.poison) == 2
    # Everything is committed: the same group finds nothing left to read.
    again = harness.consumer(bus, group, [topic])
    assert await drain(again, 1, timeout=2) == []
    await again.close()
    await dlq_reader.close()
