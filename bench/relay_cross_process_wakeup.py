"""The first event after a quiet spell when the commit is made by another process (case-api) than the relay's.

usage: CASEM_TEST_POSTGRES_DSN=postgresql://... PYTHONPATH=. .venv/bin/python bench/relay_cross_process_wakeup.py
       [--quiet 5] [--samples 5]
       PYTHONPATH=. .venv/bin/python bench/relay_cross_process_wakeup.py --backend sqlite [--quiet 5] [--samples 5]

On a fresh PostgreSQL database (or SQLite file), a relay (default settings, embedded bus) runs in this process. For
each sample it is left idle for --quiet seconds (its poll has backed off to idle_poll_max_s), then a separate Python
process creates one case; the latency is from that process's commit (its wall clock right after COMMIT) to the bus's
acknowledgement of the case's first event to the relay, which marks it published right after (same machine, same
clock). Measured with the relay polling only (listen_for_commits=False: the behaviour before LISTEN/NOTIFY, or
before doorbells on SQLite) and with it listening. Beside them, the raw engine: on PostgreSQL its own NOTIFY round
trip (`SELECT pg_notify` on one autocommit connection until another connection that LISTENs receives it); on
SQLite one non-blocking write into a FIFO another process reads and one `Doorbells.ring()` to one listener
(casem.adapters.doorbell). Prints one JSON object with the load average (the machine is shared: figures are noisy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _support import drop_postgres, fresh_postgres, load_average  # noqa: E402


async def commit_one_case(dsn: str, org_id: str, user_id: str, project_id: str) -> None:
    """The other process: one case, then print (case id, wall-clock time right after the commit)."""
    from casem.app.cases.service import NewCase, create_case
    from casem.app.context import AppContext
    from casem.topology.tenants import CASE_MANAGEMENT, DatabaseEndpoints

    ctx = AppContext.open({CASE_MANAGEMENT: DatabaseEndpoints(master=dsn)}, migrate=False)
    try:
        async with ctx.uow() as uow:
            case = await create_case(uow, org_id, user_id, NewCase(project_id, "after a quiet spell"))
            await uow.commit()
            committed = time.time()
        print(json.dumps({"case_id": case.id, "committed": committed}))
    finally:
        await ctx.close()


async def raw_notify_round_trips(dsn: str, count: int) -> list[float]:
    import psycopg

    from casem.adapters.storage.outbox_wakeup import libpq_dsn

    plain = libpq_dsn(dsn)
    times = []
    async with (
        await psycopg.AsyncConnection.connect(plain, autocommit=True) as listening,
        await psycopg.AsyncConnection.connect(plain, autocommit=True) as sending,
    ):
        await listening.execute("LISTEN bench_round_trip")
        for _ in range(count):
            started = time.perf_counter()
            await sending.execute("SELECT pg_notify('bench_round_trip', 'x')")
            async for _note in listening.notifies(timeout=5.0, stop_after=1):
                pass
            times.append(time.perf_counter() - started)
    return times


async def first_event_latencies(
    dsn: str, listen: bool, quiet_s: float, samples: int, ids: dict[str, str]
) -> list[float]:
    from casem.adapters.bus.embedded import EmbeddedBus
    from casem.app.context import AppContext
    from casem.services.case_event_relay.relay import Relay, RelaySettings
    from casem.topology.tenants import CASE_MANAGEMENT, DatabaseEndpoints

    ctx = AppContext.open({CASE_MANAGEMENT: DatabaseEndpoints(master=dsn)}, migrate=False)
    bus = EmbeddedBus(Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-wakeup-{os.getpid()}-{listen}.db")
    await bus.ensure_topic("bench-wakeup", 1)
    producer = bus.producer()
    acknowledged: dict[str, float] = {}  # case id → wall clock when the bus acknowledged its first event

    class Stamping:  # the relay's producer, noting when each case's first event was acknowledged
        async def publish_batch(self, messages: list) -> list:
            deliveries = await producer.publish_batch(messages)
            for message in messages:
                acknowledged.setdefault(message.key.decode(), time.time())
            return deliveries

    relay = Relay(ctx.databases[CASE_MANAGEMENT], Stamping(), "bench-wakeup", RelaySettings(listen_for_commits=listen))
    task = asyncio.create_task(relay.run())
    latencies = []
    try:
        for _ in range(samples):
            await asyncio.sleep(quiet_s)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--commit-one",
                dsn,
                ids["org_id"],
                ids["user_id"],
                ids["project_id"],
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await process.communicate()
            made = json.loads(out.decode().strip().splitlines()[-1])
            while made["case_id"] not in acknowledged:
                await asyncio.sleep(0.005)
            latencies.append(acknowledged[made["case_id"]] - made["committed"])
    finally:
        relay.stop()
        await task
        await producer.close()
        await bus.close()
        await ctx.close()
    return latencies


async def setup_org(dsn: str) -> dict[str, str]:
    from casem.app.context import AppContext
    from casem.app.identity.service import bootstrap_org
    from casem.app.projects.service import create_project
    from casem.topology.tenants import CASE_MANAGEMENT, DatabaseEndpoints

    ctx = AppContext.open({CASE_MANAGEMENT: DatabaseEndpoints(master=dsn)})
    try:
        async with ctx.uow() as uow:
            creds = await bootstrap_org(uow, "wakeup", "wakeup@example.com")
            project = await create_project(uow, creds.org_id, creds.user_id, key="WAK", name="Wakeup")
            await uow.commit()
    finally:
        await ctx.close()
    return {"org_id": creds.org_id, "user_id": creds.user_id, "project_id": project.id}


def summary(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    return {"median_ms": round(statistics.median(ms), 1), "min_ms": round(ms[0], 1), "max_ms": round(ms[-1], 1)}


async def on_sqlite(args: argparse.Namespace) -> dict[str, object]:
    from bus_cross_process_wakeup import raw_fifo_figures

    with tempfile.TemporaryDirectory(prefix="casem-bench-relay-wakeup-") as tmp:
        dsn = f"sqlite+aiosqlite:///{Path(tmp) / 'case_management.db'}"
        ids = await setup_org(dsn)
        polling = await first_event_latencies(dsn, False, args.quiet, args.samples, ids)
        listening = await first_event_latencies(dsn, True, args.quiet, args.samples, ids)
        raw = raw_fifo_figures(Path(tmp), 200)
    return {
        "backend": "sqlite",
        "quiet_s": args.quiet,
        "samples": args.samples,
        "first_event_cross_process_polling_only": summary(polling),
        "first_event_cross_process_doorbell": summary(listening),
        "raw": raw,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quiet", type=float, default=5.0)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--commit-one", nargs=4, metavar=("DSN", "ORG", "USER", "PROJECT"))
    args = parser.parse_args()
    if args.commit_one:
        await commit_one_case(*args.commit_one)
        return
    if args.backend == "sqlite":
        result = await on_sqlite(args)
    else:
        admin = os.environ["CASEM_TEST_POSTGRES_DSN"]
        dsn = fresh_postgres(admin, "wakeup")
        try:
            ids = await setup_org(dsn)
            polling = await first_event_latencies(dsn, False, args.quiet, args.samples, ids)
            listening = await first_event_latencies(dsn, True, args.quiet, args.samples, ids)
            raw = await raw_notify_round_trips(dsn, 50)
        finally:
            drop_postgres(admin, dsn)
        result = {
            "backend": "postgres",
            "quiet_s": args.quiet,
            "samples": args.samples,
            "first_event_cross_process_polling_only": summary(polling),
            "first_event_cross_process_listen_notify": summary(listening),
            "raw_postgres_notify_round_trip": summary(raw),
        }
    result["load_average"] = load_average()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
