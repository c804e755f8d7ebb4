"""Search latency at N cases: p50/p99 of engine-backed search_cases and count_cases, as JSON.

usage: .venv/bin/python bench/search_latency.py [--cases 20000] [--queries 300] [--opensearch URL] [--store DIR]

Loads N case documents (varied status, priority, project, assignee, attributes and words) for one org
into the embedded search (temporary directory) and, with --opensearch, into OpenSearch under a scratch
prefix that is dropped afterwards; then times a fixed mix of queries through casem.app.search. With --store DIR
the embedded store is kept in DIR and reused by the next run with the same --cases (building 1M cases takes a
while); `by_query` gives each query shape's own figures.

Next to each figure, the raw engine's from the same run: the exact requests casem sent (the SQL
statements on SQLite, the _search bodies on OpenSearch) are recorded and replayed straight to the
engine, with no casem code in between; `ratio_p50` = casem p50 / raw p50 over the whole mix (see `with_raw` for
why `ratio_p50_worst_shape` and `ratio_total_time` are printed beside it). By default each query's
replay runs right after it (--replay interleaved), so both see the engine and the machine in the same
state; --replay after replays them all once casem's queries are done (the engine has then finished
merging what was just loaded and its caches are warm, which flatters the raw figure).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from casem.adapters.search import EmbeddedSearch, OpenSearchSearch, SearchPort
from casem.app.search.service import count_cases, search_cases
from casem.topology.tenants import CASE_MANAGEMENT

WORDS = [
    "disk",
    "cpu",
    "memory",
    "latency",
    "login",
    "printer",
    "network",
    "timeout",
    "database",
    "queue",
    "cache",
    "deploy",
]
QUERIES = [
    ("search", "disk"),
    ("search", "status:open priority:P1"),
    ("search", '"disk full" -status:closed'),
    ("search", "service:web-store OR service:db"),
    ("search", "project:PRJ3 assignee:user7@example.com"),
    ("count", "status:(open OR in_progress)"),
]


def documents(n: int, org: str) -> list[dict[str, object]]:
    rng = random.Random(7)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    docs = []
    for i in range(n):
        words = rng.sample(WORDS, 3)
        docs.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128))),
                "org_id": org,
                "key": f"PRJ{i % 10}-{i}",
                "title": f"{words[0]} full on host-{i % 500}" if i % 3 == 0 else " ".join(words),
                "description": " ".join(rng.choices(WORDS, k=20)),
                "status": rng.choice(["OPEN", "IN_PROGRESS", "CLOSED"]),
                "priority": rng.choice(["NOT_DEFINED", "P1", "P2", "P3", "P4", "P5"]),
                "project_id": f"00000000-0000-0000-0000-00000000000{i % 10}",
                "project_key": f"PRJ{i % 10}",
                "type_id": "00000000-0000-0000-0000-000000000001",
                "type_name": "STANDARD",
                "assignee_id": None if i % 4 == 0 else f"u{i % 50}",
                "assignee_handle": None if i % 4 == 0 else f"user{i % 50}@example.com",
                "attributes": {"service": [rng.choice(["web-store", "db", "auth", "search"])]},
                "custom_attributes": {},
                "comments": [],
                "archived": i % 20 == 0,
                "created_at": (base + timedelta(minutes=i)).isoformat(),
                "modified_at": None,
                "closed_at": None,
            }
        )
    return docs


class Recorder:
    """The engine requests of the query being timed, for the raw replay."""

    def __init__(self) -> None:
        self.current: list[object] | None = None
        self.by_query: list[list[object]] = []

    def start(self) -> None:
        self.current = []

    def stop(self) -> None:
        self.by_query.append(self.current or [])
        self.current = None

    def add(self, request: object) -> None:
        if self.current is not None:
            self.current.append(request)


def _percentiles(timings: list[float]) -> tuple[float, float]:
    timings = sorted(timings)
    return round(statistics.median(timings), 2), round(
        timings[min(len(timings) - 1, int(0.99 * (len(timings) - 1)))], 2
    )


Replay = Callable[[list[object]], Awaitable[float]]  # one query's recorded requests -> ms


async def measure(
    port: SearchPort, n: int, queries: int, recorder: Recorder, replay: Replay | None, loaded: bool = False
) -> tuple[dict[str, object], list[float]]:
    """casem's figures, and the raw replay's timings when `replay` is given (each query replayed right after).
    `loaded`: the store already holds the N cases (a kept --store), so nothing is loaded."""
    org = "bench-org"
    await port.ensure_index(CASE_MANAGEMENT)
    started = time.perf_counter()
    if not loaded:
        docs = documents(n, org)
        started = time.perf_counter()
        for start in range(0, n, 500):
            await port.bulk_upsert(CASE_MANAGEMENT, docs[start : start + 500])
            if start % 100_000 == 0 and start:
                print(f"loaded {start} cases", file=sys.stderr, flush=True)
        del docs
    await port.refresh(CASE_MANAGEMENT)
    load_s = time.perf_counter() - started
    timings: list[float] = []
    raw: list[float] = []
    for i in range(queries):
        kind, query = QUERIES[i % len(QUERIES)]
        recorder.start()
        t0 = time.perf_counter()
        if kind == "search":
            await search_cases(port, CASE_MANAGEMENT, org, query, sort_field="priority", page_size=25)
        else:
            await count_cases(port, CASE_MANAGEMENT, org, query, ["status", "priority", "service"])
        timings.append((time.perf_counter() - t0) * 1000)
        recorder.stop()
        if replay is not None:
            raw.append(await replay(recorder.by_query[-1]))
    p50, p99 = _percentiles(timings)
    result: dict[str, object] = {"p50_ms": p50, "p99_ms": p99}
    if not loaded:
        result["load_docs_per_s"] = round(n / load_s, 1)
    result["timings"] = timings
    return result, raw


def by_query(timings: list[float], raw: list[float]) -> dict[str, dict[str, float]]:
    """Each query shape's p50/p99 (and the raw replay's, when replayed interleaved): which shapes make the p99."""
    shapes: dict[str, dict[str, float]] = {}
    for n, (kind, query) in enumerate(QUERIES):
        mine = timings[n :: len(QUERIES)]
        if not mine:
            continue
        p50, p99 = _percentiles(mine)
        figures = {"p50_ms": p50, "p99_ms": p99}
        if len(raw) == len(timings):
            figures["raw_p50_ms"], figures["raw_p99_ms"] = _percentiles(raw[n :: len(QUERIES)])
        shapes[f"{kind} {query}"] = figures
    return shapes


def sqlite_replay(conn: sqlite3.Connection) -> Replay:
    """One query's recorded statements on a bare sqlite3 connection: SQLite's own time."""

    async def replay(statements: list[object]) -> float:
        t0 = time.perf_counter()
        for sql in statements:
            conn.execute(str(sql)).fetchall()
        return (time.perf_counter() - t0) * 1000

    return replay


def opensearch_replay(client: httpx.AsyncClient) -> Replay:
    """One query's recorded _search bodies posted with a plain HTTP client: OpenSearch's own time."""

    async def replay(requests: list[object]) -> float:
        t0 = time.perf_counter()
        for method, path, body in requests:  # type: ignore[misc]
            (await client.request(method, path, json=body)).raise_for_status()
        return (time.perf_counter() - t0) * 1000

    return replay


async def replay_all(replay: Replay, recorder: Recorder) -> list[float]:
    return [await replay(requests) for requests in recorder.by_query]


def with_raw(result: dict[str, object], raw: list[float]) -> dict[str, object]:
    p50, p99 = _percentiles(raw)
    timings: list[float] = result.pop("timings")  # type: ignore[assignment]
    shapes = by_query(timings, raw)
    by_shape = [f["p50_ms"] / f["raw_p50_ms"] for f in shapes.values() if f.get("raw_p50_ms")]
    return {
        **result,
        "raw_p50_ms": p50,
        "raw_p99_ms": p99,
        "ratio_p50": round(result["p50_ms"] / p50, 2),  # type: ignore[operator]
        # The mix's median is a poor summary when its shapes differ by orders of magnitude: with as many fast as
        # slow queries it falls between the slowest fast one and the fastest slow one, a ratio of two outliers.
        # Beside it: each shape's p50 against its own raw p50 (the worst of them), and all of casem's time against
        # all of the raw time.
        "ratio_p50_worst_shape": round(max(by_shape), 2) if by_shape else None,
        "ratio_total_time": round(sum(timings) / sum(raw), 2) if raw and sum(raw) else None,
        "by_query": shapes,
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    result: dict[str, object] = {
        "cases": args.cases,
        "queries": args.queries,
        "replay": args.replay,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if "embedded" in args.engines:
        await _embedded(args, result)
    if args.opensearch and "opensearch" in args.engines:
        await _opensearch(args, result)
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]  # a shared machine: how busy it was
    return result


async def _embedded(args: argparse.Namespace, result: dict[str, object]) -> None:
    directory = args.store or tempfile.mkdtemp(prefix="casem-bench-search-")
    if not args.store:  # a --store is kept, to be loaded again
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    # A kept store says how many cases it was built with; one built for another N (or unfinished) is refused.
    marker = Path(directory) / "bench-cases"
    loaded = marker.exists()
    if loaded and int(marker.read_text()) != args.cases:
        raise SystemExit(f"{directory} holds {marker.read_text()} cases, not {args.cases}: use another --store")
    if not loaded and args.store and any(Path(directory).glob("*.db")):
        raise SystemExit(f"{directory} holds an unfinished store: remove it or use another --store")
    recorder = Recorder()
    connect = sqlite3.connect

    def traced(*a, **k):  # type: ignore[no-untyped-def]
        conn = connect(*a, **k)
        conn.set_trace_callback(
            lambda sql: recorder.add(sql) if sql.lstrip().upper().startswith(("SELECT", "WITH")) else None
        )
        return conn

    sqlite3.connect = traced  # type: ignore[assignment]  # record the SQL the embedded engine runs
    embedded = EmbeddedSearch(directory)
    await embedded.ensure_index(CASE_MANAGEMENT)
    raw_conn = connect(str(next(Path(directory).rglob("*.db"))))  # bare: not traced
    replay = sqlite_replay(raw_conn)
    try:
        measured, raw = await measure(
            embedded, args.cases, args.queries, recorder, replay if args.replay == "interleaved" else None, loaded
        )
        if args.store and not loaded:
            marker.write_text(str(args.cases))
        if args.replay == "after":
            raw = await replay_all(replay, recorder)
    finally:
        await embedded.close()
        raw_conn.close()
        sqlite3.connect = connect  # type: ignore[assignment]
    result["embedded"] = with_raw(measured, raw)


async def _opensearch(args: argparse.Namespace, result: dict[str, object]) -> None:
    engine = OpenSearchSearch(args.opensearch, index_prefix=f"bench{uuid.uuid4().hex[:8]}-", write_refresh="false")
    recorder = Recorder()
    inner = engine._request

    async def recording(method, path, body=None, ok=(200, 201), **params):  # type: ignore[no-untyped-def]
        if path.endswith("/_search"):
            recorder.add((method, path, body))
        return await inner(method, path, body, ok, **params)

    engine._request = recording  # type: ignore[method-assign]
    client = httpx.AsyncClient(base_url=args.opensearch, timeout=60)
    replay = opensearch_replay(client)
    try:
        measured, raw = await measure(
            engine, args.cases, args.queries, recorder, replay if args.replay == "interleaved" else None
        )
        if args.replay == "after":
            raw = await replay_all(replay, recorder)
        result["opensearch"] = with_raw(measured, raw)
    finally:
        await client.aclose()
        await engine.drop(CASE_MANAGEMENT)
        await engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--opensearch", default=None, help="OpenSearch URL, e.g. http://127.0.0.1:59200")
    parser.add_argument("--engines", default="embedded,opensearch", help="which engines to measure (comma-separated)")
    parser.add_argument(
        "--store", default=None, help="keep the embedded store in this directory and reuse it on the next run"
    )
    parser.add_argument(
        "--replay",
        choices=("interleaved", "after"),
        default="interleaved",
        help="replay each query's raw requests right after it, or all of them at the end (the older way)",
    )
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
