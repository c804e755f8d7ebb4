"""Crash test: 5,000 intakes on the embedded bus and SQLite while the indexer process is SIGKILLed mid-way
and restarted; afterwards `casem search verify` reports index == database, every case exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from casem.adapters.bus.embedded import EmbeddedBus
from casem.adapters.search import EmbeddedSearch
from casem.adapters.storage.tables import cases
from casem.app.context import AppContext
from casem.app.internal_auth import INTERNAL_TOKEN_ENV
from casem.proto_gen.casem.v1 import intake_service_pb2 as pb
from casem.topology.tenants import CASE_MANAGEMENT, TENANTS
from tests.intake.stack import TOKEN, case_api_server, intake, intake_server, new_tenant, sqlite_endpoints

INTAKES = 5000
BATCH = 50
KILL_AFTER = 1000  # documents indexed before the SIGKILL


def service_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEM_")}
    for t in TENANTS:
        env[f"{t.env_prefix}_DSN"] = f"sqlite+aiosqlite:///{tmp_path / (t.name + '.db')}"
    env["CASEM_DATA_DIR"] = str(tmp_path / "data")
    env["CASEM_BUS_PATH"] = str(tmp_path / "bus.db")
    env[INTERNAL_TOKEN_ENV] = TOKEN
    return env


def start_indexer(address: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "casem.services.case_indexer", "--case-api", address, "--session-timeout", "1.5"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def casem(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "casem.cli.main", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


async def test_indexer_survives_sigkill_without_losing_or_doubling(tmp_path: Path) -> None:
    endpoints = sqlite_endpoints(tmp_path)
    env = service_env(tmp_path)
    search = EmbeddedSearch(tmp_path / "data")
    with case_api_server(endpoints) as live:
        context = AppContext.open(endpoints, migrate=False)
        bus = EmbeddedBus(tmp_path / "bus.db")
        tenant = await new_tenant(context)
        org = tenant.creds.org_id
        await search.ensure_index(CASE_MANAGEMENT)

        async def indexed() -> int:
            return len(await search.all_checksums(CASE_MANAGEMENT, org))

        indexer = start_indexer(live.address, env)
        try:
            async with intake_server(context, bus) as (_, stub):

                async def produce() -> None:
                    for start in range(0, INTAKES, BATCH):
                        batch = [intake(tenant, f"crash-{i}", title=f"case {i}") for i in range(start, start + BATCH)]
                        await stub.SubmitBatch(pb.SubmitBatchRequest(intakes=batch), metadata=tenant.metadata)
                        await asyncio.sleep(0.02)  # a steady stream, so the kill lands mid-way

                producer = asyncio.create_task(produce())
                deadline = time.monotonic() + 120
                while await indexed() < KILL_AFTER:
                    assert indexer.poll() is None, indexer.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
                    assert time.monotonic() < deadline, "the indexer made no progress"
                    await asyncio.sleep(0.02)
                indexer.send_signal(signal.SIGKILL)
                indexer.wait(10)
                at_kill = await indexed()
                assert at_kill < INTAKES, "the kill did not land mid-way"
                indexer = start_indexer(live.address, env)  # a new member: takes over after the lease expires
                await producer

            deadline = time.monotonic() + 600
            while await indexed() < INTAKES:
                assert indexer.poll() is None, indexer.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
                assert time.monotonic() < deadline, f"only {await indexed()} of {INTAKES} indexed"
                await asyncio.sleep(0.1)
            indexer.send_signal(signal.SIGTERM)
            assert indexer.wait(30) == 0, indexer.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
        finally:
            if indexer.poll() is None:
                indexer.kill()
                indexer.wait(10)

        async with context.uow(read_only=True) as uow:
            rows = (
                await uow.execute(
                    sa.select(sa.func.count(), sa.func.count(sa.distinct(cases.c.intake_key))).where(
                        cases.c.org_id == org
                    )
                )
            ).one()
        assert tuple(rows) == (INTAKES, INTAKES)  # every intake became exactly one case

        verified = casem(env, "search", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "in sync" in verified.stdout

        # verify must notice drift, and reindex must repair it.
        some_case = next(iter(await search.all_checksums(CASE_MANAGEMENT, org)))
        assert await search.delete(CASE_MANAGEMENT, org, some_case)
        drifted = casem(env, "search", "verify", "--tenant", CASE_MANAGEMENT)
        assert drifted.returncode == 1
        assert some_case in drifted.stdout and "missing from index" in drifted.stdout
        rebuilt = casem(env, "search", "reindex")
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        assert casem(env, "search", "verify").returncode == 0

        await search.close()
        await bus.close()
        await context.close()
