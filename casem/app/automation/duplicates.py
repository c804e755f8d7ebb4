"""Duplicate detection: a new case that looks like an open one of its project gets a timeline cell
"possible duplicate of KEY" (`case.duplicate_suggested`, with the candidate's id and key and the score).

Candidates are the project's open, unarchived cases created within the project's window before the new
one. Similarity is the Jaccard index of the normalized title words, plus a bonus for shared attribute
values; a case whose attributes contradict the new one's (same key, no value in common) is no duplicate.
The best candidate at or above the project's threshold is suggested (casem/domain/automation.py).

With the project's `auto_merge` setting on, the new case is also merged into the candidate at once through
the caseworker's merge workflow, whose id derives from the `case.created` event, so a redelivered event
joins the merge already started instead of starting another.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
import structlog

from casem.adapters.storage.tables import cases
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.adapters.workflows.contracts import MergeRequest
from casem.app.automation.settings import project_settings
from casem.app.cases.service import get_case
from casem.app.events import Event
from casem.app.workflows import Caseworker
from casem.domain.automation import is_possible_duplicate, similarity
from casem.domain.cases import DUPLICATE_SUGGESTED, Status
from casem.domain.errors import NotFound
from casem.domain.merges import auto_merge_id

log = structlog.get_logger("duplicate-detection")

SUGGESTED = DUPLICATE_SUGGESTED
MAX_CANDIDATES = 500  # the most recent open cases of the window: bounds the work per new case


async def detect(uow: UnitOfWork, event: Event, caseworker: Caseworker | None, source: str) -> None:
    """Suggest (and, with auto_merge, merge into) the best earlier look-alike of the case `event` created."""
    if event.case_id is None or event.data.get("status") == Status.CLOSED:
        return
    project_id = event.data["project_id"]
    settings = (await project_settings(uow, event.org_id, project_id)).duplicates
    if not settings.enabled:
        return
    c = cases.c
    rows = (
        await uow.execute(
            sa.select(c.id, c.key, c.title, c.attributes, c.created_at)
            .where(
                c.org_id == event.org_id,
                c.project_id == project_id,
                c.id != event.case_id,
                c.status != Status.CLOSED.value,
                c.archived_at.is_(None),
                c.created_at >= event.time - timedelta(seconds=settings.window_seconds),
                c.created_at <= event.time,
            )
            .order_by(c.created_at.desc())
            .limit(MAX_CANDIDATES)
        )
    ).all()
    title, attributes = event.data["title"], event.data.get("attributes") or {}
    scored = [(similarity(title, attributes, row.title, row.attributes or {}), row) for row in rows]
    matches = [(sim, row) for sim, row in scored if is_possible_duplicate(sim, settings.threshold)]
    if not matches:
        return
    sim, best = max(matches, key=lambda m: (m[0].score, m[1].created_at))
    try:
        case = await get_case(uow, event.org_id, event.case_id)
    except NotFound:
        return  # deleted since
    merge_id = None
    if settings.auto_merge:
        merge_id = await _auto_merge(event, caseworker, best.id, case.id, source)
    case.suggest_duplicate(
        best.id,
        best.key,
        {
            "score": sim.score,
            "title_similarity": round(sim.title, 3),
            "shared_attributes": [list(pair) for pair in sim.shared],
            "merge_id": merge_id,
        },
    )


async def _auto_merge(
    event: Event, caseworker: Caseworker | None, primary_id: str, case_id: str, source: str
) -> str | None:
    if caseworker is None:
        # The suggestion still stands for a person to act on; merging needs CASEM_TEMPORAL_ADDRESS.
        log.warning("auto_merge is on but this handler has no caseworker", case_id=case_id)
        return None
    merge_id = auto_merge_id(event.id)
    await caseworker.start_merge(
        MergeRequest(event.tenant, event.org_id, merge_id, primary_id, [case_id], None, source)
    )
    return merge_id
