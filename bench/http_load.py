"""The case-api HTTP API under load, beside a hello-world route on the same server and raw point selects on the
same database, all measured in one run.

usage: .venv/bin/python bench/http_load.py [--concurrency 32] [--seconds 20] [--warmup 3] [--cases 200]
       [--postgres ADMIN_DSN] [--rate-limits]

Three measurements, one after another (never at once: they would share the machine's cores):

- api: `casem run case-api` in a process of its own (SQLite files in a temporary directory, or fresh PostgreSQL
  databases with --postgres, dropped afterwards), rate limits off (CASEM_RATE_LIMIT_PER_ORG/_PER_KEY=0, as
  bench/migration.py runs it: the bench times the API, not the limiter) unless --rate-limits counts every request
  against limits no caller reaches (on PostgreSQL: the counter table every replica shares). `--concurrency`
  callers, each its own loop over one shared httpx.AsyncClient, pick from a mix of create case, get case, update
  status, update priority, comment and search for `--seconds` after `--warmup` seconds. Per operation: count,
  req/s, p50/p99; for the server process: peak RSS (VmHWM) and CPU seconds over the timed window.
- hello: the same framework (FastAPI) answering `{"hello": "world"}` from one route, served by the same server
  (`server_config`: uvicorn with case-api's header-deadline protocol, one process, one event loop) on the same
  loopback binding, driven by the same client at the same concurrency for the same duration.
- raw_point_select: `SELECT * FROM cases WHERE id = ?` (a random seeded case) by `--concurrency` callers, each
  with its own connection of the driver casem uses (aiosqlite / psycopg async), no casem code between.

The goal check printed at the end: GET case p99 <= 2 x (hello p99 + raw point-select p99). Figures on this
shared machine are noisy: the load average at the start and at the end is printed beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiosqlite
import httpx
import psycopg
from _support import (
    Service,
    bench_org_and_project,
    cpu_seconds,
    drop_postgres,
    free_port,
    fresh_postgres,
    load_average,
    peak_rss_mb,
    wait_for_port,
)
from sqlalchemy.engine import make_url

from casem.adapters.storage.migrate import upgrade
from casem.app.context import AppContext
from casem.domain.cases import STANDARD_TYPE_ID
from casem.topology.tenants import CASE_MANAGEMENT, TENANTS, DatabaseEndpoints

# Operation -> weight in the mix (reads dominate, as on a case desk).
MIX = {"create": 10, "get": 45, "status": 10, "priority": 10, "comment": 10, "search": 15}
STATUSES = ["OPEN", "IN_PROGRESS", "CLOSED"]
PRIORITIES = ["P1", "P2", "P3", "P4", "P5"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(latencies: list[float], seconds: float, errors: int = 0) -> dict[str, float | int | None]:
    if not latencies:
        return {"n": 0, "errors": errors, "req_s": 0.0, "p50_ms": None, "p99_ms": None}
    return {
        "n": len(latencies),
        "errors": errors,
        "req_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
    }


class Recorder:
    """Latencies per operation, kept only inside the timed window."""

    def __init__(self) -> None:
        self.timing = False
        self.latencies: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.first_error: dict[str, str] = {}
        self.answered = 0  # every answer, warm-up included: the server's CPU is read over the same span

    def record(self, op: str, seconds: float, ok: bool, detail: str = "") -> None:
        self.answered += 1
        if not self.timing:
            return
        if ok:
            self.latencies.setdefault(op, []).append(seconds)
        else:
            self.errors[op] = self.errors.get(op, 0) + 1
            self.first_error.setdefault(op, detail[:300])


async def drive(
    callers: int,
    warmup: float,
    seconds: float,
    step: Callable[[Recorder, random.Random, int], Awaitable[None]],
) -> tuple[Recorder, float]:
    """`callers` loops calling `step(recorder, rng, caller)` for warmup + seconds; returns what was recorded in
    the timed part."""
    recorder = Recorder()
    stop = asyncio.Event()

    async def loop(caller: int) -> None:
        rng = random.Random(caller)
        while not stop.is_set():
            await step(recorder, rng, caller)

    tasks = [asyncio.create_task(loop(n)) for n in range(callers)]
    await asyncio.sleep(warmup)
    recorder.timing = True
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    recorder.timing = False
    elapsed = time.perf_counter() - started
    stop.set()
    await asyncio.gather(*tasks)
    return recorder, elapsed


def case_document(project_id: str, n: int) -> dict[str, Any]:
    return {
        "data": {
            "type": "case",
            "attributes": {"title": f"Load case {n}: disk usage on host-{n % 97}", "type_id": STANDARD_TYPE_ID},
            "relationships": {"project": {"data": {"id": project_id, "type": "project"}}},
        }
    }


def callers_clients(url: str, headers: dict[str, str], count: int) -> list[httpx.AsyncClient]:
    """One client (one kept-alive connection) per caller: callers sharing one httpx.AsyncClient queue on its
    connection pool (measured here: hello-world at 131 req/s, p99 1.4 s shared, against 506 req/s, p99 105 ms
    with a client each), which would time the client, not the server."""
    return [httpx.AsyncClient(base_url=url, headers=headers, timeout=60) for _ in range(count)]


async def api_load(url: str, headers: dict[str, str], project_id: str, case_ids: list[str], args) -> dict:  # type: ignore[no-untyped-def]
    ops, weights = list(MIX), list(MIX.values())
    counter = iter(range(10**9))
    clients = callers_clients(url, headers, args.concurrency)

    async def step(recorder: Recorder, rng: random.Random, caller: int) -> None:
        http = clients[caller]
        op = rng.choices(ops, weights)[0]
        case_id = rng.choice(case_ids)
        started = time.perf_counter()
        if op == "create":
            response = await http.post("/api/v2/cases", json=case_document(project_id, next(counter)))
        elif op == "get":
            response = await http.get(f"/api/v2/cases/{case_id}")
        elif op == "status":
            body = {"data": {"type": "case", "attributes": {"status": rng.choice(STATUSES)}}}
            response = await http.post(f"/api/v2/cases/{case_id}/status", json=body)
        elif op == "priority":
            body = {"data": {"type": "case", "attributes": {"priority": rng.choice(PRIORITIES)}}}
            response = await http.post(f"/api/v2/cases/{case_id}/priority", json=body)
        elif op == "comment":
            body = {"data": {"type": "case", "attributes": {"comment": "looked at it under load"}}}
            response = await http.post(f"/api/v2/cases/{case_id}/comment", json=body)
        else:
            params = {"filter": f"host-{rng.randrange(97)}", "page[size]": "10"}
            response = await http.get("/api/v2/cases", params=params)
        elapsed = time.perf_counter() - started
        ok = response.status_code in (200, 201)
        recorder.record(op, elapsed, ok, f"{response.status_code} {response.text}")
        if ok and op == "create":
            case_ids.append(response.json()["data"]["id"])

    recorder, elapsed = await drive(args.concurrency, args.warmup, args.seconds, step)
    for client in clients:
        await client.aclose()
    per_op = {op: summary(recorder.latencies.get(op, []), elapsed, recorder.errors.get(op, 0)) for op in MIX}
    every = [x for values in recorder.latencies.values() for x in values]
    per_op["all"] = summary(every, elapsed, sum(recorder.errors.values()))
    if recorder.first_error:
        per_op["first_errors"] = recorder.first_error  # type: ignore[assignment]
    per_op["answered_with_warmup"] = recorder.answered  # type: ignore[assignment]
    return per_op


async def hello_load(url: str, args: argparse.Namespace) -> dict:
    clients = callers_clients(url, {}, args.concurrency)

    async def step(recorder: Recorder, _rng: random.Random, caller: int) -> None:
        started = time.perf_counter()
        response = await clients[caller].get("/hello")
        recorder.record("hello", time.perf_counter() - started, response.status_code == 200, response.text)

    recorder, elapsed = await drive(args.concurrency, args.warmup, args.seconds, step)
    for client in clients:
        await client.aclose()
    return {**summary(recorder.latencies.get("hello", []), elapsed, recorder.errors.get("hello", 0)),
            "answered_with_warmup": recorder.answered}  # fmt: skip


async def raw_point_select(dsn: str, case_ids: list[str], args: argparse.Namespace) -> dict:
    """Each caller its own connection of casem's driver; one indexed row by primary key per call."""
    url = make_url(dsn)
    sqlite = url.drivername.startswith("sqlite")
    if sqlite:
        connections: list[Any] = [await aiosqlite.connect(url.database) for _ in range(args.concurrency)]
    else:
        plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
        connections = [await psycopg.AsyncConnection.connect(plain, autocommit=True) for _ in range(args.concurrency)]
    free: asyncio.Queue[Any] = asyncio.Queue()
    for conn in connections:
        free.put_nowait(conn)
    query = "SELECT * FROM cases WHERE id = ?" if sqlite else "SELECT * FROM cases WHERE id = %s"

    async def step(recorder: Recorder, rng: random.Random, _caller: int) -> None:
        conn = await free.get()
        try:
            started = time.perf_counter()
            cursor = await conn.execute(query, (rng.choice(case_ids),))
            row = await cursor.fetchone()
            recorder.record("select", time.perf_counter() - started, row is not None)
        finally:
            free.put_nowait(conn)

    recorder, elapsed = await drive(args.concurrency, args.warmup, args.seconds, step)
    for conn in connections:
        await conn.close()
    return summary(recorder.latencies.get("select", []), elapsed, recorder.errors.get("select", 0))


def serve_hello(port: int) -> None:
    """The hello-world app: same framework, same server and protocol, same loop setup as case-api's HTTP."""
    from fastapi import FastAPI

    from casem.services.case_api.http.server import server_config
    from casem.services.common.listen import bind_tcp, managed_uvicorn

    app = FastAPI()

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    async def main() -> None:
        sock = bind_tcp("127.0.0.1", port, "hello")
        config = server_config(app, "127.0.0.1", port, log_level="warning", lifespan="on")
        server = managed_uvicorn(config)
        import signal

        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, lambda: setattr(server, "should_exit", True))
        await server.serve(sockets=[sock])

    asyncio.run(main())


async def seed(project_id: str, http: httpx.AsyncClient, count: int) -> list[str]:
    """`count` cases through the API itself (untimed), so every read has rows with timelines."""
    ids: list[str] = []
    sem = asyncio.Semaphore(8)

    async def one(n: int) -> None:
        async with sem:
            response = await http.post("/api/v2/cases", json=case_document(project_id, n))
            response.raise_for_status()
            ids.append(response.json()["data"]["id"])

    await asyncio.gather(*(one(n) for n in range(count)))
    return ids


async def run(args: argparse.Namespace) -> dict[str, object]:
    load_start = load_average()
    tmp = Path(tempfile.mkdtemp(prefix="casem-bench-http-"))
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    real = bool(args.postgres)
    if real:
        endpoints = {
            t.name: DatabaseEndpoints(master=fresh_postgres(args.postgres, t.name, "casem_bench_http")) for t in TENANTS
        }
    else:
        endpoints = {t.name: DatabaseEndpoints(master=f"sqlite+aiosqlite:///{tmp / (t.name + '.db')}") for t in TENANTS}
    for ep in endpoints.values():
        upgrade(ep.master)
    context = AppContext.open(endpoints, migrate=False)
    creds, project = await bench_org_and_project(context, key="LOAD", name="Load")
    await context.close()

    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEM_")}
    env.update({f"{t.env_prefix}_DSN": endpoints[t.name].master for t in TENANTS})
    http_port = free_port()
    env.update(
        {
            "CASEM_DATA_DIR": str(tmp / "data"),
            "CASEM_MIGRATE_ON_START": "0",
            "CASEM_HOST": "127.0.0.1",
            "CASEM_LOG_LEVEL": "warning",
            "CASEM_HTTP_PORT": str(http_port),
            "CASEM_GRPC_PORT": str(free_port()),
            # Timed: the API, not refusals (429s past the default limits), as in bench/migration.py; with
            # --rate-limits the limiter counts every request (on PostgreSQL, in the shared counter table) under
            # limits no caller reaches.
            "CASEM_RATE_LIMIT_PER_ORG": "100000000" if args.rate_limits else "0",
            "CASEM_RATE_LIMIT_PER_KEY": "100000000" if args.rate_limits else "0",
        }
    )
    if "CASEM_BENCH_PROFILE_DIR" in os.environ:
        env["CASEM_BENCH_PROFILE_DIR"] = os.environ["CASEM_BENCH_PROFILE_DIR"]
    result: dict[str, object] = {
        "backend": "PostgreSQL" if real else "SQLite (embedded)",
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "warmup_seconds": args.warmup,
        "mix": MIX,
        "rate_limits_counted": bool(args.rate_limits),
    }
    api = Service("case-api", env, ready_port=http_port)
    headers = {"DD-API-KEY": creds.api_key, "DD-APPLICATION-KEY": creds.app_key}
    try:
        api.start()
        url = f"http://127.0.0.1:{http_port}"
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
            case_ids = await seed(project.id, http, args.cases)
        seeded = list(case_ids)
        cpu_before = api.cpu_seconds()
        result["api"] = await api_load(url, headers, project.id, case_ids, args)
        api_cpu = api.cpu_seconds() - cpu_before
        result["api_server"] = {
            "peak_rss_mb": api.peak_rss_mb(),
            "cpu_s": round(api_cpu, 1),
            # CPU per answer moves less with the machine's load than latency does: compare runs with it too.
            "cpu_ms_per_request": round(api_cpu * 1000 / max(1, result["api"]["answered_with_warmup"]), 2),  # type: ignore[index]
        }
    finally:
        api.stop()

    hello_port = free_port()
    hello = subprocess.Popen([sys.executable, __file__, "--serve-hello", str(hello_port)], env=env)
    try:
        wait_for_port(hello_port, 60, hello)
        hello_cpu = cpu_seconds(hello.pid)
        result["hello"] = await hello_load(f"http://127.0.0.1:{hello_port}", args)
        hello_used = cpu_seconds(hello.pid) - hello_cpu
        result["hello_server"] = {
            "peak_rss_mb": peak_rss_mb(hello.pid),
            "cpu_s": round(hello_used, 1),
            "cpu_ms_per_request": round(hello_used * 1000 / max(1, result["hello"]["answered_with_warmup"]), 2),  # type: ignore[index]
        }
    finally:
        hello.terminate()
        hello.wait(30)

    result["raw_point_select"] = await raw_point_select(endpoints[CASE_MANAGEMENT].master, seeded, args)
    if real:
        for ep in endpoints.values():
            drop_postgres(args.postgres, ep.master)

    get_p99 = result["api"]["get"]["p99_ms"]  # type: ignore[index]
    bound = 2 * (result["hello"]["p99_ms"] + result["raw_point_select"]["p99_ms"])  # type: ignore[index]
    result["goal"] = {
        "rule": "GET case p99 <= 2 x (hello p99 + raw point-select p99)",
        "get_case_p99_ms": get_p99,
        "bound_ms": round(bound, 2),
        "met": get_p99 is not None and get_p99 <= bound,
        "ratio_to_bound": round(get_p99 / bound, 2) if get_p99 else None,
    }
    result["bench_process"] = {"peak_rss_mb": peak_rss_mb(), "cpu_s": round(cpu_seconds(), 1)}
    result["load_average"] = {"start": load_start, "end": load_average()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0, help="timed window of each measurement")
    parser.add_argument("--warmup", type=float, default=3.0, help="untimed seconds before each window")
    parser.add_argument("--cases", type=int, default=200, help="cases created (untimed) before the API load")
    parser.add_argument("--postgres", help="admin DSN: run on fresh PostgreSQL databases instead of SQLite")
    parser.add_argument(
        "--rate-limits", action="store_true", help="count every request against limits none reaches (their cost)"
    )
    parser.add_argument("--serve-hello", type=int, help=argparse.SUPPRESS)  # internal: the hello-world server
    args = parser.parse_args()
    if args.serve_hello:
        serve_hello(args.serve_hello)
        return
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
