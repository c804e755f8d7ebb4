"""case-event-relay: outbox → topic, at least once, per-case order, nothing marked before the ack."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from prometheus_client import REGISTRY

from casem.adapters.bus.kafka import KafkaBus
from casem.adapters.bus.port import PublishError
from casem.adapters.storage.tables import domain_events, domain_events_pending
from casem.app.cases.service import NewCase, create_case, get_case
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.app.projects.service import create_project
from casem.domain.events import with_sequence
from casem.services.case_event_relay.relay import (
    Relay,
    RelaySettings,
    delete_published_before,
    observe_backlog,
    published_envelope,
    relay_once,
    relay_pipelined,
)
from casem.topology.tenants import CASE_MANAGEMENT
from tests.relay.commit_elsewhere import one_case
from tests.relay.outbox_support import commit_in_another_process, published_within, unpublished
from tests.support.bus_harness import Harness, drain
from tests.support.fixtures.tenants import on_sqlite_only


async def make_changes(ctx: AppContext, cases: int, changes_per_case: int) -> int:
    """Create cases and change each several times; returns how many outbox events that wrote."""
    async with ctx.uow() as uow:
        creds = await bootstrap_org(uow, "relay", "relay@example.com")
        project = await create_project(uow, creds.org_id, creds.user_id, key="REL", name="Relay")
        await uow.commit()
    ids = []
    for n in range(cases):
        async with ctx.uow() as uow:
            case = await create_case(uow, creds.org_id, creds.user_id, NewCase(project.id, f"case {n}"))
            await uow.commit()
            ids.append(case.id)
    priorities = ["P1", "P2", "P3", "P4", "P5"]
    for i in range(changes_per_case):
        for case_id in ids:
            async with ctx.uow() as uow:
                case = await get_case(uow, creds.org_id, case_id)
                case.prioritize(priorities[i % 5], creds.user_id)
                await uow.commit()
    async with ctx.uow(read_only=True) as uow:
        return await uow.scalar(sa.select(sa.func.count()).select_from(domain_events))


async def test_every_event_is_published_once_in_per_case_order(context: AppContext, harness: Harness) -> None:
    total = await make_changes(context, cases=8, changes_per_case=5)
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=3)
    producer = harness.producer(bus)
    db = context.databases[CASE_MANAGEMENT]

    published = 0
    while (n := await relay_once(db, producer, topic, batch_size=7)) > 0:
        published += n
    assert published == total
    assert await unpublished(context) == 0
    assert (await observe_backlog(db))[0] == 0

    consumer = harness.consumer(bus, harness.name("group"), [topic])
    messages = await drain(consumer, total)
    envelopes = [json.loads(m.value) for m in messages]
    assert len({e["id"] for e in envelopes}) == total == len(envelopes)
    by_case: dict[str, list[int]] = {}
    for message, envelope in zip(messages, envelopes, strict=True):
        assert envelope["specversion"] == "1.0" and envelope["tenant"] == CASE_MANAGEMENT
        if envelope["caseid"]:
            assert message.key == envelope["caseid"].encode()
            by_case.setdefault(envelope["caseid"], []).append(envelope["sequence"])
    assert len(by_case) == 8
    for sequences in by_case.values():
        assert sequences == sorted(sequences) and len(sequences) == 6  # created + 5 priority changes


async def test_nothing_is_marked_when_the_bus_does_not_acknowledge(context: AppContext) -> None:
    total = await make_changes(context, cases=2, changes_per_case=1)
    dead = KafkaBus("127.0.0.1:1", delivery_timeout_s=2.0)
    producer = dead.producer()
    db = context.databases[CASE_MANAGEMENT]
    try:
        try:
            await relay_once(db, producer, "domain-events-unreachable", batch_size=100)
            raise AssertionError("publishing to an unreachable broker must fail")
        except PublishError:
            pass
        assert await unpublished(context) == total

        # The long-running relay backs off and keeps every row for later.
        failures = {"tenant": CASE_MANAGEMENT}
        failed_before = REGISTRY.get_sample_value("casem_relay_publish_failures_total", failures) or 0
        settings = RelaySettings(backoff=replace(RelaySettings().backoff, initial_backoff_s=0.05))
        relay = Relay(db, producer, "domain-events-unreachable", settings)
        task = asyncio.create_task(relay.run())
        await asyncio.sleep(3)
        relay.stop()
        await asyncio.wait_for(task, 30)  # stopping ends the back-off; run returns without an error
        assert await unpublished(context) == total
        assert (REGISTRY.get_sample_value("casem_relay_publish_failures_total", failures) or 0) > failed_before
    finally:
        await producer.close()
        await dead.close()


async def test_retention_deletes_only_old_published_rows(context: AppContext, harness: Harness) -> None:
    total = await make_changes(context, cases=1, changes_per_case=2)
    bus = harness.bus()
    topic = await harness.topic(bus)
    db = context.databases[CASE_MANAGEMENT]
    await relay_once(db, harness.producer(bus), topic, batch_size=1)  # publish one row only
    assert await delete_published_before(db, datetime.now(UTC) - timedelta(days=1)) == 0
    assert await delete_published_before(db, datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert await unpublished(context) == total - 1


async def test_retention_stops_at_the_first_row_it_keeps_and_takes_the_rest_later(context: AppContext) -> None:
    """Retention walks the rows from the oldest: a row published out of order (its case's earlier event was held)
    waits behind a pending one, which is never deleted, and goes once that one is published and old too."""
    await make_changes(context, cases=1, changes_per_case=2)
    db = context.databases[CASE_MANAGEMENT]
    async with db.writer.begin() as conn:
        first, pending, *later = (await conn.execute(sa.select(domain_events.c.seq).order_by("seq"))).scalars()
        await conn.execute(domain_events.update().values(time=datetime.now(UTC) - timedelta(days=2)))  # all old
        published = domain_events_pending.delete()  # what the relay's mark does
        await conn.execute(published.where(domain_events_pending.c.seq.in_([first, *later])))
    cutoff = datetime.now(UTC) - timedelta(days=1)
    assert await delete_published_before(db, cutoff) == 1
    assert await unpublished(context) == 1
    async with db.writer.begin() as conn:
        await conn.execute(published.where(domain_events_pending.c.seq == pending))
    assert await delete_published_before(db, cutoff) == 1 + len(later)
    async with context.uow(read_only=True) as uow:
        assert await uow.scalar(sa.select(sa.func.count()).select_from(domain_events)) == 0


def assert_per_case_order(envelopes: list[dict], cases: int, events_per_case: int) -> None:
    by_case: dict[str, list[int]] = {}
    for envelope in envelopes:
        if envelope["caseid"]:
            by_case.setdefault(envelope["caseid"], []).append(envelope["sequence"])
    assert len(by_case) == cases
    for sequences in by_case.values():
        assert sequences == sorted(sequences) and len(sequences) == events_per_case


async def test_pipelined_replicas_keep_per_case_order(context: AppContext, harness: Harness) -> None:
    # Two replicas, each with three passes in flight and batches smaller than a case's run of events: a pass
    # must leave a case to the pass (its own or the other replica's) that holds its earlier events.
    total = await make_changes(context, cases=12, changes_per_case=5)
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=3)
    db = context.databases[CASE_MANAGEMENT]
    published = await asyncio.gather(
        *(relay_pipelined(db, harness.producer(bus), topic, batch_size=5, depth=3) for _ in range(2))
    )
    # A pass that finds every case it saw held by another ends early: whatever is left goes in the next passes.
    rest = 0
    while (n := await relay_pipelined(db, harness.producer(bus), topic, batch_size=5, depth=3)) > 0:
        rest += n
    assert sum(published) + rest == total
    assert await unpublished(context) == 0

    messages = await drain(harness.consumer(bus, harness.name("group"), [topic]), total)
    envelopes = [json.loads(m.value) for m in messages]
    assert len({e["id"] for e in envelopes}) == total == len(envelopes)
    assert_per_case_order(envelopes, cases=12, events_per_case=6)


async def test_rows_stored_with_a_sequence_attribute_publish_with_theirs(context: AppContext, harness: Harness) -> None:
    # Rows written before the outbox stopped storing "sequence" carry `"sequence": null`; an event's own data
    # may use the word too. Both go out with the row's sequence number and everything else as stored.
    total = await make_changes(context, cases=1, changes_per_case=2)
    db = context.databases[CASE_MANAGEMENT]
    async with db.writer.begin() as conn:
        rows = (await conn.execute(sa.select(domain_events.c.seq, domain_events.c.envelope))).all()
        legacy, worded = rows[0], rows[1]
        rewritten = {
            legacy.seq: {**legacy.envelope, "sequence": None},
            worded.seq: {**worded.envelope, "data": {**worded.envelope["data"], "sequence": "not ours"}},
        }
        for seq, envelope in rewritten.items():
            await conn.execute(sa.update(domain_events).where(domain_events.c.seq == seq).values(envelope=envelope))
    expected = {seq: {**envelope, "sequence": seq} for seq, envelope in rewritten.items()}
    expected |= {row.seq: {**row.envelope, "sequence": row.seq} for row in rows[2:]}
    assert all("sequence" not in row.envelope for row in rows)  # what the outbox stores now

    bus = harness.bus()
    topic = await harness.topic(bus)
    assert await relay_pipelined(db, harness.producer(bus), topic) == total
    messages = await drain(harness.consumer(bus, harness.name("group"), [topic]), total)
    published = {e["sequence"]: e for e in (json.loads(m.value) for m in messages)}
    assert published == expected
    assert published[worded.seq]["data"]["sequence"] == "not ours"


def test_published_envelope_is_the_stored_one_with_its_sequence() -> None:
    stored = {"specversion": "1.0", "id": "e1", "data": {"text": 'quote " and {brace}', "n": 1.5}}
    for text in (json.dumps(stored), json.dumps(stored, separators=(",", ":")), "{}", "{ }"):
        assert json.loads(published_envelope(text, 42)) == with_sequence(json.loads(text), 42)
    legacy = json.dumps({**stored, "sequence": None})
    assert json.loads(published_envelope(legacy, 7)) == with_sequence(stored, 7)


async def test_an_idle_relay_publishes_a_commit_of_its_process_at_once(context: AppContext, harness: Harness) -> None:
    """Backed off to a long wait (nothing to publish), the relay is woken by the unit of work's commit."""
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=1)
    producer = harness.producer(bus)
    db = context.databases[CASE_MANAGEMENT]
    await one_case(context, "idle-relay-1", "IDL", "after a quiet spell")
    relay = Relay(db, producer, topic, RelaySettings(idle_poll_s=600.0, idle_poll_max_s=600.0))
    task = asyncio.create_task(relay.run())
    try:
        # The first pass publishes what is there, then the relay waits 600 s.
        assert await published_within(context, 10.0)
        await one_case(context, "idle-relay-2", "IDL", "after a quiet spell")
        assert await published_within(context, 10.0)  # long before the relay's own next look
    finally:
        relay.stop()
        await asyncio.wait_for(task, 30)
        await producer.close()


async def test_under_a_stream_of_commits_a_relay_gathers_them_into_fewer_passes(
    context: AppContext, harness: Harness
) -> None:
    """Each commit wakes the relay; after a pass that published, it pauses busy_pass_interval_s, so commits arriving
    meanwhile go in one pass rather than one pass each. Every event is still published."""
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=1)
    producer = harness.producer(bus)
    db = context.databases[CASE_MANAGEMENT]
    relay = Relay(
        db, producer, topic, RelaySettings(idle_poll_s=600.0, idle_poll_max_s=600.0, busy_pass_interval_s=0.5)
    )
    task = asyncio.create_task(relay.run())
    try:
        await one_case(context, "gather-0", "GAT", "first")
        assert await published_within(context, 10.0)  # an idle relay's first pass is not delayed
        passes_before = relay.passes
        for n in range(1, 9):  # eight new orgs with a case, 0.1 s apart: 16 commits with events, each waking it
            await one_case(context, f"gather-{n}", "GAT", f"case {n}")
            await asyncio.sleep(0.1)
        assert await published_within(context, 10.0)
        # Without the interval each commit had a pass of its own (16 when this was checked);
        # with a 0.5 s pause after each pass, over about a second and a half: a few.
        assert relay.passes - passes_before <= 4, relay.passes - passes_before
    finally:
        relay.stop()
        await asyncio.wait_for(task, 30)
        await producer.close()


async def test_an_idle_relay_counts_its_backlog_now_and_then_not_on_every_pass(
    context: AppContext, harness: Harness
) -> None:
    """The backlog count reads every unpublished row: an idle relay's passes (here every 10 ms, none skipped) do
    not each run it, while the claim still runs on every pass, so a new commit is still published at once."""
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=1)
    producer = harness.producer(bus)
    db = context.databases[CASE_MANAGEMENT]
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement.lower())

    engines = {db.writer.sync_engine, db.reader.sync_engine}
    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", seen)
    every_pass = RelaySettings(idle_poll_s=0.01, idle_poll_max_s=0.01, backlog_every_s=600, unchanged_pass_every_s=0)
    relay = Relay(db, producer, topic, every_pass)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(1.5)
        counts = sum("count(" in s for s in statements)
        # The relay kept looking for work (on PostgreSQL its claim goes through the driver's pipeline, which
        # SQLAlchemy's statement events do not see: the relay's own count of passes says it).
        assert relay.passes >= 10
        assert counts == 1  # the first pass set the gauges; the next count is due in 600 s
        await one_case(context, "idle-relay-backlog", "IDL", "after a quiet spell")
        assert await published_within(context, 10.0)
    finally:
        relay.stop()
        await asyncio.wait_for(task, 30)
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", seen)
        await producer.close()


@on_sqlite_only
async def test_an_idle_relay_on_sqlite_skips_passes_until_another_process_commits(
    context: AppContext, harness: Harness
) -> None:
    """On SQLite nothing can be new while the database files are unchanged: the idle relay looks at them instead of
    claiming (here every 10 ms), and a commit by another process changes them: published. (Its doorbell is off
    here, listen_for_commits=False, so that the files' change is what finds the commit.)"""
    db = context.databases[CASE_MANAGEMENT]
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=1)
    producer = harness.producer(bus)
    claims: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        lowered = statement.lower()
        if lowered.startswith("select") and "from domain_events_pending" in lowered and "count(" not in lowered:
            claims.append(statement)

    sa.event.listen(db.writer.sync_engine, "before_cursor_execute", seen)
    settings = RelaySettings(
        idle_poll_s=0.01, idle_poll_max_s=0.01, unchanged_pass_every_s=600.0, listen_for_commits=False
    )
    relay = Relay(db, producer, topic, settings)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(1.5)
        assert 1 <= len(claims) <= 3  # the first pass (and the one after it marked rows), then none: ~150 before
        await commit_in_another_process(context, "sqlite-elsewhere")
        # Found by its files' change, long before the 600 s pass.
        assert await published_within(context, 20.0, poll_s=0.05)
    finally:
        relay.stop()
        await asyncio.wait_for(task, 30)
        sa.event.remove(db.writer.sync_engine, "before_cursor_execute", seen)
        await producer.close()
