"""The Case aggregate and its validators: pure, no I/O."""

from __future__ import annotations

import pytest

from casem.domain.case_types import CustomAttributeConfig
from casem.domain.cases import STANDARD_TYPE_ID, Case, validate_attributes, validate_title
from casem.domain.errors import InvalidInput
from casem.domain.timeline import TimelineCell, change_cell


def new_case(**overrides) -> Case:
    fields = dict(
        id="c1", org_id="o1", project_id="p1", number=1, key="SEC-1", title="Disk full", type_id=STANDARD_TYPE_ID
    )
    fields.update(overrides)
    return Case.open(actor_id="u1", **fields)


def test_opening_records_a_created_event_with_a_snapshot() -> None:
    case = new_case()
    [event] = case.collect_events()
    assert event.type == "case.created"
    assert event.data["key"] == "SEC-1" and event.data["status"] == "OPEN"
    assert event.cloudevent_type == "com.casem.case.created.v1"
    envelope = event.envelope("case-management")
    assert envelope["specversion"] == "1.0" and envelope["subject"] == "case/c1" and envelope["orgid"] == "o1"
    assert case.collect_events() == []


def test_closing_sets_closed_at_and_reopening_clears_it() -> None:
    case = new_case()
    case.collect_events()
    assert case.transition("CLOSED", "u2")
    assert case.closed_at is not None and case.status_group == "SG_CLOSED"
    [closed] = case.collect_events()
    assert closed.data["changes"]["status"] == {"old": "OPEN", "new": "CLOSED"}
    assert "closed_at" in closed.data["changes"]
    assert case.transition("IN_PROGRESS", "u2")
    assert case.closed_at is None and case.modified_by_id == "u2"


def test_a_no_op_change_records_nothing() -> None:
    case = new_case()
    case.collect_events()
    assert not case.prioritize("NOT_DEFINED", "u1")
    assert not case.retitle("Disk full", "u1")
    assert case.collect_events() == []


@pytest.mark.parametrize(("status", "pointer"), [("DONE", "/data/attributes/status"), ("", "/data/attributes/status")])
def test_bad_enum_names_the_allowed_values(status: str, pointer: str) -> None:
    with pytest.raises(InvalidInput) as err:
        new_case().transition(status, "u1")
    assert "OPEN, IN_PROGRESS, CLOSED" in err.value.detail and err.value.pointer == pointer


def test_title_and_attribute_validation() -> None:
    with pytest.raises(InvalidInput):
        validate_title("   ")
    with pytest.raises(InvalidInput, match="limit is 255"):
        validate_title("x" * 256)
    with pytest.raises(InvalidInput, match="list of strings"):
        validate_attributes({"service": "web"})
    assert validate_attributes({"service": ["web", "db"]}) == {"service": ["web", "db"]}


def test_change_cells_follow_case_events_but_not_comments() -> None:
    case = new_case()
    case.collect_events()
    case.assign("u9", "u1")
    [event] = case.collect_events()
    cell = change_cell(event, "cell-1")
    assert cell is not None and cell.type == "ASSIGNEE_CHANGE" and cell.author_id == "u1"
    comment = TimelineCell.comment(id="k", org_id="o1", case_id="c1", message="looking", author_id="u1")
    [added] = comment.collect_events()
    assert added.type == "case.comment_added" and change_cell(added, "x") is None


@pytest.mark.parametrize(
    ("kind", "multi", "value", "ok"),
    [
        ("NUMBER", False, 3.5, True),
        ("NUMBER", False, "3", False),
        ("NUMBER", False, True, False),
        ("URL", False, "https://example.com/x", True),
        ("URL", False, "ftp://x", False),
        ("TEXT", True, ["a", "b"], True),
        ("TEXT", False, ["a"], False),
        ("SELECT", False, "high", True),
        ("SELECT", False, "urgent", False),
    ],
)
def test_custom_attribute_values_are_typed(kind: str, multi: bool, value: object, ok: bool) -> None:
    config = CustomAttributeConfig(
        id="a",
        org_id="o",
        case_type_id="t",
        key="impact",
        display_name="Impact",
        type=kind,
        is_multi=multi,
        options=["low", "high"] if kind == "SELECT" else [],
    )
    if ok:
        coerced = config.coerce(value, "/p")
        assert coerced == {"type": kind, "is_multi": multi, "value": value}
    else:
        with pytest.raises(InvalidInput):
            config.coerce(value, "/p")
