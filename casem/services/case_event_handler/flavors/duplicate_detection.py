"""duplicate-detection: a new case that looks like an open one of its project gets a timeline cell
"possible duplicate of KEY" (`case.duplicate_suggested`, with the candidate's id and key and the score).

Candidates are the project's open, unarchived cases created within the project's window before the new
one. Similarity is the Jaccard index of the normalized title words, plus a bonus for shared attribute
values; a case whose attributes contradict the new one's (same key, no value in common) is no duplicate.
The best candidate at or above the project's threshold is suggested (casem/domain/automation.py).

With the project's `auto_merge` setting on, the new case is also merged into the candidate at once: the
flavor starts the caseworker's merge workflow, whose id derives from the `case.created` event, so a
redelivered event joins the merge already started instead of starting another.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

import sqlalchemy as sa
import structlog

from casem.adapters.storage.tables import cases
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.automation import is_possible_duplicate, similarity
from casem.domain.cases import Status
from casem.domain.errors import NotFound
from casem.domain.events import DomainEvent
from casem.domain.merges import auto_merge_id
from casem.services.case_api.automation_rules.settings import project_settings
from casem.services.case_api.cases.service import get_case
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor

log = structlog.get_logger("duplicate-detection")

SUGGESTED = "case.duplicate_suggested"
MAX_CANDIDATES = 500  # the most recent open cases of the window: bounds the work per new case


@flavor
class DuplicateDetection:
    name: ClassVar[str] = "duplicate-detection"
    handles: ClassVar[frozenset[str]] = frozenset({"case.created"})
    uses: ClassVar[tuple[str, ...]] = ("caseworker",)  # optional: only projects with auto_merge need it

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
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
            merge_id = await self._auto_merge(event, services, best.id, case.id)
        case.record(
            DomainEvent(
                type=SUGGESTED,
                org_id=case.org_id,
                actor_id=None,
                subject_id=case.id,
                case_id=case.id,
                data={
                    "message": f"possible duplicate of {best.key}",
                    "candidate_id": best.id,
                    "candidate_key": best.key,
                    "score": sim.score,
                    "title_similarity": round(sim.title, 3),
                    "shared_attributes": [list(pair) for pair in sim.shared],
                    "merge_id": merge_id,
                    "key": case.key,
                    "project_id": case.project_id,
                },
            )
        )

    async def _auto_merge(self, event: Event, services: HandlerServices, primary_id: str, case_id: str) -> str | None:
        caseworker = services.extras.get("caseworker")
        if caseworker is None:
            # The suggestion still stands for a person to act on; merging needs CASEM_TEMPORAL_ADDRESS.
            log.warning("auto_merge is on but this handler has no caseworker", case_id=case_id)
            return None
        from casem.services.caseworker.merges import MergeRequest  # the caseworker's types, only when merging

        merge_id = auto_merge_id(event.id)
        await caseworker.start_merge(
            MergeRequest(event.tenant, event.org_id, merge_id, primary_id, [case_id], None, self.name)
        )
        return merge_id
