"""Case analytics: per org and project — cases created and closed, open by priority, time to first
response (MTTA) and time to close (MTTR). The `case_metrics` projection is the source of truth
(served as JSON by case-api); Prometheus counters and histograms mirror it as events arrive."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter, Histogram

from casem.adapters.storage.tables import case_metrics
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.events import Event

CREATED = Counter("casem_cases_created_total", "Cases created", ["org", "project"])
CLOSED = Counter("casem_cases_closed_total", "Cases closed", ["org", "project"])
TIME_TO_RESPOND = Histogram(
    "casem_case_time_to_first_response_seconds",
    "Creation to first response",
    ["project"],
    buckets=(60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600),
)
TIME_TO_CLOSE = Histogram(
    "casem_case_time_to_close_seconds",
    "Creation to close",
    ["project"],
    buckets=(300, 3600, 4 * 3600, 24 * 3600, 3 * 24 * 3600, 7 * 24 * 3600, 30 * 24 * 3600),
)

# Events that count as a human responding to a case.
RESPONSES = frozenset({"case.comment_added", "case.assigned", "case.status_changed", "case.priority_changed"})


HANDLED_EVENTS = frozenset({"case.created", "case.moved"} | RESPONSES)


async def record(uow: UnitOfWork, event: Event) -> None:
    """Update the case_metrics projection (and its Prometheus mirror) with one case event (HANDLED_EVENTS)."""
    if event.type == "case.created":
        await uow.execute(
            sa.insert(case_metrics).values(
                case_id=event.case_id,
                org_id=event.org_id,
                project_id=event.data["project_id"],
                priority=event.data["priority"],
                status=event.data["status"],
                created_at=event.time,
                closed_at=event.time if event.data["status"] == "CLOSED" else None,
            )
        )
        CREATED.labels(event.org_id, event.data["project_id"]).inc()
        return
    row = (await uow.execute(sa.select(case_metrics).where(case_metrics.c.case_id == event.case_id))).first()
    if row is None:
        return  # the case predates analytics; nothing to update
    values: dict[str, Any] = {}
    if event.type == "case.moved":
        values["project_id"] = event.changed("project_id")["new"]
    if event.type == "case.priority_changed":
        values["priority"] = event.changed("priority")["new"]
    if event.type == "case.status_changed":
        status = event.changed("status")["new"]
        values["status"] = status
        values["closed_at"] = event.time if status == "CLOSED" else None
        if status == "CLOSED" and row.closed_at is None:
            CLOSED.labels(event.org_id, row.project_id).inc()
            TIME_TO_CLOSE.labels(row.project_id).observe(_seconds(row.created_at, event.time))
    if event.type in RESPONSES and row.first_response_at is None and event.actor_id:
        values["first_response_at"] = event.time
        TIME_TO_RESPOND.labels(row.project_id).observe(_seconds(row.created_at, event.time))
    if values:
        await uow.execute(sa.update(case_metrics).where(case_metrics.c.case_id == event.case_id).values(**values))


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


async def summary(uow: UnitOfWork, org_id: str, project_id: str | None = None) -> dict[str, Any]:
    """The JSON analytics of an org (optionally one project), computed from the projection."""
    m = case_metrics
    scope = [m.c.org_id == org_id] + ([m.c.project_id == project_id] if project_id else [])
    counts = (
        await uow.execute(
            sa.select(
                sa.func.count(),
                sa.func.count(m.c.closed_at),
            ).where(*scope)
        )
    ).one()
    open_by_priority = {
        p: n
        for p, n in (
            await uow.execute(
                sa.select(m.c.priority, sa.func.count()).where(*scope, m.c.status != "CLOSED").group_by(m.c.priority)
            )
        ).all()
    }
    rows = (await uow.execute(sa.select(m.c.created_at, m.c.first_response_at, m.c.closed_at).where(*scope))).all()
    respond = [_seconds(r.created_at, r.first_response_at) for r in rows if r.first_response_at]
    close = [_seconds(r.created_at, r.closed_at) for r in rows if r.closed_at]
    return {
        "org_id": org_id,
        "project_id": project_id,
        "cases_created": counts[0],
        "cases_closed": counts[1],
        "open_by_priority": open_by_priority,
        "mean_time_to_first_response_seconds": sum(respond) / len(respond) if respond else None,
        "mean_time_to_close_seconds": sum(close) / len(close) if close else None,
    }
