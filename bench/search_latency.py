"""Search latency at N cases: p50/p99 of engine-backed search_cases and count_cases, as JSON.

usage: .venv/bin/python bench/search_latency.py [--cases 20000] [--queries 300] [--opensearch URL]

Loads N case documents (varied status, priority, project, assignee, attributes and words) for one org
into the embedded search (temporary directory) and, with --opensearch, into OpenSearch under a scratch
prefix that is dropped afterwards; then times a fixed mix of queries through casem.services.search_api.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

from casem.adapters.search import EmbeddedSearch, OpenSearchSearch, SearchPort
from casem.services.search_api.service import count_cases, search_cases
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


async def measure(port: SearchPort, n: int, queries: int) -> dict[str, object]:
    org = "bench-org"
    await port.ensure_index(CASE_MANAGEMENT)
    docs = documents(n, org)
    started = time.perf_counter()
    for start in range(0, n, 500):
        await port.bulk_upsert(CASE_MANAGEMENT, docs[start : start + 500])
    await port.refresh(CASE_MANAGEMENT)
    load_s = time.perf_counter() - started
    timings: list[float] = []
    for i in range(queries):
        kind, query = QUERIES[i % len(QUERIES)]
        t0 = time.perf_counter()
        if kind == "search":
            await search_cases(port, CASE_MANAGEMENT, org, query, sort_field="priority", page_size=25)
        else:
            await count_cases(port, CASE_MANAGEMENT, org, query, ["status", "priority", "service"])
        timings.append((time.perf_counter() - t0) * 1000)
    timings.sort()
    return {
        "load_docs_per_s": round(n / load_s, 1),
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(timings[min(len(timings) - 1, int(0.99 * (len(timings) - 1)))], 2),
    }


async def run(args: argparse.Namespace) -> dict[str, object]:
    result: dict[str, object] = {"cases": args.cases, "queries": args.queries}
    embedded = EmbeddedSearch(tempfile.mkdtemp(prefix="casem-bench-search-"))
    try:
        result["embedded"] = await measure(embedded, args.cases, args.queries)
    finally:
        await embedded.close()
    if args.opensearch:
        engine = OpenSearchSearch(args.opensearch, index_prefix=f"bench{uuid.uuid4().hex[:8]}-", write_refresh="false")
        try:
            result["opensearch"] = await measure(engine, args.cases, args.queries)
        finally:
            await engine.drop(CASE_MANAGEMENT)
            await engine.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--opensearch", default=None, help="OpenSearch URL, e.g. http://127.0.0.1:59200")
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
