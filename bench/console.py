"""The console's case list with 100k cases: server time per page (p50/p99) while paging deep, and Chromium's
first contentful paint, each beside a static page of the same size served by the same process in the same run.

usage: .venv/bin/python bench/console.py [--cases 100000] [--pages 200] [--paints 15] [--workdir DIR]

Setup (not timed): a SQLite tenant database with one org, one project and --cases cases written in bulk.
Server time is the console's own Server-Timing header (request in to response out, in the process); the
static page is a snapshot of the rendered first page, served by the same app through StaticFiles. Paging
follows the page's own "Next" links (keyset paging), so page N costs what page 1 does if the design holds.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import re
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa
import uvicorn
from _support import memory_column
from fastapi.staticfiles import StaticFiles
from playwright.sync_api import sync_playwright

from casem.adapters.storage.tables import cases, projects
from casem.app.console.accounts import set_password
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.app.projects.service import create_project
from casem.domain.cases import STANDARD_TYPE_ID
from casem.services.case_console.app import create_app
from casem.topology.tenants import TENANTS, DatabaseEndpoints

PASSWORD = "bench password 1234"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


async def seed(ctx: AppContext, count: int) -> tuple[str, str]:
    async with ctx.uow() as uow:
        creds = await bootstrap_org(uow, "bench", "bench@example.com")
        await uow.session.flush()
        await set_password(uow, creds.org_id, creds.user_id, PASSWORD)
        project = await create_project(uow, creds.org_id, creds.user_id, key="BENCH", name="Bench")
        await uow.commit()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    priorities = ["P1", "P2", "P3", "P4", "P5", "NOT_DEFINED"]
    statuses = ["OPEN", "IN_PROGRESS", "CLOSED"]
    for first in range(0, count, 5000):
        rows = [
            {
                "id": str(uuid.uuid4()), "org_id": creds.org_id, "project_id": project.id, "number": n + 1,
                "key": f"BENCH-{n + 1}", "title": f"Case {n + 1}: disk usage on host-{n % 97}",
                "description": "", "type_id": STANDARD_TYPE_ID,
                "status": statuses[n % 3], "priority": priorities[n % 6], "attributes": {},
                "custom_attributes": {}, "created_at": start + timedelta(seconds=37 * n),
                "created_by_id": creds.user_id,
            }
            for n in range(first, min(first + 5000, count))
        ]  # fmt: skip
        async with ctx.uow() as uow:
            await uow.session.execute(sa.insert(cases), rows)
            await uow.execute(sa.update(projects).where(projects.c.id == project.id).values(case_counter=count))
            await uow.commit()
    return creds.org_id, "bench@example.com"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def server_ms(response: httpx.Response) -> float:
    found = re.search(r"app;dur=([0-9.]+)", response.headers.get("server-timing", ""))
    assert found, response.headers
    return float(found.group(1))


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": round(pct(values, 0.5), 2), "p99_ms": round(pct(values, 0.99), 2),
            "mean_ms": round(statistics.fmean(values), 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--paints", type=int, default=15)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="casem-bench-console-"))
    if not args.workdir:  # a --workdir given is the caller's to keep
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    endpoints = {t.name: DatabaseEndpoints(master=f"sqlite+aiosqlite:///{workdir / (t.name + '.db')}") for t in TENANTS}
    ctx = AppContext.open(endpoints)
    static_dir = workdir / "static"
    static_dir.mkdir(exist_ok=True)
    app = create_app(ctx)
    app.mount("/bench-static", StaticFiles(directory=str(static_dir)), name="bench-static")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=lambda: loop.run_until_complete(server.serve()), daemon=True)
    seeded = time.perf_counter()
    thread.start()
    while not server.started:
        time.sleep(0.02)
    _org, email = asyncio.run_coroutine_threadsafe(seed(ctx, args.cases), loop).result(timeout=900)
    seed_s = time.perf_counter() - seeded
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"

    client = httpx.Client(base_url=base, timeout=60)
    form = client.get("/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    client.post("/sign-in", data={"csrf_token": token, "email": email, "password": PASSWORD})
    first = client.get("/cases?size=50")
    assert first.status_code == 200 and f"{args.cases:,}" in first.text, first.text[:500]
    (static_dir / "cases.html").write_bytes(first.content)

    list_ms, static_ms, deep_ms = [], [], []
    url = "/cases?size=50"
    for n in range(args.pages):
        page = client.get(url)
        list_ms.append(server_ms(page))
        if n >= args.pages - 20:
            deep_ms.append(server_ms(page))
        found = re.search(r'href="([^"]+)" rel="next"', page.text)
        assert found, f"no next link on page {n + 1}"
        url = found.group(1).replace("&amp;", "&")
        static_ms.append(server_ms(client.get("/bench-static/cases.html")))
    searched = [server_ms(client.get("/cases?size=50&q=priority:P1%20status:open")) for _ in range(20)]
    text_search = [server_ms(client.get("/cases?size=50&q=host-42")) for _ in range(20)]

    paints: dict[str, list[float]] = {"case list": [], "static copy": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        context.add_cookies([{"name": c.name, "value": c.value, "url": base} for c in client.cookies.jar])
        page = context.new_page()
        for _ in range(args.paints):
            for label, path in (("case list", "/cases?size=50"), ("static copy", "/bench-static/cases.html")):
                page.goto(base + path, wait_until="load")
                fcp = None
                for _ in range(100):  # the paint entry can land a frame after "load"
                    fcp = page.evaluate(
                        "() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"
                    )
                    if fcp is not None:
                        break
                    page.wait_for_timeout(50)
                assert fcp is not None, label
                paints[label].append(float(fcp))
        browser.close()

    server.should_exit = True
    thread.join(timeout=30)
    result = {
        "cases": args.cases,
        "page_bytes": len(first.content),
        "seed_seconds": round(seed_s, 1),
        "server_time_per_list_page": summary(list_ms),
        "server_time_last_20_pages": summary(deep_ms),
        "server_time_static_same_size": summary(static_ms),
        "server_time_field_search": summary(searched),
        "server_time_text_search": summary(text_search),
        "chromium_fcp_case_list": summary(paints["case list"]),
        "chromium_fcp_static_same_size": summary(paints["static copy"]),
        "peak_rss_mb": memory_column("console server, seeding"),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
