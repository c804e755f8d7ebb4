"""On-call: page → first notification on the Temporal dev server, and the schedule resolver, each beside its baseline
measured in the same run.

usage: .venv/bin/python bench/oncall.py [--temporal 127.0.0.1:57233] [--pages 100] [--queries 2000]
           [--reference-queries 200] [--skip-paging]

paging     --pages pages triggered together (all in flight at once) for a team whose policy's first step is one
           person with an email rule: from the page's creation (the API's use case: its case, routing, commit, then
           the workflow start) to its first email accepted by a loopback SMTP server (aiosmtpd). SQLite tenant
           databases, one in-process caseworker on a fresh task queue.
baseline   as many empty workflows, started together: start, signal, and wait for the result: the dev server's own
           round trip for the same concurrency.
resolver   a 2-year, 3-layer, 50-member schedule with 1,000 overrides: who is on call at --queries random instants
           (the resolver) against --reference-queries of them evaluated literally (casem/domain/oncall_reference.py,
           which walks handoffs one by one and scans every override), p50/p99 per query, and both answers compared;
           plus a week's timeline against the reference's minute-by-minute sweep of the same week.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import workflow

# The sandbox re-imports this module to validate the baseline workflow: casem's modules pass through unchanged.
with workflow.unsafe.imports_passed_through():
    from aiosmtpd.controller import Controller
    from temporalio.client import Client

    from casem.adapters.blobs.filesystem import FilesystemBlobStore
    from casem.adapters.http import AllowList
    from casem.adapters.notify.smtp import SmtpSettings
    from casem.adapters.workflows.client import TemporalCaseworker
    from casem.app.context import AppContext
    from casem.app.identity.service import add_member, bootstrap_org, create_team, create_user
    from casem.app.oncall import notifications, pages, policies, routing
    from casem.app.oncall.delivery import Senders
    from casem.app.oncall.directory import Directory
    from casem.domain.oncall_reference import Reference
    from casem.domain.oncall_schedules import Interval, Layer, LayerMember, Override, Restriction, Schedule
    from casem.services.caseworker.worker import build_worker
    from casem.topology.tenants import CASE_MANAGEMENT, ON_CALL, TENANTS, DatabaseEndpoints


@workflow.defn
class SignalledNoop:
    """The baseline: waits for one signal, then ends."""

    def __init__(self) -> None:
        self.go = False

    @workflow.signal
    def proceed(self) -> None:
        self.go = True

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.go)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"n": len(ordered), "p50_ms": round(q[49] * 1000, 3), "p99_ms": round(q[98] * 1000, 3),
            "max_ms": round(ordered[-1] * 1000, 3)}  # fmt: skip


# -- paging -----------------------------------------------------------------------------------------------------


class Sink:
    """An SMTP server that notes when each message arrived, by subject."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        subject = next(
            (
                line.split(":", 1)[1].strip()
                for line in envelope.content.decode().splitlines()
                if line.startswith("Subject:")
            ),
            "",
        )
        self.arrivals.setdefault(subject, time.perf_counter())
        return "250 OK"


async def paging_world(ctx: AppContext) -> tuple[str, str, str]:
    async with ctx.uow() as uow:
        creds = await bootstrap_org(uow, "bench", "admin@bench.example")
        person = await create_user(uow, creds.org_id, "oncall@bench.example", name="On call")
        team = await create_team(uow, creds.org_id, "bench", "Bench")
        await uow.session.flush()
        await add_member(uow, creds.org_id, team.id, person.id, None, creds.user_id)
        await uow.commit()
    async with ctx.uow(ON_CALL) as uow, ctx.uow(CASE_MANAGEMENT, read_only=True) as people:
        directory = Directory(people, creds.org_id)
        channel, _ = await notifications.create_channel(
            uow,
            directory,
            creds.org_id,
            creds.user_id,
            person.id,
            {"config": {"type": "email", "address": "p@b.example"}},
        )
        relationships = {"channel": {"data": {"id": channel.id, "type": "notification_channels"}}}
        await notifications.create_rule(
            uow, directory, creds.org_id, creds.user_id, person.id, {"category": "high_urgency"}, relationships
        )
        steps = [{"escalate_after_seconds": 3600, "targets": [{"type": "users", "id": person.id}]}]
        policy = await policies.create_policy(
            uow, directory, creds.org_id, creds.user_id, {"name": "bench", "steps": steps}, [team.id]
        )
        await routing.set_rules(uow, directory, creds.org_id, creds.user_id, team.id, None, [{"policy_id": policy.id}])
        await uow.commit()
    return creds.org_id, creds.user_id, team.id


async def bench_paging(ctx: AppContext, client: Client, caseworker: TemporalCaseworker, sink: Sink, n: int) -> dict:
    org_id, actor, team_id = await paging_world(ctx)
    created: dict[str, float] = {}
    keys: dict[str, str] = {}

    async def one(i: int) -> None:
        started = time.perf_counter()
        new = pages.NewPage(title=f"bench page {i}", urgency="high", target_type="team_id", target_identifier=team_id)
        async with ctx.uow(ON_CALL) as uow, ctx.uow(CASE_MANAGEMENT, read_only=True) as people:
            page, _ = await pages.create_page(uow, Directory(people, org_id), org_id, actor, new)
            await uow.commit()
        await caseworker.start_page_escalation(ON_CALL, org_id, page.id)
        created[page.id] = started
        keys[page.id] = f"[casem page, high urgency] {page.key}: bench page {i}"

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    deadline = time.monotonic() + 300
    while len(sink.arrivals) < n:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(sink.arrivals)} of {n} first notifications arrived")
        await asyncio.sleep(0.01)
    wall = time.perf_counter() - began
    latencies = [sink.arrivals[keys[p]] - created[p] for p in created]
    for page_id in created:  # the escalations wait for an acknowledgement: end them
        await caseworker.signal_page(page_id, "page_resolved")
    return {"pages_in_flight": n, "wall_s": round(wall, 2), "page_to_first_notification": percentiles(latencies)}


async def bench_baseline(client: Client, queue: str, n: int) -> dict:
    async def one() -> float:
        started = time.perf_counter()
        handle = await client.start_workflow(SignalledNoop.run, id=f"noop-{uuid.uuid4()}", task_queue=queue)
        await handle.signal(SignalledNoop.proceed)
        await handle.result()
        return time.perf_counter() - started

    samples = await asyncio.gather(*(one() for _ in range(n)))
    return {"workflows_in_flight": n, "start_signal_result": percentiles(list(samples))}


# -- resolver ---------------------------------------------------------------------------------------------------

START = datetime(2025, 1, 6, tzinfo=UTC)  # a Monday
YEARS = timedelta(days=730)


def big_schedule(rng: random.Random) -> Schedule:
    members = [f"user-{n:02d}" for n in range(50)]

    def layer(
        name: str, interval: Interval, who: list[str], restrictions: tuple[Restriction, ...] = (), tz: str | None = None
    ) -> Layer:
        return Layer(
            id=name, name=name, effective_date=START, end_date=START + YEARS, rotation_start=START + timedelta(hours=9),
            interval=interval, members=tuple(LayerMember(f"{name}-{i}", u) for i, u in enumerate(who)),
            restrictions=restrictions, time_zone=tz,
        )  # fmt: skip

    weekdays = (Restriction(0, 9 * 3600, 4, 17 * 3600),)  # Monday 09:00 to Friday 17:00, local
    weekend = (Restriction(4, 17 * 3600, 0, 9 * 3600),)
    layers = [
        layer("weekly", Interval(7, 0), members),
        layer("business-hours", Interval(1, 0), members[:25], weekdays, "Europe/Berlin"),
        layer("weekend-12h", Interval(0, 12 * 3600), members[25:], weekend, "America/New_York"),
    ]
    overrides = []
    for i in range(1000):
        begin = START + timedelta(minutes=rng.randrange(0, int(YEARS.total_seconds() // 60)))
        # Covers for a few hours (a dentist, a flight): about a fifth of the two years is overridden.
        overrides.append(Override(str(i), rng.choice(members), begin, begin + timedelta(hours=rng.randint(1, 6))))
    return Schedule(
        id="bench", org_id="bench", name="bench", time_zone="America/Los_Angeles", layers=layers, overrides=overrides
    )


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - started, result


def bench_resolver(queries: int, reference_queries: int) -> dict:
    rng = random.Random(20250106)
    schedule = big_schedule(rng)
    instants = [START + timedelta(seconds=rng.randrange(0, int(YEARS.total_seconds()))) for _ in range(queries)]
    index_spent, _ = timed(schedule.on_call_at, instants[0])  # the first query of a loaded schedule indexes overrides
    fast = [timed(schedule.on_call_at, t) for t in instants]
    reference_samples = []
    mismatches = 0
    for t, (_, answer) in zip(instants[:reference_queries], fast[:reference_queries], strict=True):
        spent, expected = timed(Reference(schedule).on_call_at, t)  # a fresh reference: no walk to reuse
        reference_samples.append(spent)
        mismatches += expected != answer
    week = START + timedelta(days=rng.randrange(0, 700))
    timeline_spent, segments = timed(schedule.timeline, week, week + timedelta(days=7))
    sweep_spent, minutes = timed(Reference(schedule).sweep, week, week + timedelta(days=7))
    minute_mismatch = 0
    i = 0
    for n, expected in enumerate(minutes):
        at = week + timedelta(minutes=n)
        while i < len(segments) and segments[i].end <= at:
            i += 1
        got = segments[i].user_id if i < len(segments) and segments[i].start <= at else None
        minute_mismatch += got != expected
    fast_times = [s for s, _ in fast]
    return {
        "schedule": {"layers": 3, "members": 50, "overrides": 1000, "span_days": YEARS.days},
        "first_query_with_override_index_ms": round(index_spent * 1000, 3),
        "instants_under_an_override": round(
            sum(schedule.override_at(t) is not None for t in instants) / len(instants), 3
        ),
        "on_call_at": percentiles(fast_times),
        "reference_on_call_at": percentiles(reference_samples),
        "p99_speedup": round(percentiles(reference_samples)["p99_ms"] / percentiles(fast_times)["p99_ms"], 1),
        "answers_compared": reference_queries,
        "mismatches": mismatches,
        "week_timeline_ms": round(timeline_spent * 1000, 2),
        "reference_week_sweep_ms": round(sweep_spent * 1000, 2),
        "week_segments": len(segments),
        "week_minutes_compared": len(minutes),
        "week_minute_mismatches": minute_mismatch,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from _support import free_port  # here, not at the top: the module's workflows load in Temporal's sandbox

    result: dict[str, Any] = {"cpus": os.cpu_count(), "resolver": bench_resolver(args.queries, args.reference_queries)}
    if args.skip_paging:
        return result
    workdir = Path(tempfile.mkdtemp(prefix="casem-bench-oncall-"))
    endpoints = {t.name: DatabaseEndpoints(master=f"sqlite+aiosqlite:///{workdir / (t.name + '.db')}") for t in TENANTS}
    ctx = AppContext.open(endpoints)
    sink = Sink()
    port = free_port()
    smtp = Controller(sink, hostname="127.0.0.1", port=port)
    smtp.start()
    client = await Client.connect(args.temporal)
    queue = f"bench-oncall-{uuid.uuid4().hex[:8]}"
    senders = Senders(
        smtp=SmtpSettings(host="127.0.0.1", port=port), allow=AllowList.parse(["127.0.0.0/8"], allow_host_names=False)
    )
    worker = build_worker(
        client, ctx, FilesystemBlobStore(workdir / "blobs"), task_queue=queue, extra_workflows=[SignalledNoop],
        notifier=senders,
    )  # fmt: skip
    try:
        async with worker:
            result["baseline"] = await bench_baseline(client, queue, args.pages)
            result["paging"] = await bench_paging(ctx, client, TemporalCaseworker(client, queue), sink, args.pages)
    finally:
        smtp.stop()
        await senders.close()
        await ctx.close()
        shutil.rmtree(workdir, ignore_errors=True)
    result |= {"temporal": args.temporal, "database": "sqlite"}
    result["first_notification_p50_vs_baseline_p50"] = round(
        result["paging"]["page_to_first_notification"]["p50_ms"] / result["baseline"]["start_signal_result"]["p50_ms"],
        2,
    )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--temporal", default=os.environ.get("CASEM_TEST_TEMPORAL_ADDRESS", "127.0.0.1:7233"))
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--reference-queries", type=int, default=200)
    parser.add_argument("--skip-paging", action="store_true", help="only the resolver (no Temporal needed)")
    result = asyncio.run(main(parser.parse_args()))
    from _support import memory_column  # here, not at the top: the module's workflows load in Temporal's sandbox

    result["peak_rss_mb"] = memory_column("caseworker worker, paging activities, loopback receivers")
    print(json.dumps(result, indent=2))
