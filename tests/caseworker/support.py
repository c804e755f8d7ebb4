"""Helpers shared by the caseworker suites."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import (
    case_entity_links,
    case_merge_progress,
    domain_events,
    timeline_cells,
    watchers,
)
from casem.app.cases.service import NewCase, create_case, get_case
from casem.app.context import AppContext
from casem.app.identity.service import create_user
from casem.app.timeline.service import add_comment
from casem.app.watchers.service import watch

# -- merges and purges: seeding a world, and checking that the work happened exactly once -------------------


@dataclass
class MergeFixture:
    primary_id: str
    primary_key: str
    duplicate_ids: list[str]
    cells: dict[str, set[str]]  # duplicate id → ids of its live timeline cells before the merge
    watchers: set[str]  # the primary's watchers once merged: the union
    attributes: dict[str, list[str]]  # the primary's attributes once merged: the union


async def seed_merge(
    ctx: AppContext, org_id: str, actor_id: str, project_id: str, *, duplicates: int, comments: int
) -> MergeFixture:
    """A primary and duplicates: each duplicate with comments by several authors, its own watcher and attributes."""
    async with ctx.uow() as uow:
        people = [
            (await create_user(uow, org_id, f"merge-{uuid.uuid4().hex[:8]}@example.com", actor_id=actor_id)).id
            for _ in range(3)
        ]
        await uow.commit()
    authors = [actor_id, *people]
    async with ctx.uow() as uow:
        primary = await create_case(
            uow, org_id, actor_id, NewCase(project_id, "Login failures", attributes={"env": ["prod"]})
        )
        await uow.commit()
    async with ctx.uow() as uow:
        await watch(uow, org_id, actor_id, primary.id, people[0])
        await uow.commit()
    ids: list[str] = []
    attributes = {"env": ["prod"]}
    for n in range(duplicates):
        dup_attributes = {"env": ["prod", "staging"] if n % 2 else ["prod"], "service": [f"svc-{n % 4}"]}
        async with ctx.uow() as uow:
            dup = await create_case(
                uow, org_id, actor_id, NewCase(project_id, f"Login failures #{n}", attributes=dup_attributes)
            )
            await uow.commit()
        for c in range(comments):
            async with ctx.uow() as uow:
                await add_comment(uow, org_id, authors[c % len(authors)], dup.id, f"note {c} on duplicate {n}")
                await uow.commit()
        async with ctx.uow() as uow:
            await watch(uow, org_id, actor_id, dup.id, people[n % len(people)])
            await uow.commit()
        ids.append(dup.id)
        for key, values in dup_attributes.items():  # the primary's values first, then each duplicate's new ones
            attributes[key] = list(dict.fromkeys([*attributes.get(key, []), *values]))
    async with ctx.uow(read_only=True) as uow:
        rows = (
            await uow.execute(
                sa.select(timeline_cells.c.id, timeline_cells.c.case_id).where(
                    timeline_cells.c.case_id.in_(ids), timeline_cells.c.deleted_at.is_(None)
                )
            )
        ).all()
    cells: dict[str, set[str]] = {i: set() for i in ids}
    for row in rows:
        cells[row.case_id].add(row.id)
    watchers_union = {people[0]} | {people[n % len(people)] for n in range(duplicates)}
    return MergeFixture(primary.id, primary.key, ids, cells, watchers_union, attributes)


async def _events_of(ctx: AppContext, short_type: str, case_ids: list[str]) -> list[Any]:
    async with ctx.uow(read_only=True) as uow:
        return list(
            (
                await uow.execute(
                    sa.select(domain_events.c.case_id, domain_events.c.envelope).where(
                        domain_events.c.type == f"com.casem.{short_type}.v1", domain_events.c.case_id.in_(case_ids)
                    )
                )
            ).all()
        )


async def assert_merged_once(ctx: AppContext, org_id: str, fixture: MergeFixture, merge_id: str) -> None:
    """Every duplicate merged exactly once: cells copied once with provenance, closed once, one `case.merged`."""
    dups = fixture.duplicate_ids
    async with ctx.uow(read_only=True) as uow:
        primary = await get_case(uow, org_id, fixture.primary_id)
        closed = {d: await get_case(uow, org_id, d) for d in dups}
        copied = (
            await uow.execute(sa.select(timeline_cells).where(timeline_cells.c.case_id == fixture.primary_id))
        ).all()
        on_primary = set(
            (await uow.execute(sa.select(watchers.c.user_id).where(watchers.c.case_id == primary.id))).scalars()
        )
        links = (
            await uow.execute(
                sa.select(case_entity_links).where(
                    case_entity_links.c.parent_entity_id.in_(dups), case_entity_links.c.merge_id == merge_id
                )
            )
        ).all()
        progress = (
            await uow.execute(sa.select(case_merge_progress).where(case_merge_progress.c.merge_id == merge_id))
        ).all()
    for dup in closed.values():
        assert dup.status == "CLOSED" and dup.resolved_reason == f"duplicate of {fixture.primary_key}"
    # Copies: per duplicate, each of its original cells exactly once, with original author and time.
    by_source: dict[str, list[str]] = {d: [] for d in dups}
    for cell in copied:
        provenance = cell.content.get("merged_from")
        if provenance is None:
            continue
        assert provenance["merge_id"] == merge_id
        assert provenance["author_id"] == cell.author_id
        assert provenance["created_at"] == cell.created_at.isoformat()
        by_source[provenance["case_id"]].append(provenance["cell_id"])
    for dup_id in dups:
        assert sorted(by_source[dup_id]) == sorted(fixture.cells[dup_id]), f"cells of {dup_id} not copied once"
    assert on_primary == fixture.watchers
    assert primary.attributes == fixture.attributes
    assert sorted(link.parent_entity_id for link in links) == sorted(dups)
    assert {(link.relationship, link.child_entity_id) for link in links} == {("DUPLICATES", fixture.primary_id)}
    assert sorted((p.duplicate_id, p.outcome) for p in progress) == sorted((d, "merged") for d in dups)
    merged_events = await _events_of(ctx, "case.merged", dups)
    assert sorted(e.case_id for e in merged_events) == sorted(dups)  # one per duplicate
    closings = [
        e
        for e in await _events_of(ctx, "case.status_changed", dups)
        if e.envelope["data"]["changes"]["status"]["new"] == "CLOSED"
    ]
    assert sorted(e.case_id for e in closings) == sorted(dups)  # each closed once
