"""Batch creation's CPU per case on SQLite (case-api's IngestCases below gRPC), next to the raw engine's.

usage: PYTHONPATH=. .venv/bin/python bench/batch_create.py [--batch 1000] [--batches 10]

On a fresh SQLite tenant database in a temporary directory: `--batches` batches of `--batch` intakes, each
converted as case-api's servicer converts an intake and created by `create_cases_retrying` (one transaction per
batch), after one batch to warm up and with start-up's objects frozen out of the collector's reach, as
`casem run` does. Prints one JSON object: CPU microseconds per case (process, of which the event loop's thread,
the rest being the driver's thread: SQLite itself), wall microseconds per case, the collector's share, and
`raw.cpu_us_per_case`: the same rows (the cases, their outbox rows and their timeline cells, read back) inserted
into an empty copy of the schema by sqlite3's executemany of ready tuples, one transaction per batch: what the
engine alone costs. Compare the ratio, and alternate runs of two checkouts: this machine is shared, so figures
are noisy (the load average is printed beside them).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from _support import bench_org_and_project, load_average

from casem.app.cases.batch import BatchItem, create_cases_retrying
from casem.app.context import AppContext
from casem.proto_gen.casem.v1 import case_api_pb2 as pb
from casem.proto_gen.casem.v1 import intake_pb2, types_pb2
from casem.services.case_api.grpc.servicer import CaseApiServicer
from casem.topology.tenants import CASE_MANAGEMENT, TENANTS, DatabaseEndpoints

TABLES = ("cases", "timeline_cells", "domain_events")


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
        await create_cases_retrying(context.uow, _items(requests[0]))  # warm up
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
            await create_cases_retrying(context.uow, _items(request))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=10)
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
