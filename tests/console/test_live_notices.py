"""What the live feed tells a browser about an event: ids only, and for a merge step the primary it went into."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from casem.app.events import Event
from casem.services.case_console.live import notice_of


def _event(kind: str, case_id: str, data: dict) -> Event:
    return Event(
        id=str(uuid.uuid4()),
        type=kind,
        version=1,
        tenant="case-management",
        org_id="org",
        case_id=case_id,
        actor_id="someone",
        subject=case_id,
        time=datetime.now(UTC),
        sequence=1,
        data=data,
        envelope={},
    )


def test_a_merge_step_names_its_primary_and_nothing_else_of_the_data() -> None:
    primary, duplicate = str(uuid.uuid4()), str(uuid.uuid4())
    data = {"key": "OPS-2", "project_id": "p", "primary_id": primary, "primary_key": "OPS-1", "message": "secret"}
    notice = notice_of(_event("case.merged", duplicate, data))
    assert (notice.case_id, notice.primary_id, notice.key) == (duplicate, primary, "OPS-2")
    assert set(json.loads(notice.to_json())) == {"type", "case_id", "key", "project_id", "actor_id", "primary_id"}


def test_a_page_event_is_a_notice_of_the_page() -> None:
    page_id = str(uuid.uuid4())
    notice = notice_of(_event("page.acknowledged", page_id, {"page_id": page_id, "key": "PAGE-7", "title": "t"}))
    assert (notice.type, notice.case_id, notice.key) == ("page.acknowledged", page_id, "PAGE-7")
    assert notice.primary_id is None
    assert "title" not in notice.to_json()
