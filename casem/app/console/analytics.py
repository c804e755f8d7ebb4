"""The console's analytics: cases opened and closed per day, time to acknowledge and to close per project and
priority, and SLA breaches, for charts.

Opened and closed counts and the time to close come from the cases themselves; the time to first response
(MTTA) from the analytics flavor's projection (`case_metrics`) and breaches from the SLA clocks the
sla-tracking flavor keeps: where those flavors have not run, those charts say so instead of showing zeros.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import case_metrics, cases, projects, sla_clocks
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.events import utcnow

DAYS_DEFAULT = 30


@dataclass(frozen=True)
class Analytics:
    days: list[str]
    opened: list[int]
    closed: list[int]
    mttr_hours: dict[str, dict[str, float]]  # project key → priority → mean hours to close
    mtta_hours: dict[str, dict[str, float]]  # project key → priority → mean hours to first response
    breaches: dict[str, dict[str, int]]  # project key → {"acknowledge": n, "close": n}
    priorities: list[str]

    def chart_data(self) -> dict[str, Any]:
        return self.__dict__


def _day(value: datetime) -> date:
    return value.date()


async def load_analytics(uow: UnitOfWork, org_id: str, days: int = DAYS_DEFAULT) -> Analytics:
    today = utcnow().date()
    start = today - timedelta(days=days - 1)
    since = datetime.combine(start, datetime.min.time()).replace(tzinfo=utcnow().tzinfo)
    keys = {
        r.id: r.key
        for r in await uow.execute(sa.select(projects.c.id, projects.c.key).where(projects.c.org_id == org_id))
    }
    opened: dict[date, int] = defaultdict(int)
    closed: dict[date, int] = defaultdict(int)
    for (created,) in await uow.execute(
        sa.select(cases.c.created_at).where(cases.c.org_id == org_id, cases.c.created_at >= since)
    ):
        opened[_day(created)] += 1
    for (when,) in await uow.execute(
        sa.select(cases.c.closed_at).where(cases.c.org_id == org_id, cases.c.closed_at >= since)
    ):
        closed[_day(when)] += 1
    series = [start + timedelta(days=n) for n in range(days)]
    close_sum: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in await uow.execute(
        sa.select(cases.c.project_id, cases.c.priority, cases.c.created_at, cases.c.closed_at).where(
            cases.c.org_id == org_id, cases.c.closed_at.is_not(None)
        )
    ):
        close_sum[(keys.get(row.project_id, "?"), row.priority)].append(
            max(0.0, (row.closed_at - row.created_at).total_seconds() / 3600)
        )
    respond_sum: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in await uow.execute(
        sa.select(case_metrics.c.project_id, case_metrics.c.priority, case_metrics.c.created_at,
                  case_metrics.c.first_response_at).where(
            case_metrics.c.org_id == org_id, case_metrics.c.first_response_at.is_not(None)
        )
    ):  # fmt: skip
        respond_sum[(keys.get(row.project_id, "?"), row.priority)].append(
            max(0.0, (row.first_response_at - row.created_at).total_seconds() / 3600)
        )
    breaches: dict[str, dict[str, int]] = defaultdict(lambda: {"acknowledge": 0, "close": 0})
    for row in await uow.execute(
        sa.select(
            sla_clocks.c.project_id,
            sa.func.count(sla_clocks.c.acknowledge_breached_at),
            sa.func.count(sla_clocks.c.close_breached_at),
        )
        .where(sla_clocks.c.org_id == org_id)
        .group_by(sla_clocks.c.project_id)
    ):
        breaches[keys.get(row[0], "?")] = {"acknowledge": int(row[1]), "close": int(row[2])}

    def means(source: dict[tuple[str, str], list[float]]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = defaultdict(dict)
        for (project, priority), values in sorted(source.items()):
            out[project][priority] = round(sum(values) / len(values), 2)
        return dict(out)

    return Analytics(
        days=[d.isoformat() for d in series],
        opened=[opened.get(d, 0) for d in series],
        closed=[closed.get(d, 0) for d in series],
        mttr_hours=means(close_sum),
        mtta_hours=means(respond_sum),
        breaches=dict(breaches),
        priorities=["P1", "P2", "P3", "P4", "P5", "NOT_DEFINED"],
    )
