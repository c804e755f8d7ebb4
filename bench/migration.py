"""Live migration casem → casem at N cases: the time to migrate an org of N cases with 5 timeline cells each,
interrupted once half-way and resumed, and the comparison of the two orgs afterwards, as JSON.

usage: .venv/bin/python bench/migration.py [--cases 10000] [--cells 5] [--postgres DSN]

Two case-api servers on loopback (SQLite in a temporary directory, or fresh PostgreSQL databases with
--postgres), the source seeded straight into its tables. Beside the migration's figures, the raw engines'
from the same run: `raw_read_s` is the same HTTP requests the migration makes (every page of cases, and
each case's timeline, watchers and links) sent with a plain httpx client at the same concurrency and
nothing done with the answers; `raw_write_s` is the same rows (cases, cells, watchers) inserted into an
empty target database with SQLAlchemy executemany in batches of 1,000, no casem code in between.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support: the suites' seeding helpers

from _support import memory_column  # noqa: E402

from casem.adapters.storage.tables import cases, metadata, timeline_cells, watchers  # noqa: E402
from casem.app.context import AppContext  # noqa: E402
from casem.app.identity.service import BootstrapCredentials, bootstrap_org  # noqa: E402
from casem.app.importer.compare import compare_orgs  # noqa: E402
from casem.app.importer.migration import migrate  # noqa: E402
from casem.app.projects.service import create_project  # noqa: E402
from tests.support.migration import Side, add_people, seed_cases, two_sides  # noqa: E402

PAGE = 100
TABLES = (cases, timeline_cells, watchers)
CONCURRENCY = 8


class Interrupted(Exception):
    pass


def _org(side: Side) -> tuple[BootstrapCredentials, str]:
    async def make(ctx: AppContext) -> tuple[BootstrapCredentials, str]:
        async with ctx.uow() as uow:
            creds = await bootstrap_org(uow, "Bench source", "admin@bench.example")
            project = await create_project(uow, creds.org_id, creds.user_id, key="BENCH", name="Bench")
            await uow.commit()
            return creds, project.id

    return side.run(make)


def _raw_read(url: str, creds: BootstrapCredentials, total: int) -> float:
    """The migration's requests, answers read and dropped."""
    headers = {"DD-API-KEY": creds.api_key, "DD-APPLICATION-KEY": creds.app_key}
    started = time.perf_counter()
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http, ThreadPoolExecutor(CONCURRENCY) as pool:
        for page in range(1, total // PAGE + 2):
            params = {"page[size]": PAGE, "page[number]": page, "sort[field]": "created_at", "sort[asc]": "true"}
            found = http.get("/api/v2/cases", params=params).json()["data"]
            paths = []
            for case in found:
                paths += [
                    f"/api/v2/cases/{case['id']}/timelines?page[size]=100&page[number]=0&sort[ascending]=true",
                    f"/api/v2/cases/{case['id']}/watchers",
                    f"/api/v2/cases/link?entity_type=CASE&entity_id={case['id']}",
                ]
            list(pool.map(lambda p: http.get(p).content, paths))
    return time.perf_counter() - started


def _raw_write(source: Side, path: Path) -> float:
    """The source's cases, cells and watchers inserted into an empty SQLite database of the same schema."""

    async def read(ctx: AppContext) -> dict[str, list[dict]]:
        async with ctx.uow(read_only=True) as uow:
            return {t.name: [dict(r._mapping) for r in await uow.execute(sa.select(t))] for t in TABLES}

    rows = source.run(read)
    engine = sa.create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    started = time.perf_counter()
    with engine.begin() as conn:
        for table in TABLES:
            for start in range(0, len(rows[table.name]), 1000):
                conn.execute(sa.insert(table), rows[table.name][start : start + 1000])
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--cells", type=int, default=5)
    parser.add_argument("--postgres", help="admin DSN of a PostgreSQL to create the databases in")
    args = parser.parse_args()
    # The servers' own rate limits (HTTP 429 past them) would time the limiter, not the migration or the
    # engines: both sides run unthrottled, for the migration and the raw reads alike.
    os.environ["CASEM_RATE_LIMIT_PER_ORG"] = os.environ["CASEM_RATE_LIMIT_PER_KEY"] = "0"
    backend = "sqlite"
    if args.postgres:
        os.environ["CASEM_TEST_POSTGRES_DSN"] = args.postgres
        backend = "postgres"
    workdir = Path(tempfile.mkdtemp(prefix="casem-bench-migration-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    with two_sides(backend, workdir) as (source, target):
        creds, project_id = _org(source)

        async def seed(ctx: AppContext) -> None:
            authors = [creds.user_id, *await add_people(ctx, creds.org_id, 4)]
            await seed_cases(
                ctx,
                creds.org_id,
                project_id,
                count=args.cases,
                cells_per_case=args.cells,
                authors=authors,
            )

        started = time.perf_counter()
        source.run(seed)
        seed_s = time.perf_counter() - started
        source_api = source.api(creds)
        state = workdir / "state.json"
        half = args.cases // 2

        def interrupt(phase: str, done: int, total: int | None) -> None:
            if phase == "cases" and done >= half:
                raise Interrupted

        def run(progress):  # type: ignore[no-untyped-def]
            return target.run(lambda ctx: migrate(ctx, source_api, state, org_name="Bench target", progress=progress))

        started = time.perf_counter()
        with contextlib.suppress(Interrupted):
            run(interrupt)
        first_s = time.perf_counter() - started
        resumed = run(None)
        migration_s = time.perf_counter() - started
        target_api = target.api(target.keys_for(resumed.org_id))  # type: ignore[attr-defined]
        started = time.perf_counter()
        differences = compare_orgs(source_api, target_api)
        compare_s = time.perf_counter() - started
        started = time.perf_counter()
        again = run(None)
        second_s = time.perf_counter() - started
        raw_read_s = _raw_read(source.url, creds, args.cases)
        raw_write_s = _raw_write(source, workdir / "raw.db")
        source_api.close()
        target_api.close()
    print(
        json.dumps(
            {
                "backend": backend,
                "cases": args.cases,
                "cells_per_case": args.cells,
                "seed_s": round(seed_s, 1),
                "migration_s": round(migration_s, 1),
                "interrupted_after_s": round(first_s, 1),
                "resumed_after_page": resumed.resumed_after_page,  # type: ignore[attr-defined]
                "cases_per_s": round(args.cases / migration_s, 1),
                "raw_read_s": round(raw_read_s, 1),
                "raw_write_s": round(raw_write_s, 1),
                "second_run_s": round(second_s, 1),
                "peak_rss_mb": memory_column("the migration; both sides' case-api run as children"),
                "second_run_created": again.import_report.created,  # type: ignore[attr-defined]
                "compare_s": round(compare_s, 1),
                "differences": len(differences),
                "first_differences": differences[:5],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
