"""Case retention: when a closed, archived case is due for purge, and purging a batch of due cases at once.

A purge is exactly once per case: it runs in one transaction that locks the cases, skips those already in
`case_purges` (whose `case_id` is unique, so a racing second purge fails its commit and its retry finds the
case done) and re-checks each case's eligibility, so an unarchive that raced the sweep still wins.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from casem.adapters.storage.tables import attachments, case_purges, cases, retention_policies, timeline_cells, watchers
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.cases import Case, Status
from casem.domain.events import utcnow

# Rows a purge removes beside the case, as the audit counts them (other case tables go by ON DELETE CASCADE).
COUNTED_TABLES = (("attachments", attachments), ("watchers", watchers), ("timeline", timeline_cells))
IN_CHUNK = 500  # ids per IN (...) list: well under every engine's bound-parameter limit


async def retention_days_for(uow: UnitOfWork, org_id: str, project_id: str) -> int | None:
    """The project's policy, else the org's, else None (closed cases are kept forever)."""
    return (await RetentionPolicies.load(uow, [org_id])).days(org_id, project_id)


def purge_deadline(case: Case, retention_days: int | None) -> tuple[datetime | None, str]:
    if retention_days is None:
        return None, "no retention policy"
    if case.status != Status.CLOSED or case.closed_at is None:
        return None, "case is not closed"
    if case.archived_at is None:
        return None, "case is not archived"
    return due_at(case.closed_at, case.archived_at, retention_days), "due"


def due_at(closed_at: datetime, archived_at: datetime, retention_days: int) -> datetime:
    # Retention counts from the later of closing and archiving: both must have held that long.
    return max(closed_at, archived_at) + timedelta(days=retention_days)


@dataclass
class RetentionPolicies:
    """The retention policies of some orgs, read once: (org, project) -> days, (org, None) -> the org's."""

    by_scope: dict[tuple[str, str | None], int]

    @classmethod
    async def load(cls, uow: UnitOfWork, org_ids: Iterable[str]) -> RetentionPolicies:
        rp = retention_policies.c
        by_scope: dict[tuple[str, str | None], int] = {}
        for chunk in _chunks(sorted(set(org_ids))):
            rows = await uow.execute(
                sa.select(rp.org_id, rp.project_id, rp.closed_case_retention_days).where(rp.org_id.in_(chunk))
            )
            for row in rows:
                by_scope[(row.org_id, row.project_id)] = row.closed_case_retention_days
        return cls(by_scope)

    def days(self, org_id: str, project_id: str) -> int | None:
        return self.by_scope.get((org_id, project_id), self.by_scope.get((org_id, None)))


@dataclass
class BatchPurge:
    """What one batch purge did, case by case."""

    purged: dict[str, dict[str, int]] = field(default_factory=dict)  # case id -> rows removed per table
    already_purged: list[str] = field(default_factory=list)  # purged before (a retry or a racing purge)
    not_eligible: list[str] = field(default_factory=list)  # gone, reopened, unarchived, or not yet due
    blob_prefixes: list[str] = field(default_factory=list)  # "<org>/<case>/": what the caller deletes after commit


async def purge_due_cases(uow: UnitOfWork, case_ids: Sequence[str], as_of: datetime, workflow_id: str) -> BatchPurge:
    """Purge those of `case_ids` that are due at `as_of`, in the caller's transaction, with multi-row statements:
    each purged case gets its `case_purges` audit row and its `case.purged` event, as a single purge does.
    The caller commits, then deletes the blobs under `blob_prefixes`."""
    ids = list(dict.fromkeys(case_ids))
    report = BatchPurge()
    loaded: list[Case] = []
    for chunk in _chunks(ids):
        # Lock first (FOR UPDATE on PostgreSQL, SQLite's write transaction otherwise), then look for audit rows:
        # a purge that committed while we waited has left its row, and the case is no longer found.
        loaded += await uow.scalars(sa.select(Case).where(cases.c.id.in_(chunk)).with_for_update())
    found = {case.id: case for case in loaded}
    done: dict[str, str] = {}
    for chunk in _chunks(ids):
        rows = await uow.execute(
            sa.select(case_purges.c.case_id, case_purges.c.org_id).where(case_purges.c.case_id.in_(chunk))
        )
        done.update({row.case_id: row.org_id for row in rows})
    policies = await RetentionPolicies.load(uow, {case.org_id for case in loaded})
    due: list[tuple[Case, int]] = []
    for case_id in ids:
        if case_id in done:
            report.already_purged.append(case_id)
            report.blob_prefixes.append(f"{done[case_id]}/{case_id}/")  # a retry after the commit: blobs may remain
            continue
        case = found.get(case_id)
        days = policies.days(case.org_id, case.project_id) if case is not None else None
        deadline = purge_deadline(case, days)[0] if case is not None else None
        if case is None or days is None or deadline is None or deadline > as_of:
            report.not_eligible.append(case_id)
            continue
        due.append((case, days))
    if not due:
        return report
    due_ids = [case.id for case, _ in due]
    counts: dict[str, dict[str, int]] = {
        case_id: dict.fromkeys(name for name, _ in COUNTED_TABLES) for case_id in due_ids
    }
    for name, table in COUNTED_TABLES:
        for chunk in _chunks(due_ids):
            rows = await uow.execute(
                sa.select(table.c.case_id, sa.func.count()).where(table.c.case_id.in_(chunk)).group_by(table.c.case_id)
            )
            for case_id, count in rows:
                counts[case_id][name] = count
    counts = {case_id: {name: n or 0 for name, n in by_table.items()} for case_id, by_table in counts.items()}
    purged_at = utcnow()
    await uow.execute(
        sa.insert(case_purges),
        [
            {
                "id": str(uuid.uuid4()),
                "org_id": case.org_id,
                "case_id": case.id,
                "case_key": case.key,
                "project_id": case.project_id,
                "closed_at": case.closed_at,
                "archived_at": case.archived_at,
                "retention_days": days,
                "counts": counts[case.id],
                "workflow_id": workflow_id,
                "purged_at": purged_at,
            }
            for case, days in due
        ],
    )
    for case, days in due:
        case.record_purged(days, counts[case.id])
        # Deleted below by a plain statement: out of the session (its flush must not touch the row), its
        # event still collected at commit.
        uow.session.expunge(case)
        uow.track(case)
        report.purged[case.id] = counts[case.id]
        report.blob_prefixes.append(f"{case.org_id}/{case.id}/")
    for chunk in _chunks(due_ids):
        for _name, table in COUNTED_TABLES:
            await uow.execute(sa.delete(table).where(table.c.case_id.in_(chunk)))
        await uow.execute(sa.delete(cases).where(cases.c.id.in_(chunk)))
    return report


def _chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), IN_CHUNK):
        yield ids[start : start + IN_CHUNK]
