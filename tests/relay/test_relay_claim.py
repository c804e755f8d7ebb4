"""The relay's claim: per-case order across batch boundaries when a publish fails part-way, rows another
transaction holds, (PostgreSQL) a plan that reads only the batch however stale the statistics are, and (SQLite) a
pass that leaves the database's write lock free while it publishes, its relays taking turns instead."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from typing import Any

import pytest
import sqlalchemy as sa

from casem.adapters.bus import Delivery, OutgoingMessage, Producer, PublishError
from casem.adapters.storage.pipelined import fetch_after
from casem.adapters.storage.tables import domain_events, domain_events_pending
from casem.app.context import AppContext
from casem.services.case_event_relay.relay import (
    CLAIM_PLANNER,
    CLAIMED_COLUMNS,
    claim_query,
    message_for,
    relay_once,
    relay_pipelined,
)
from casem.topology.tenants import CASE_MANAGEMENT
from tests.relay.test_relay import make_changes, unpublished
from tests.support.bus_harness import Harness, drain
from tests.support.fixtures.tenants import on_postgres_only, on_sqlite_only


class StopsAcknowledgingMidBatch:
    """The real producer, except that its `fail_at`-th batch gets only its first half written before the rest is
    refused, as when a broker stops acknowledging part-way through a batch."""

    def __init__(self, inner: Producer, fail_at: int) -> None:
        self.inner = inner
        self.fail_at = fail_at
        self.batches = 0
        self.written_then_refused: list[OutgoingMessage] = []
        self.refused: list[OutgoingMessage] = []

    async def publish(self, topic: str, key: bytes | None, value: bytes, headers: Sequence = ()) -> Delivery:
        return (await self.publish_batch([OutgoingMessage(topic, key, value, tuple(headers))]))[0]

    async def publish_batch(self, messages: Sequence[OutgoingMessage]) -> list[Delivery]:
        self.batches += 1
        if self.batches != self.fail_at:
            return await self.inner.publish_batch(messages)
        half = len(messages) // 2
        delivered = await self.inner.publish_batch(messages[:half])
        self.written_then_refused = list(messages[:half])
        self.refused = list(messages[half:])
        raise PublishError("stopped acknowledging", delivered=delivered, failed=messages[half:])

    async def close(self) -> None:
        await self.inner.close()


class WritesWhilePublishing:
    """The real producer, which before each batch tries to take the SQLite database's write lock at once (timeout 0),
    as case-api's next write would, and notes whether it could."""

    def __init__(self, inner: Producer, path: str) -> None:
        self.inner = inner
        self.path = path
        self.could_write: list[bool] = []

    async def publish(self, topic: str, key: bytes | None, value: bytes, headers: Sequence = ()) -> Delivery:
        return (await self.publish_batch([OutgoingMessage(topic, key, value, tuple(headers))]))[0]

    async def publish_batch(self, messages: Sequence[OutgoingMessage]) -> list[Delivery]:
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            self.could_write.append(True)
        except sqlite3.OperationalError as error:
            assert "locked" in str(error), error
            self.could_write.append(False)
        finally:
            conn.close()
        return await self.inner.publish_batch(messages)

    async def close(self) -> None:
        await self.inner.close()


def event_id(message: OutgoingMessage) -> str:
    return dict(message.headers)["ce_id"].decode()


def assert_each_case_in_order(envelopes: list[dict[str, Any]], expected: dict[str, list[int]]) -> None:
    """At least once, in per-case order: every event arrives, and none arrives before each earlier event of its
    case arrived at least once (a redelivered event may come again later)."""
    seen: dict[str, set[int]] = {}
    for envelope in envelopes:
        case_id, sequence = envelope["caseid"], envelope["sequence"]
        if not case_id:
            continue
        earlier = {s for s in expected[case_id] if s < sequence}
        assert earlier <= seen.get(case_id, set()), f"case {case_id}: {sequence} before {earlier - seen[case_id]}"
        seen.setdefault(case_id, set()).add(sequence)
    assert {case: sorted(s) for case, s in seen.items()} == expected


async def sequences_by_case(ctx: AppContext) -> dict[str, list[int]]:
    async with ctx.uow(read_only=True) as uow:
        rows = (
            await uow.execute(
                sa.select(domain_events.c.case_id, domain_events.c.seq)
                .where(domain_events.c.case_id.is_not(None))
                .order_by(domain_events.c.seq)
            )
        ).all()
    by_case: dict[str, list[int]] = {}
    for case_id, seq in rows:
        by_case.setdefault(case_id, []).append(seq)
    return by_case


async def test_order_holds_across_batches_when_a_publish_fails_part_way(context: AppContext, harness: Harness) -> None:
    total = await make_changes(context, cases=6, changes_per_case=4)
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=3)
    db = context.databases[CASE_MANAGEMENT]
    failing = StopsAcknowledgingMidBatch(harness.producer(bus), fail_at=2)

    with pytest.raises(PublishError):
        await relay_pipelined(db, failing, topic, batch_size=6, depth=2)
    assert failing.refused and failing.written_then_refused
    # Nothing of the failed batch is marked, the half the bus did take included: it all goes out again.
    failed_ids = [event_id(m) for m in failing.written_then_refused + failing.refused]
    async with context.uow(read_only=True) as uow:
        marked = await uow.scalar(
            sa.select(sa.func.count())
            .select_from(domain_events)
            .where(
                domain_events.c.id.in_(failed_ids),
                ~sa.exists().where(domain_events_pending.c.seq == domain_events.c.seq),
            )
        )
    assert marked == 0
    left = await unpublished(context)
    assert len(failed_ids) <= left < total

    # A pass whose claim finds only cases its own batch in flight holds ends early: the next pass takes the rest.
    again, producer = 0, harness.producer(bus)
    while (n := await relay_pipelined(db, producer, topic, batch_size=6, depth=2)) > 0:
        again += n
    assert again == left
    assert await unpublished(context) == 0

    expected_messages = total + len(failing.written_then_refused)  # the half taken before the failure, twice
    messages = await drain(harness.consumer(bus, harness.name("group"), [topic]), expected_messages)
    envelopes = [json.loads(m.value) for m in messages]
    assert len(envelopes) == expected_messages
    assert len({e["id"] for e in envelopes}) == total
    assert_each_case_in_order(envelopes, await sequences_by_case(context))


@on_postgres_only
async def test_a_case_waits_for_its_row_another_transaction_holds(context: AppContext, harness: Harness) -> None:
    db = context.databases[CASE_MANAGEMENT]
    total = await make_changes(context, cases=2, changes_per_case=2)
    first, second = (await sequences_by_case(context)).values()
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=2)
    producer = harness.producer(bus)

    # Another relay replica holds the middle event of the first case: its first event may go out, its last may not
    # (it would overtake the held one); the other case is not held back.
    async with db.writer.connect() as other, other.begin():
        held = first[1]
        await other.execute(
            sa.select(domain_events_pending.c.seq).where(domain_events_pending.c.seq == held).with_for_update()
        )
        assert await relay_once(db, producer, topic, batch_size=100) == total - 2
        async with context.uow(read_only=True) as uow:
            pending = (
                await uow.execute(sa.select(domain_events_pending.c.seq).order_by(domain_events_pending.c.seq))
            ).scalars()
            assert list(pending) == first[1:]
    assert await relay_once(db, producer, topic, batch_size=100) == 2

    messages = await drain(harness.consumer(bus, harness.name("group"), [topic]), total)
    envelopes = [json.loads(m.value) for m in messages]
    assert len(envelopes) == total
    assert_each_case_in_order(envelopes, await sequences_by_case(context))
    assert [e["sequence"] for e in envelopes if e["sequence"] in second] == second


def plan_nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in plan_nodes(child))]


@on_postgres_only
async def test_the_claim_walks_the_pending_rows_index_without_sorting(context: AppContext) -> None:
    """Whatever the statistics say (here: none, the table was never analysed, as after a burst), the claim takes
    the first pending rows from the pending table's primary key in order and stops at the batch size."""
    db = context.databases[CASE_MANAGEMENT]
    await make_changes(context, cases=2, changes_per_case=3)
    query = claim_query(batch_size=4).compile(dialect=db.writer.dialect, compile_kwargs={"literal_binds": True})
    async with db.writer.connect() as conn, conn.begin():
        await conn.execute(CLAIM_PLANNER)
        plan = (await conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {query}")).scalar_one()
    nodes = plan_nodes(plan[0]["Plan"])
    assert not [n["Node Type"] for n in nodes if n["Node Type"] in ("Sort", "Incremental Sort", "Bitmap Heap Scan")]
    locking = next(n for n in nodes if n["Node Type"] == "LockRows")
    scan = locking["Plans"][0]
    assert (scan["Node Type"], scan["Index Name"]) == ("Index Scan", "pk_domain_events_pending")


@on_postgres_only
async def test_the_claims_rows_make_the_same_messages_as_the_stored_rows(context: AppContext) -> None:
    """PostgreSQL's claim reads its rows in the binary format: `message_for` makes of them byte for byte the messages
    it makes of the stored rows read as SQLAlchemy does, for the rows `published_envelope` prefixes (text beyond
    ASCII included), those it decodes (a legacy "sequence", the word in the data, an empty object) and an event keyed
    by its subject."""
    db = context.databases[CASE_MANAGEMENT]
    await make_changes(context, cases=2, changes_per_case=3)
    async with db.writer.begin() as conn:
        rows = (await conn.execute(sa.select(domain_events.c.seq, domain_events.c.envelope))).all()
        rewritten = {
            rows[0].seq: {**rows[0].envelope, "sequence": None},
            rows[1].seq: {**rows[1].envelope, "data": {"note": "sequence"}},
            rows[2].seq: {},
            rows[3].seq: {**rows[3].envelope, "data": {"title": 'née « 雪 » "q" \\ 🙂'}},
            rows[4].seq: {**rows[4].envelope, "subject": "subject-4"},
        }
        for seq, envelope in rewritten.items():
            await conn.execute(sa.update(domain_events).where(domain_events.c.seq == seq).values(envelope=envelope))
        await conn.execute(sa.update(domain_events).where(domain_events.c.seq == rows[4].seq).values(case_id=None))
    query = str(claim_query(batch_size=100).compile(dialect=db.writer.dialect, compile_kwargs={"literal_binds": True}))
    async with db.writer.connect() as conn, conn.begin():
        claimed = await fetch_after(conn, [CLAIM_PLANNER.text], query, binary=True)
        stored = {row.seq: row for row in (await conn.execute(sa.select(*CLAIMED_COLUMNS))).all()}
    assert len(claimed) == len(rows) and not any(row.held for row in claimed)
    trace = (("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),)
    for row in claimed:
        assert message_for(row, "topic", trace) == message_for(stored[row.seq], "topic", trace)
    assert message_for(next(r for r in claimed if r.seq == rows[4].seq), "topic").key == b"subject-4"
    assert json.loads(message_for(next(r for r in claimed if r.seq == rows[3].seq), "t").value)["data"] == {
        "title": 'née « 雪 » "q" \\ 🙂'
    }


@on_sqlite_only
async def test_on_sqlite_a_pass_publishes_without_holding_the_write_lock(context: AppContext, harness: Harness) -> None:
    total = await make_changes(context, cases=6, changes_per_case=3)
    bus = harness.bus()
    topic = await harness.topic(bus, partitions=3)
    db = context.databases[CASE_MANAGEMENT]
    path = db.writer.url.database
    assert path
    producers = [WritesWhilePublishing(harness.producer(bus), path) for _ in range(2)]
    # Two relays at once, in batches smaller than the outbox: they take turns, so each event goes out once.
    published = await asyncio.gather(*(relay_pipelined(db, p, topic, batch_size=4) for p in producers))
    assert sum(published) == total
    assert await unpublished(context) == 0
    could_write = [ok for p in producers for ok in p.could_write]
    assert len(could_write) >= total // 4 and all(could_write)  # case-api could have committed during every publish
    messages = await drain(harness.consumer(bus, harness.name("group"), [topic]), total)
    envelopes = [json.loads(m.value) for m in messages]
    assert len(envelopes) == len({e["id"] for e in envelopes}) == total
    assert_each_case_in_order(envelopes, await sequences_by_case(context))
