"""Properties of the Case aggregate's changes: a no-op records nothing, a change records one event that
carries the old and new value and can be replayed."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casem.domain.cases import DESCRIPTION_MAX, Case, Priority, Status, validate_description
from casem.domain.errors import InvalidInput
from tests.domain.support import new_case

titles = st.text(min_size=1, max_size=40).filter(str.strip)
statuses = st.sampled_from([s.value for s in Status])
priorities = st.sampled_from([p.value for p in Priority])
assignees = st.one_of(st.none(), st.sampled_from(["u1", "u2"]))
attributes = st.dictionaries(
    st.sampled_from(["env", "service"]), st.lists(st.sampled_from(["a", "b"]), max_size=2), max_size=2
)
dates = st.one_of(st.none(), st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 1, 1)))

CHANGES: dict[str, tuple[st.SearchStrategy[Any], str]] = {
    "retitle": (titles, "title"),
    "transition": (statuses, "status"),
    "prioritize": (priorities, "priority"),
    "assign": (assignees, "assignee_id"),
    "set_attributes": (attributes, "attributes"),
    "set_due_date": (dates, "due_date"),
}


@given(st.data())
@pytest.mark.parametrize("method", sorted(CHANGES))
def test_a_change_records_one_event_and_a_repeat_records_none(method: str, data: st.DataObject) -> None:
    values, attribute = CHANGES[method]
    case = new_case()
    value = data.draw(values)
    before = getattr(case, attribute)
    changed = getattr(case, method)(value, "u9")
    events = case.collect_events()
    assert changed is (before != value) and len(events) == int(changed)
    if changed:
        [event] = events
        change = event.data["changes"][attribute]
        as_json = value.isoformat() if isinstance(value, date) else value
        assert change["new"] == as_json and event.actor_id == "u9" and case.modified_by_id == "u9"
        assert (event.case_id, event.subject_id, event.data["key"]) == ("c1", "c1", "SEC-1")
    assert getattr(case, attribute) == value
    assert not getattr(case, method)(value, "u9")  # the same value again: a no-op
    assert case.collect_events() == []


@given(st.lists(statuses, max_size=6))
def test_closed_at_is_set_exactly_while_closed(sequence: list[str]) -> None:
    case = new_case()
    for status in sequence:
        case.transition(status, "u1")
        assert (case.closed_at is not None) is (case.status == "CLOSED")
        assert case.status_group == f"SG_{case.status}"


def test_archive_and_move() -> None:
    case = new_case()
    assert case.archive("u1") and case.archived and not case.archive("u1")
    assert case.unarchive("u1") and not case.archived and not case.unarchive("u1")
    assert case.move_to("p2", 7, "OPS-7", "u1")
    archived, unarchived, moved = case.collect_events()
    assert archived.type == "case.archived" and unarchived.type == "case.unarchived"
    assert moved.data["changes"] == {
        "project_id": {"old": "p1", "new": "p2"},
        "number": {"old": 1, "new": 7},
        "key": {"old": "SEC-1", "new": "OPS-7"},
    }
    assert moved.data["key"] == "OPS-7" and moved.data["project_id"] == "p2"


def test_description_and_resolved_reason_limits() -> None:
    assert validate_description("") == ""
    with pytest.raises(InvalidInput, match="limit is 30000"):
        validate_description("x" * (DESCRIPTION_MAX + 1))
    with pytest.raises(InvalidInput) as raised:
        new_case().set_resolved_reason("x" * 256, "u1")
    assert raised.value.pointer == "/data/attributes/resolved_reason"


def test_deleting_records_the_key() -> None:
    case: Case = new_case()
    case.record_deleted("u1")
    [event] = case.collect_events()
    assert (event.type, event.data) == ("case.deleted", {"key": "SEC-1", "project_id": "p1"})
