"""Auto-close of inactive cases (a project's `auto_close_inactive_cases` setting), run by the caseworker's
auto-close schedule: `close_inactive_cases(context, tenant, now)`.

A case's last activity is the latest of its creation, its last change (`modified_at`) and the newest moment on
its timeline (a comment added, edited or deleted, a watcher, an attachment step, ...): every change to a case
leaves a cell there. A case of a project with auto-close on, neither closed nor archived, whose last activity
is older than the project's `max_inactive_time_in_secs`, is closed with a status change that says why.

Each case is closed in its own transaction, which locks the case row and measures its activity again: a case
touched after it was picked (a comment, a reassignment) is spared. A closed case is never closed again, so
the sweep is idempotent and any number of runs (or retries) close each case once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from casem.adapters.storage.tables import cases, projects, timeline_cells
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.context import AppContext
from casem.domain.cases import Case, Status
from casem.domain.errors import NotFound
from casem.domain.project_settings import auto_close_after, describe_duration

BATCH = 500


@dataclass
class AutoCloseReport:
    tenant: str
    projects: int = 0  # projects with auto-close on
    candidates: int = 0  # cases that looked inactive
    closed: int = 0
    spared: int = 0  # touched (or closed by someone) between being picked and being closed


@dataclass(frozen=True)
class Candidate:
    case_id: str
    org_id: str
    max_inactive_seconds: int


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def auto_close_projects(uow: UnitOfWork) -> dict[str, int]:
    """Project id → seconds of inactivity after which its cases close, for every project with auto-close on."""
    rows = await uow.execute(sa.select(projects.c.id, projects.c.settings).where(projects.c.deleted_at.is_(None)))
    found = {}
    for row in rows:
        seconds = auto_close_after(row.settings or {})
        if seconds is not None:
            found[row.id] = seconds
    return found


async def last_activity(uow: UnitOfWork, case_ids: Iterable[str]) -> dict[str, datetime]:
    """The latest moment anything happened to each case (creation, a change, a timeline cell)."""
    ids = list(case_ids)
    latest: dict[str, datetime] = {}

    def bump(case_id: str, value: datetime | None) -> None:
        if value is not None:
            value = _utc(value)
            if case_id not in latest or value > latest[case_id]:
                latest[case_id] = value

    for row in await uow.execute(
        sa.select(cases.c.id, cases.c.created_at, cases.c.modified_at).where(cases.c.id.in_(ids))
    ):
        bump(row.id, row.created_at)
        bump(row.id, row.modified_at)
    cells = await uow.execute(
        sa.select(
            timeline_cells.c.case_id,
            sa.func.max(timeline_cells.c.created_at).label("created"),
            sa.func.max(timeline_cells.c.modified_at).label("modified"),
            sa.func.max(timeline_cells.c.deleted_at).label("deleted"),
        )
        .where(timeline_cells.c.case_id.in_(ids))
        .group_by(timeline_cells.c.case_id)
    )
    for row in cells:
        for value in (row.created, row.modified, row.deleted):
            # SQLite hands aggregates back as text: the column type is lost through max().
            bump(row.case_id, datetime.fromisoformat(value) if isinstance(value, str) else value)
    return latest


async def inactive_candidates(uow: UnitOfWork, now: datetime) -> tuple[int, list[Candidate]]:
    """(projects with auto-close on, the cases of theirs inactive at `now`)."""
    limits = await auto_close_projects(uow)
    found: list[Candidate] = []
    for project_id, seconds in limits.items():
        cutoff = _utc(now) - timedelta(seconds=seconds)
        # Cheap first cut on the case row; the timeline is looked at for those that pass it.
        rows = (
            await uow.execute(
                sa.select(cases.c.id, cases.c.org_id).where(
                    cases.c.project_id == project_id,
                    cases.c.status != Status.CLOSED.value,
                    cases.c.archived_at.is_(None),
                    sa.func.coalesce(cases.c.modified_at, cases.c.created_at) < cutoff,
                )
            )
        ).all()
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            activity = await last_activity(uow, [r.id for r in chunk])
            found.extend(Candidate(r.id, r.org_id, seconds) for r in chunk if activity.get(r.id, cutoff) < cutoff)
    return len(limits), found


async def close_if_inactive(uow: UnitOfWork, candidate: Candidate, now: datetime) -> bool:
    """Close the case if it is still inactive, measured again under its row lock; False when it is spared."""
    try:
        case = await uow.get(Case, candidate.org_id, candidate.case_id, resource="case", lock=True)
    except NotFound:
        return False
    if case.status == Status.CLOSED or case.archived:
        return False
    # The project's setting as it is now: turned off (or lengthened) since the case was picked, it wins.
    limit = await auto_close_projects_of(uow, case.project_id)
    if limit is None:
        return False
    latest = (await last_activity(uow, [case.id])).get(case.id)
    if latest is None or latest >= _utc(now) - timedelta(seconds=limit):
        return False
    return case.close_for_inactivity(limit, latest, describe_duration(limit))


async def auto_close_projects_of(uow: UnitOfWork, project_id: str) -> int | None:
    settings = await uow.scalar(sa.select(projects.c.settings).where(projects.c.id == project_id))
    return auto_close_after(settings or {})


async def close_inactive_cases(
    context: AppContext, tenant: str, now: datetime, *, progress: Callable[[], None] | None = None
) -> AutoCloseReport:
    """One sweep of a tenant: every inactive case of a project with auto-close on is closed, each in its own
    transaction (a crash leaves the closed ones closed; the next sweep finishes the rest). `progress` is called
    after each case (the caseworker heartbeats with it)."""
    report = AutoCloseReport(tenant)
    async with context.uow(tenant, read_only=True) as uow:
        report.projects, candidates = await inactive_candidates(uow, now)
    report.candidates = len(candidates)
    for candidate in candidates:
        async with context.uow(tenant) as uow:
            if await close_if_inactive(uow, candidate, now):
                await uow.commit()
                report.closed += 1
            else:
                report.spared += 1
        if progress is not None:
            progress()
    return report
