"""Crash test of the event backbone: while 5,000 case changes flow, the relay and a handler flavor are
killed with SIGKILL and restarted. Afterwards every flavor has applied every event exactly once in
effect, each case's events were applied in order, and the outbox is drained."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from casem.adapters.storage.tables import (
    audit_log,
    case_metrics,
    domain_events,
    domain_events_pending,
    handler_processed_events,
)
from casem.app.cases.service import NewCase, create_case, get_case
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.app.projects.service import create_project
from casem.services.case_event_handler.flavors.analytics import Analytics
from casem.topology.tenants import TENANTS
from tests.backends import engine_address
from tests.support.databases import tenant_endpoints
from tests.support.ports import free_port

CASES = 50
CHANGES_PER_CASE = 100  # 5,000 changes
PRIORITIES = ["P1", "P2", "P3", "P4", "P5"]


class Services:
    """The relay and two flavors as real `casem run` processes sharing the test's databases and bus."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        """Starts the service and waits until it holds its ops port. A free port can be taken by another test
        between choosing it and the child binding it (the child then exits at once, saying so): another is
        chosen then, rather than running the test without that service."""
        args = ["run", "case-event-relay"] if name == "relay" else ["run", "case-event-handler", "--flavor", name]
        log_path = self.logs / f"{name}.log"
        for _attempt in range(5):
            port = free_port()
            env = {**self.env, "CASEM_OPS_PORT": str(port), "CASEM_HOST": "127.0.0.1", "CASEM_MIGRATE_ON_START": "0"}
            with open(log_path, "ab") as log:  # the child keeps its own copy of the descriptor
                command = [sys.executable, "-m", "casem.cli.main", *args]
                proc = subprocess.Popen(command, env=env, stdout=log, stderr=log)
            if _serving(proc, port):
                self.procs[name] = proc
                return
            if "already in use" not in log_path.read_text(errors="replace"):
                raise AssertionError(f"{name} exited at start (exit {proc.returncode}): see {log_path}")
        raise AssertionError(f"{name} found no free ops port in 5 attempts: see {log_path}")

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


def _serving(proc: subprocess.Popen[bytes], port: int, timeout: float = 60.0) -> bool:
    """True once the child accepts connections on its ops port; False if it exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no answer on ops port {port} within {timeout} s")


async def _count(ctx: AppContext, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    async with ctx.uow(read_only=True) as uow:
        return await uow.scalar(sa.select(sa.func.count()).select_from(table).where(*where))


@pytest.mark.parametrize(
    ("database", "bus"),
    [("sqlite", "embedded"), pytest.param("postgres", "kafka", marks=[pytest.mark.postgres, pytest.mark.kafka])],
)
async def test_kill_9_relay_and_handler_while_5000_changes_flow(database: str, bus: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEM_TENANT_")}
    env["CASEM_DATA_DIR"] = str(tmp_path)
    if bus == "kafka":
        env["CASEM_KAFKA_BOOTSTRAP"] = engine_address("kafka")
        env["CASEM_BUS_NAMESPACE"] = f"crash-{uuid.uuid4().hex[:8]}"
    else:
        env["CASEM_BUS_PATH"] = str(tmp_path / "bus.db")
    with tenant_endpoints(database, tmp_path) as endpoints:
        for t in TENANTS:
            env[f"{t.env_prefix}_DSN"] = endpoints[t.name].master
        ctx = AppContext.open(endpoints)
        services = Services(env, tmp_path)
        try:
            async with ctx.uow() as uow:
                creds = await bootstrap_org(uow, "crash", "crash@example.com")
                project = await create_project(uow, creds.org_id, creds.user_id, key="CRASH", name="Crash")
                await uow.commit()
            case_ids = []
            for n in range(CASES):
                async with ctx.uow() as uow:
                    case_ids.append(
                        (await create_case(uow, creds.org_id, creds.user_id, NewCase(project.id, f"c{n}"))).id
                    )
                    await uow.commit()

            for name in ("relay", "audit-trail", "analytics"):
                services.start(name)
            changes = 0
            for round_ in range(CHANGES_PER_CASE):
                for case_id in case_ids:
                    async with ctx.uow() as uow:
                        case = await get_case(uow, creds.org_id, case_id)
                        # Consecutive rounds always differ, so every change records an event.
                        case.prioritize(PRIORITIES[round_ % len(PRIORITIES)], creds.user_id)
                        await uow.commit()
                    changes += 1
                    if changes == 1500:
                        services.kill("relay")
                    elif changes == 2000:
                        # The relay really was down: the changes since its death wait in the outbox.
                        assert await _count(ctx, domain_events_pending) >= 400
                        services.start("relay")
                    elif changes == 2500:
                        services.kill("audit-trail")
                    elif changes == 3000:
                        # The flavor really was down: it is behind the outbox.
                        assert await _count(ctx, audit_log) < await _count(ctx, domain_events) - 400
                        services.start("audit-trail")
            assert changes == 5000

            total = await _count(ctx, domain_events)
            analytics_types = [f"com.casem.{t}.v1" for t in Analytics.handles]
            expected_analytics = await _count(ctx, domain_events, domain_events.c.type.in_(analytics_types))
            deadline = time.monotonic() + 300
            while True:
                drained = await _count(ctx, domain_events_pending) == 0
                audited = await _count(ctx, audit_log)
                analysed = await _count(ctx, handler_processed_events, handler_processed_events.c.flavor == "analytics")
                if drained and audited == total and analysed == expected_analytics:
                    break
                assert time.monotonic() < deadline, (
                    f"not caught up: drained={drained} audited={audited}/{total} "
                    f"analytics={analysed}/{expected_analytics}"
                )
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)  # anything still in flight would show up as a duplicate now

            async with ctx.uow(read_only=True) as uow:
                event_seq = dict((await uow.execute(sa.select(domain_events.c.id, domain_events.c.seq))).all())
                audit_rows = (
                    await uow.execute(sa.select(audit_log.c.event_id, audit_log.c.case_id).order_by(audit_log.c.seq))
                ).all()
                final = dict((await uow.execute(sa.select(case_metrics.c.case_id, case_metrics.c.priority))).all())
            # Exactly once in effect: every event audited once, nothing else.
            assert len(audit_rows) == total == len(event_seq)
            assert {r.event_id for r in audit_rows} == set(event_seq)
            # Per-case order: each case's events were applied in outbox sequence order.
            applied: dict[str, list[int]] = {}
            for row in audit_rows:
                if row.case_id:
                    applied.setdefault(row.case_id, []).append(event_seq[row.event_id])
            assert len(applied) == CASES
            for sequence in applied.values():
                assert sequence == sorted(sequence)
                assert len(sequence) == CHANGES_PER_CASE + 1
            # Analytics saw the last change of every case last.
            last = PRIORITIES[(CHANGES_PER_CASE - 1) % len(PRIORITIES)]
            assert set(final) == set(case_ids) and set(final.values()) == {last}
        finally:
            services.stop_all()
            await ctx.close()
