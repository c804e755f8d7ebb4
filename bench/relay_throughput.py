"""case-event-relay on real engines: throughput and outbox→topic lag, next to the raw producer.

usage: .venv/bin/python bench/relay_throughput.py --postgres postgresql://postgres@127.0.0.1:55432/postgres \
           --bootstrap 127.0.0.1:59092 [--events 50000] [--batch 500] [--pairs 3] [--lag-rate 500] [--lag-seconds 10]

The measurements, in one run, against the same database and broker:
  raw, relay  --pairs times, alternated (raw, relay, raw, relay, ...), the outbox tables vacuumed before each pair
              (off the clocks); each pair is
              raw    publish N messages (the relay's messages for N outbox rows) with the bus producer directly, in
                     the same batch size, one batch in flight
              relay  drain a fresh backlog of N outbox rows as the running relay does (claim → publish → mark, the
                     next batch claimed while one is published)
              so both sides of a pair meet about the same load on the machine (its other work comes and goes)
  raw 4       the raw producer with 4 batches in flight, its pipelined best (once, after the pairs)
  lag         a writer commits events at --lag-rate/s while the relay runs with its default settings;
              a consumer reports (receive time − commit time) p50/p99
All of it runs on one producer, warmed up by one message before any clock starts (connections, producer id).
Prints one JSON object. `ratio_relay_to_raw` is the MEDIAN OF THE PAIRS' RATIOS (relay events/s ÷ raw msgs/s of
the same pair); `pairs` lists each pair (its rates, its ratio, the 1-minute load average when it ended) and
`relay_events_per_s` / `raw_producer_msgs_per_s` are the medians of the relay's and of the raw producer's rates.
Beside the rates, the CPU each side used, as seconds per run (medians over the pairs, `cpu_seconds`) and as
microseconds per event (`cpu_us_per_event`, median over the pairs): this process's (the relay or the raw loop, the
producer's threads included) and the database server processes' serving the bench database (read from /proc:
PostgreSQL on this machine; null otherwise). With the peak RSS of this process (the relay runs in it) and the load
average at the start and the end. On a loaded machine the rates swing with the other work; the CPU figures much less.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from datetime import UTC, datetime

import psycopg
import sqlalchemy as sa
from _support import cpu_seconds, load_average, peak_rss_mb
from sqlalchemy.engine import make_url

from casem.adapters.bus import OutgoingMessage, open_bus
from casem.adapters.bus.namespace import NamespacedBus
from casem.adapters.storage.database import TenantDatabase, open_tenant_database
from casem.adapters.storage.migrate import upgrade
from casem.adapters.storage.tables import domain_events
from casem.adapters.storage.unit_of_work import stored_envelope
from casem.domain.events import DomainEvent
from casem.services.case_event_relay.relay import (
    CLAIMED_COLUMNS,
    Relay,
    RelaySettings,
    message_for,
    relay_pipelined,
)
from casem.topology.tenants import CASE_MANAGEMENT, DatabaseEndpoints, to_async_dsn

ORG = str(uuid.uuid4())
CASE_IDS = [str(uuid.uuid4()) for _ in range(1000)]


def _rows(n: int, start: int = 0) -> list[dict]:
    rows = []
    for i in range(start, start + n):
        event = DomainEvent(
            type="case.priority_changed",
            org_id=ORG,
            actor_id=ORG,
            subject_id=CASE_IDS[i % len(CASE_IDS)],
            case_id=CASE_IDS[i % len(CASE_IDS)],
            data={"changes": {"priority": {"old": "P2", "new": "P3"}}, "key": f"BENCH-{i % 1000}"},
        )
        rows.append(
            {
                "id": event.id,
                "type": event.cloudevent_type,
                "version": 1,
                "org_id": ORG,
                "case_id": event.case_id,
                "actor_id": ORG,
                "time": event.time,
                "envelope": stored_envelope(event.envelope(CASE_MANAGEMENT)),
            }
        )
    return rows


def _fresh_database(admin: str) -> str:
    name = f"casem_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_url(to_async_dsn(admin)).set(database=name).render_as_string(hide_password=False)


def _drop_database(admin: str, dsn: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{make_url(dsn).database}" WITH (FORCE)')


def _database_cpu_seconds(admin: str, dsn: str) -> float | None:
    """CPU time used so far by the server processes connected to the bench database (None: not on this machine)."""
    with psycopg.connect(admin, autocommit=True) as conn:
        pids = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (make_url(dsn).database,)).fetchall()
    try:
        return sum(cpu_seconds(pid) for (pid,) in pids)
    except (FileNotFoundError, PermissionError):
        return None


def _settle(dsn: str) -> None:
    """Vacuum and analyse the outbox tables before a pair, off the clocks. Without it, in all 4 runs made so, the
    second pair's raw rate came out at about half the other pairs' (its ratio above 1): most likely the autovacuum
    that the first drain's deletes and the inserts set off, landing in the raw producer's measurement."""
    url = make_url(dsn).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) domain_events, domain_events_pending")


def _cpu_delta(before: float | None, after: float | None) -> float | None:
    return after - before if before is not None and after is not None else None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _insert_backlog(db: TenantDatabase, count: int, start: int) -> None:
    async with db.writer.begin() as conn:
        for offset in range(0, count, 5000):
            await conn.execute(sa.insert(domain_events), _rows(min(5000, count - offset), start + offset))


async def run(args: argparse.Namespace) -> dict[str, object]:
    load_before = load_average()
    dsn = _fresh_database(args.postgres)
    upgrade(dsn)
    db = open_tenant_database(CASE_MANAGEMENT, DatabaseEndpoints(master=dsn))
    env = {"CASEM_KAFKA_BOOTSTRAP": args.bootstrap} if args.bootstrap else {"CASEM_BUS_PATH": args.embedded}
    bus = NamespacedBus(open_bus(env), f"bench-{uuid.uuid4().hex[:8]}")
    topic = "domain-events"
    await bus.ensure_topic(topic, args.partitions)
    producer = bus.producer()
    # Every measurement below uses a producer that already has its connections and its idempotent producer id:
    # without this the first clock alone would include the producer's start.
    await producer.publish(topic, b"warm-up", b"{}")

    # The raw producer's messages: the relay's for the first backlog (built before any clock starts).
    await _insert_backlog(db, args.events, 0)
    async with db.reader.connect() as conn:
        rows = (await conn.execute(sa.select(*CLAIMED_COLUMNS).order_by(domain_events.c.seq))).all()
    messages = [message_for(row, topic) for row in rows]
    batches = [messages[i : i + args.batch] for i in range(0, len(messages), args.batch)]

    # -- raw and relay, alternated ---------------------------------------------------------------
    pairs: list[dict[str, object]] = []
    raw_rates: list[float] = []
    relay_rates: list[float] = []
    ratios: list[float] = []
    raw_cpu: list[float] = []
    relay_cpu: list[float] = []
    database_cpu: list[float | None] = []
    inserted = args.events
    for pair in range(args.pairs):
        if pair:  # the first backlog is in already
            await _insert_backlog(db, args.events, inserted)
            inserted += args.events
        _settle(dsn)
        process_cpu = cpu_seconds()
        started = time.perf_counter()
        for batch in batches:
            await producer.publish_batch(batch)
        raw_s = time.perf_counter() - started
        raw_cpu.append(cpu_seconds() - process_cpu)

        server_cpu = _database_cpu_seconds(args.postgres, dsn)  # the pool keeps the relay's connections open
        process_cpu = cpu_seconds()
        started = time.perf_counter()
        published = await relay_pipelined(db, producer, topic, args.batch, RelaySettings().pipeline_depth)
        relay_s = time.perf_counter() - started
        relay_cpu.append(cpu_seconds() - process_cpu)
        database_cpu.append(_cpu_delta(server_cpu, _database_cpu_seconds(args.postgres, dsn)))
        if published != args.events:
            raise RuntimeError(f"the relay published {published} events of a backlog of {args.events}")
        raw_rates.append(len(messages) / raw_s)
        relay_rates.append(published / relay_s)
        ratios.append(relay_rates[-1] / raw_rates[-1])
        pairs.append(
            {
                "raw_producer_msgs_per_s": round(raw_rates[-1]),
                "relay_events_per_s": round(relay_rates[-1]),
                "ratio_relay_to_raw": round(ratios[-1], 3),
                "load_1m": load_average()[0],
            }
        )

    queue: asyncio.Queue[list[OutgoingMessage]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)

    async def lane() -> None:
        while not queue.empty():
            await producer.publish_batch(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(4)))
    raw_pipelined_s = time.perf_counter() - started

    # -- lag under a steady write rate ---------------------------------------------------------
    lag_topic = "domain-events-lag"
    await bus.ensure_topic(lag_topic, args.partitions)
    consumer = bus.consumer("bench-lag", [lag_topic])
    await consumer.poll(timeout=2.0)  # join the group before the clock starts
    relay = Relay(db, producer, lag_topic, RelaySettings())
    relay_task = asyncio.create_task(relay.run())
    lags: list[float] = []
    expected = int(args.lag_rate * args.lag_seconds)

    async def writer() -> None:
        interval = 1.0 / args.lag_rate * 10
        for i in range(0, expected, 10):
            async with db.writer.begin() as conn:
                await conn.execute(sa.insert(domain_events), _rows(10, inserted + i))
            await asyncio.sleep(interval)

    async def reader() -> None:
        deadline = time.monotonic() + args.lag_seconds + 60
        while len(lags) < expected and time.monotonic() < deadline:
            for message in await consumer.poll(timeout=0.5):
                committed = datetime.fromisoformat(json.loads(message.value)["time"].replace("Z", "+00:00"))
                lags.append((datetime.now(UTC) - committed).total_seconds())

    await asyncio.gather(writer(), reader())
    relay.stop()
    await relay_task
    await consumer.close()
    await producer.close()
    await bus.close()
    await db.dispose()
    _drop_database(args.postgres, dsn)

    known = [c for c in database_cpu if c is not None]
    relay_database = statistics.median(known) if len(known) == len(database_cpu) else None
    relay_process, raw_process = statistics.median(relay_cpu), statistics.median(raw_cpu)
    per_event = 1e6 / args.events
    return {
        "bench": "relay_throughput",
        "database": "postgresql",
        "bus": "kafka" if args.bootstrap else "embedded",
        "events": args.events,
        "batch": args.batch,
        "relay_events_per_s": round(statistics.median(relay_rates)),
        "raw_producer_msgs_per_s": round(statistics.median(raw_rates)),
        "raw_producer_pipelined_msgs_per_s": round(len(messages) / raw_pipelined_s),
        "ratio_relay_to_raw": round(statistics.median(ratios), 3),
        "pairs": pairs,
        "cpu_seconds": {
            "relay": {"process": round(relay_process, 2), "database": _round(relay_database, 2)},
            "raw_producer": {"process": round(raw_process, 2), "database": 0.0},
        },
        "cpu_us_per_event": {
            "relay": {"process": round(relay_process * per_event, 1), "database": _round(relay_database, 1, per_event)},
            "raw_producer": {"process": round(raw_process * per_event, 1), "database": 0.0},
        },
        "lag": {
            "write_rate_per_s": args.lag_rate,
            "relay_idle_poll_s": RelaySettings().idle_poll_s,
            "samples": len(lags),
            "p50_ms": round(statistics.median(lags) * 1000, 1) if lags else None,
            "p99_ms": round(_percentile(lags, 0.99) * 1000, 1) if lags else None,
        },
        "peak_rss_mb": {"bench process (relay, raw producer, lag consumer)": peak_rss_mb()},
        "load_average": {"start": load_before, "end": load_average()},
    }


def _round(value: float | None, digits: int, scale: float = 1.0) -> float | None:
    return None if value is None else round(value * scale, digits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", required=True, help="admin DSN; a fresh database is created for the run")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--bootstrap", help="Kafka bootstrap servers")
    target.add_argument("--embedded", help="path of an embedded bus file")
    parser.add_argument("--events", type=int, default=50_000, help="events per measurement (each relay drain)")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument(
        "--pairs",
        type=int,
        default=3,
        help="raw/relay measurements, alternated; ratio_relay_to_raw is the median of the pairs' ratios",
    )
    parser.add_argument("--lag-rate", type=float, default=500.0)
    parser.add_argument("--lag-seconds", type=float, default=10.0)
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
