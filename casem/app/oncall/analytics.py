"""On-call analytics beside the case figures: per team the pages, time to acknowledge (MTTA) and to resolve
(MTTR); per responder the pages they were notified of and acknowledged; and the pages that came out of hours
(outside Monday to Friday, 09:00 to 18:00, on the wall clock of the time zone asked for)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from casem.adapters.storage.tables import oncall_notifications, oncall_pages
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.oncall import out_of_hours


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return max(0.0, (end - start).total_seconds()) if end is not None else None


async def summary(uow: UnitOfWork, org_id: str, tz: ZoneInfo) -> dict[str, Any]:
    rows = (
        await uow.execute(
            sa.select(
                oncall_pages.c.id,
                oncall_pages.c.team_id,
                oncall_pages.c.urgency,
                oncall_pages.c.created_at,
                oncall_pages.c.acknowledged_at,
                oncall_pages.c.acknowledged_by_id,
                oncall_pages.c.resolved_at,
            ).where(oncall_pages.c.org_id == org_id)
        )
    ).all()
    teams: dict[str | None, dict[str, list[Any]]] = defaultdict(lambda: {"pages": [], "ack": [], "resolve": []})
    after_hours = 0
    for row in rows:
        team = teams[row.team_id]
        team["pages"].append(row.id)
        if (seconds := _seconds(row.created_at, row.acknowledged_at)) is not None:
            team["ack"].append(seconds)
        if (seconds := _seconds(row.created_at, row.resolved_at)) is not None:
            team["resolve"].append(seconds)
        after_hours += out_of_hours(row.created_at, tz)
    notified = (
        await uow.execute(
            sa.select(oncall_notifications.c.user_id, sa.func.count(sa.distinct(oncall_notifications.c.page_id)))
            .where(oncall_notifications.c.org_id == org_id, oncall_notifications.c.status == "sent")
            .group_by(oncall_notifications.c.user_id)
        )
    ).all()
    acknowledged: dict[str, int] = defaultdict(int)
    for row in rows:
        if row.acknowledged_by_id:
            acknowledged[row.acknowledged_by_id] += 1
    responders = {user: {"pages_notified": n, "pages_acknowledged": acknowledged.get(user, 0)} for user, n in notified}
    for user, n in acknowledged.items():
        responders.setdefault(user, {"pages_notified": 0, "pages_acknowledged": n})
    return {
        "pages": len(rows),
        "teams": [
            {
                "team_id": team_id,
                "pages": len(values["pages"]),
                "acknowledged": len(values["ack"]),
                "resolved": len(values["resolve"]),
                "mean_time_to_acknowledge_seconds": _mean(values["ack"]),
                "mean_time_to_resolve_seconds": _mean(values["resolve"]),
            }
            for team_id, values in sorted(teams.items(), key=lambda item: item[0] or "")
        ],
        "responders": [{"user_id": user, **counts} for user, counts in sorted(responders.items())],
        "out_of_hours": {
            "time_zone": tz.key,
            "business_hours": "Monday to Friday, 09:00 to 18:00",
            "pages": after_hours,
            "share": after_hours / len(rows) if rows else None,
        },
    }
