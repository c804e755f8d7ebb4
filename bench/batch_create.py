"""Batch creation's cost per case (case-api's IngestCases below gRPC), next to the raw engine's.

usage: PYTHONPATH=. .venv/bin/python bench/batch_create.py [--batch 1000] [--batches 10] [--postgres ADMIN_DSN]

On a fresh SQLite tenant database in a temporary directory: `--batches` batches of `--batch` intakes, each
converted as case-api's servicer converts an intake and created by `create_cases_retrying` (one transaction per
batch; with the intake-key bet case-api makes once its batches have found no known key for a while: the keys are
not read first, the unique constraint stands guard), after one batch to warm up and with start-up's objects
frozen out of the collector's reach, as `casem run` does. Prints one JSON object: CPU microseconds per case
(process, of which the event loop's thread, the rest being the driver's thread: SQLite itself), wall microseconds
per case, the collector's share, and
`raw.cpu_us_per_case`: the same rows (the cases, their outbox rows and their timeline cells, read back) inserted
into an empty copy of the schema by sqlite3's executemany of ready tuples, one transaction per batch: what the
engine alone costs. Compare the ratio, and alternate runs of two checkouts: this machine is shared, so figures
are noisy (the load average is printed beside them).

`--postgres ADMIN_DSN`: the same batches on a fresh PostgreSQL database (created for the run, dropped after), where
a small batch's cost is mostly its round trips to the server (each one a context switch between two busy processes
on a loaded machine). Prints wall milliseconds per batch (median and mean) and per case, the round trips a batch
makes (statements the driver sent, counted by SQLAlchemy's `before_cursor_execute`, plus each BEGIN and COMMIT) and
the statements of one batch; and `raw`: the same rows (cases, timeline cells, outbox rows, copied out of the
database as text and deleted) written again by psycopg alone, one transaction per batch of three COPYs, timed the
same way.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _support import bench_org_and_project, drop_postgres, fresh_postgres, load_average

from casem.adapters.storage.outbox_wakeup import libpq_dsn
from casem.app.cases.batch import BatchItem, KnownKeyLookups, create_cases_retrying
from casem.app.context import AppContext
from casem.proto_gen.casem.v1 import case_api_pb2 as pb
from casem.proto_gen.casem.v1 import intake_pb2, types_pb2
from casem.services.case_api.grpc.servicer import CaseApiServicer
from casem.topology.tenants import CASE_MANAGEMENT, TENANTS, DatabaseEndpoints

TABLES = ("cases", "timeline_cells", "domain_events")
# Case-api's steady state: its batches found no known intake key for a while, so they no longer read theirs first.
STEADY = KnownKeyLookups(quiet_batches=0)


def _requests(org_id: str, user_id: str, project_id: str, size: int, count: int) -> list[pb.IngestCasesRequest]:
    return [
        pb.IngestCasesRequest(
            items=[
                pb.IngestItem(
                    org_id=org_id,
                    user_id=user_id,
                    intake=intake_pb2.CaseIntake(
                        schema_version=1,
                        intake_key=uuid.uuid4().hex,
                        project_id=project_id,
                        title=f"disk full on web-{i}",
                        description="the root volume is at 100%",
                        priority=types_pb2.CASE_PRIORITY_P2,
                    ),
                )
                for i in range(size)
            ]
        )
        for _ in range(count)
    ]


def _items(request: pb.IngestCasesRequest) -> list[BatchItem]:
    return [BatchItem(i.org_id, i.user_id, CaseApiServicer._intake_case(i.intake)) for i in request.items]


def _raw_cpu_s(source: Path, empty: Path, batch: int) -> float:
    """CPU seconds sqlite3 takes to insert `source`'s rows of TABLES into `empty` (same schema), `batch` cases a
    transaction, with the pragmas casem's connections use."""
    write = sqlite3.connect(empty, isolation_level=None)
    # The rows the batches made: those after the ones the copy already has (the org's and project's events).
    known = {t: write.execute(f"SELECT coalesce(max(rowid), 0) FROM {t}").fetchone()[0] for t in TABLES}  # noqa: S608
    read = sqlite3.connect(source)
    rows = {
        t: read.execute(f"SELECT * FROM {t} WHERE rowid > ? ORDER BY rowid", (known[t],)).fetchall() for t in TABLES
    }  # noqa: S608
    read.close()
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL"):
        write.execute(f"PRAGMA {pragma}")
    started = time.process_time()
    for start in range(0, len(rows["cases"]), batch):
        write.execute("BEGIN IMMEDIATE")
        for table in TABLES:
            chunk = rows[table][start : start + batch]
            if chunk:
                marks = ", ".join("?" * len(chunk[0]))
                write.executemany(f"INSERT INTO {table} VALUES ({marks})", chunk)  # noqa: S608
        write.execute("COMMIT")
    spent = time.process_time() - started
    write.close()
    return spent


async def run(args: argparse.Namespace) -> dict[str, object]:
    load_before = load_average()
    workdir = Path(tempfile.mkdtemp(prefix="casem-batch-create-"))
    try:
        endpoints = {
            t.name: DatabaseEndpoints(master=f"sqlite+aiosqlite:///{workdir / (t.name + '.db')}") for t in TENANTS
        }
        context = AppContext.open(endpoints, migrate=True)
        # An empty copy of the schema, for the raw figure (the org and project rows the cases refer to included).
        creds, project = await bench_org_and_project(context, key="BENCH", name="Bench")
        database = workdir / f"{CASE_MANAGEMENT}.db"
        empty = workdir / "raw.db"
        with sqlite3.connect(database) as source, sqlite3.connect(empty) as copy:
            source.backup(copy)  # the WAL's pages too
        requests = _requests(creds.org_id, creds.user_id, project.id, args.batch, args.batches + 1)
        await create_cases_retrying(context.uow, _items(requests[0]), STEADY)  # warm up
        gc.collect()
        gc.freeze()
        collecting = {"s": 0.0, "since": 0.0}

        def timed(phase: str, _info: dict[str, int]) -> None:
            if phase == "start":
                collecting["since"] = time.perf_counter()
            else:
                collecting["s"] += time.perf_counter() - collecting["since"]

        gc.callbacks.append(timed)
        cpu, loop_cpu, wall = time.process_time(), time.thread_time(), time.perf_counter()
        for request in requests[1:]:
            await create_cases_retrying(context.uow, _items(request), STEADY)
        cpu, loop_cpu, wall = time.process_time() - cpu, time.thread_time() - loop_cpu, time.perf_counter() - wall
        gc.callbacks.remove(timed)
        await context.close()
        raw = _raw_cpu_s(database, empty, args.batch)  # every batch's rows, the warm-up's too
        created = args.batch * args.batches
        raw_cases = args.batch * (args.batches + 1)
        return {
            "backend": "SQLite",
            "batch": args.batch,
            "cases": created,
            "cpu_us_per_case": round(cpu / created * 1e6, 1),
            "event_loop_thread_cpu_us_per_case": round(loop_cpu / created * 1e6, 1),
            "other_threads_cpu_us_per_case": round((cpu - loop_cpu) / created * 1e6, 1),
            "wall_us_per_case": round(wall / created * 1e6, 1),
            "gc_us_per_case": round(collecting["s"] / created * 1e6, 1),
            "raw": {"cpu_us_per_case": round(raw / raw_cases * 1e6, 1)},
            "cpu_to_raw": round((cpu / created) / (raw / raw_cases), 2),
            "load_average": {"start": load_before, "end": load_average()},
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class RoundTrips:
    """Counts what the writer's connections send the server: each statement, BEGIN and COMMIT (or ROLLBACK)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.count = 0
        self.statements: list[str] = []
        sa.event.listen(engine, "before_cursor_execute", self._statement)
        for name in ("begin", "commit", "rollback"):
            sa.event.listen(engine, name, functools.partial(self._command, name.upper()))

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.count += 1
        self.statements.append(" ".join(statement.split()[:4])[:60])

    def _command(self, name: str, _conn: Any) -> None:
        self.count += 1
        self.statements.append(name)


def _ms(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values) * 1e3, 2), "mean": round(statistics.fmean(values) * 1e3, 2)}


# The columns the raw copy writes: all but the outbox's sequence (the database assigns it, as for casem's INSERT).
def _copy_columns(conn: Any, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position", (table,)
    ).fetchall()
    return [name for (name,) in rows if not (table == "domain_events" and name == "seq")]


def _raw_postgres(dsn: str, batches: list[list[str]]) -> dict[str, object]:
    """Copy each batch's rows out as text, delete them, and write them again by psycopg alone, one transaction of
    three COPYs per batch: wall seconds per batch."""
    import psycopg

    case_filter = {"cases": "id", "timeline_cells": "case_id", "domain_events": "case_id"}
    with psycopg.connect(libpq_dsn(dsn)) as conn:
        columns = {t: _copy_columns(conn, t) for t in TABLES}
        texts: list[dict[str, bytes]] = []
        for ids in batches:
            texts.append({})
            for table in TABLES:
                names = ", ".join(columns[table])
                query = f"COPY (SELECT {names} FROM {table} WHERE {case_filter[table]} = ANY(%s)) TO STDOUT"
                with conn.cursor().copy(query, (ids,)) as copy:  # type: ignore[arg-type]
                    texts[-1][table] = b"".join(bytes(chunk) for chunk in copy)
        every = [case_id for ids in batches for case_id in ids]
        conn.execute(
            "DELETE FROM domain_events_pending WHERE seq IN (SELECT seq FROM domain_events WHERE case_id = ANY(%s))",
            (every,),
        )
        conn.execute("DELETE FROM domain_events WHERE case_id = ANY(%s)", (every,))
        conn.execute("DELETE FROM cases WHERE id = ANY(%s)", (every,))  # their cells go with them
        conn.commit()
        walls = []
        for text in texts:
            started = time.perf_counter()
            with conn.transaction():
                for table in TABLES:
                    with conn.cursor().copy(f"COPY {table} ({', '.join(columns[table])}) FROM STDIN") as copy:  # type: ignore[arg-type]
                        copy.write(text[table])
            walls.append(time.perf_counter() - started)
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # type: ignore[index]  # noqa: S608
    return {"walls": walls, "rows_after": counts}


async def run_postgres(args: argparse.Namespace) -> dict[str, object]:
    load_before = load_average()
    dsn = fresh_postgres(args.postgres, "batch_create")
    try:
        context = AppContext.open({CASE_MANAGEMENT: DatabaseEndpoints(master=dsn)}, migrate=True)
        creds, project = await bench_org_and_project(context, key="BENCH", name="Bench")
        requests = _requests(creds.org_id, creds.user_id, project.id, args.batch, args.batches + 1)
        await create_cases_retrying(context.uow, _items(requests[0]), STEADY)  # warm up: pool, prepared statements
        trips = RoundTrips(context.databases[CASE_MANAGEMENT].writer.sync_engine)
        walls, counts, created_ids = [], [], []
        statements: list[str] = []
        for request in requests[1:]:
            before = trips.count
            del trips.statements[:]
            started = time.perf_counter()
            outcomes, _ = await create_cases_retrying(context.uow, _items(request), STEADY)
            walls.append(time.perf_counter() - started)
            counts.append(trips.count - before)
            statements = list(trips.statements)
            created_ids.append([o.case.id for o in outcomes if o.created and o.case is not None])
        await context.close()
        if sum(map(len, created_ids)) != args.batch * args.batches:
            raise RuntimeError("not every intake created its case")
        raw = _raw_postgres(dsn, created_ids)
        case_ms = statistics.fmean(walls) / args.batch * 1e3
        raw_case_ms = statistics.fmean(raw["walls"]) / args.batch * 1e3  # type: ignore[arg-type]
        return {
            "backend": "PostgreSQL",
            "batch": args.batch,
            "batches": args.batches,
            "wall_ms_per_batch": _ms(walls),
            "wall_ms_per_case": round(case_ms, 3),
            "round_trips_per_batch": {"min": min(counts), "max": max(counts)},
            "last_batch_statements": statements,
            "raw": {
                "wall_ms_per_batch": _ms(raw["walls"]),  # type: ignore[arg-type]
                "wall_ms_per_case": round(raw_case_ms, 3),
                "rows_after": raw["rows_after"],
            },
            "wall_to_raw": round(case_ms / raw_case_ms, 2),
            "load_average": {"start": load_before, "end": load_average()},
        }
    finally:
        drop_postgres(args.postgres, dsn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--postgres", help="admin DSN: run on a fresh PostgreSQL database (dropped after)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run_postgres(args) if args.postgres else run(args)), indent=2))


if __name__ == "__main__":
    main()
