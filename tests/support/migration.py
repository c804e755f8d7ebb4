"""What the migration suites and bench/migration.py share: a source org with one of everything (built through the
official client), many cases seeded straight into the source's tables, and API readers of either side."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import httpx
import sqlalchemy as sa

from casem.adapters.datadog_api import DatadogSource
from casem.adapters.http import AllowList
from casem.adapters.storage.migrate import upgrade
from casem.adapters.storage.tables import cases, projects, timeline_cells, watchers
from casem.app.context import AppContext
from casem.app.identity.service import BootstrapCredentials, bootstrap_existing_org, bootstrap_org, create_user
from casem.domain.cases import STANDARD_TYPE_ID
from casem.topology.tenants import DatabaseEndpoints, tenant
from tests.support.databases import tenant_endpoints
from tests.support.ports import free_port

LOOPBACK = AllowList.parse(["127.0.0.1"])
T = TypeVar("T")


@dataclass
class Side:
    """One casem serving its HTTP API from its own process (`casem run case-api`), as the two ends of a real
    migration are: the source answers while the migration writes into the target."""

    url: str
    endpoints: dict[str, DatabaseEndpoints]
    process: subprocess.Popen[bytes]

    def api(self, creds: BootstrapCredentials) -> DatadogSource:
        return DatadogSource(self.url, creds.api_key, creds.app_key, allow=LOOPBACK)

    def run(self, work: Callable[[AppContext], Awaitable[T]]) -> T:
        """`work(context)` on this side's databases, in a context of its own."""

        async def go() -> T:
            context = AppContext.open(self.endpoints, migrate=False)
            try:
                return await work(context)
            finally:
                await context.close()

        return asyncio.run(go())

    def keys_for(self, org_id: str) -> BootstrapCredentials:
        async def issue(ctx: AppContext) -> BootstrapCredentials:
            async with ctx.uow() as uow:
                creds = await bootstrap_existing_org(uow, org_id)
                await uow.commit()
                return creds

        return self.run(issue)

    def new_org(self, name: str) -> BootstrapCredentials:
        async def make(ctx: AppContext) -> BootstrapCredentials:
            async with ctx.uow() as uow:
                creds = await bootstrap_org(uow, name, "admin@example.com")
                await uow.commit()
                return creds

        return self.run(make)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def serve(endpoints: dict[str, DatabaseEndpoints], workdir: Path) -> Side:
    """`casem run case-api` on `endpoints` (migrated first, here), on a free loopback port."""
    for ep in endpoints.values():
        upgrade(ep.master)
    port = free_port()
    env = {**os.environ, "CASEM_HTTP_PORT": str(port), "CASEM_GRPC_PORT": str(free_port())}
    env |= {"CASEM_HOST": "127.0.0.1", "CASEM_MIGRATE_ON_START": "0", "CASEM_DATA_DIR": str(workdir)}
    for name, ep in endpoints.items():
        env[f"{tenant(name).env_prefix}_DSN"] = ep.master
    for engine in ("CASEM_TEMPORAL_ADDRESS", "CASEM_SEARCH_URL", "CASEM_KAFKA_BOOTSTRAP", "CASEM_DATACENTER"):
        env.pop(engine, None)
    process = subprocess.Popen(
        [sys.executable, "-m", "casem.cli.main", "run", "case-api"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "case-api.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return Side(url, endpoints, process)
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"case-api did not start: {(workdir / 'case-api.log').read_text()[-2000:]}")
        time.sleep(0.1)


@contextmanager
def two_sides(backend: str, workdir: Path) -> Iterator[tuple[Side, Side]]:
    """A source and a target casem, each on its own databases and in its own process."""
    (workdir / "source").mkdir(parents=True, exist_ok=True)
    (workdir / "target").mkdir(parents=True, exist_ok=True)
    with (
        tenant_endpoints(backend, workdir / "source") as source_endpoints,
        tenant_endpoints(backend, workdir / "target") as target_endpoints,
    ):
        source = serve(source_endpoints, workdir / "source")
        try:
            target = serve(target_endpoints, workdir / "target")
            try:
                yield source, target
            finally:
                target.stop()
        finally:
            source.stop()


async def seed_cases(
    ctx: AppContext, org_id: str, project_id: str, *, count: int, cells_per_case: int, authors: list[str]
) -> None:
    """`count` cases with `cells_per_case` timeline cells each (a creation cell, then comments by turns of
    `authors`) and one watcher, written straight into the tables in large batches (the source's history, as if
    it had been built over months), after the project's existing cases."""
    async with ctx.uow() as uow:
        row = (
            await uow.execute(sa.select(projects.c.key, projects.c.case_counter).where(projects.c.id == project_id))
        ).one()
        await uow.commit()
    key, first = row.key, row.case_counter + 1
    start = datetime(2024, 1, 1, tzinfo=UTC)
    batch = 1000
    for offset in range(0, count, batch):
        case_rows, cell_rows, watcher_rows = [], [], []
        for n in range(first + offset, first + min(offset + batch, count)):
            case_id = str(uuid.uuid4())
            created = start + timedelta(minutes=n)
            author = authors[n % len(authors)]
            case_rows.append(
                {
                    "id": case_id,
                    "org_id": org_id,
                    "project_id": project_id,
                    "number": n,
                    "key": f"{key}-{n}",
                    "title": f"Seeded case {n}: disk usage on host-{n % 97}",
                    "description": f"Seeded for the migration suite ({n}).",
                    "type_id": STANDARD_TYPE_ID,
                    "status": ("OPEN", "IN_PROGRESS", "CLOSED")[n % 3],
                    "priority": ("NOT_DEFINED", "P1", "P2", "P3", "P4", "P5")[n % 6],
                    "assignee_id": author if n % 2 else None,
                    "attributes": {"service": [f"svc-{n % 5}"]},
                    "custom_attributes": {},
                    "closed_at": created + timedelta(hours=1) if n % 3 == 2 else None,
                    "created_at": created,
                    "created_by_id": author,
                    "modified_at": created + timedelta(minutes=cells_per_case),
                    "modified_by_id": author,
                }
            )
            cell_rows.append(
                {
                    "id": str(uuid.uuid4()),
                    "org_id": org_id,
                    "case_id": case_id,
                    "type": "CASE_CREATED",
                    "content": {"event": "case.created", "key": f"{key}-{n}", "title": f"Seeded case {n}"},
                    "author_id": author,
                    "created_at": created,
                }
            )
            for c in range(1, cells_per_case):
                cell_rows.append(
                    {
                        "id": str(uuid.uuid4()),
                        "org_id": org_id,
                        "case_id": case_id,
                        "type": "COMMENT",
                        "content": {"message": f"note {c} on case {n}"},
                        "author_id": authors[(n + c) % len(authors)],
                        "created_at": created + timedelta(minutes=c),
                    }
                )
            watcher_rows.append({"case_id": case_id, "user_id": author, "org_id": org_id, "created_at": created})
        async with ctx.uow() as uow:
            await uow.execute(sa.insert(cases), case_rows)
            await uow.execute(sa.insert(timeline_cells), cell_rows)
            await uow.execute(sa.insert(watchers), watcher_rows)
            await uow.commit()
    async with ctx.uow() as uow:
        await uow.execute(sa.update(projects).where(projects.c.id == project_id).values(case_counter=first + count - 1))
        await uow.commit()


async def add_people(ctx: AppContext, org_id: str, n: int) -> list[str]:
    async with ctx.uow() as uow:
        ids = [
            (await create_user(uow, org_id, f"person{i}-{uuid.uuid4().hex[:6]}@example.com", name=f"Person {i}")).id
            for i in range(n)
        ]
        await uow.commit()
    return ids
