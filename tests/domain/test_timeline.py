"""Timeline cells: comments and the change cell each case event becomes."""

from __future__ import annotations

from datetime import date

import pytest

from casem.domain.attachments import Attachment
from casem.domain.cases import INDEXED_BY_CREATOR
from casem.domain.errors import InvalidInput
from casem.domain.timeline import CHANGE_CELL_TYPES, COMMENT_MAX, TimelineCell, change_cell, validate_comment
from tests.domain.support import new_case, only_event


@pytest.mark.parametrize(
    ("message", "detail"),
    [
        ("", "comment must be a non-empty string"),
        (" \n\t", "comment must be a non-empty string"),
        (None, "comment must be a non-empty string"),
        (["hi"], "comment must be a non-empty string"),
        ("x" * (COMMENT_MAX + 1), "comment is 30001 characters long; the limit is 30000"),
    ],
)
def test_bad_comments(message: object, detail: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_comment(message)
    assert (raised.value.detail, raised.value.pointer) == (detail, "/data/attributes/comment")
    with pytest.raises(InvalidInput) as raised:
        validate_comment(message, "/data/attributes/message")
    assert raised.value.pointer == "/data/attributes/message"


def test_a_comments_life_records_added_updated_deleted() -> None:
    assert validate_comment("x" * COMMENT_MAX) == "x" * COMMENT_MAX
    cell = TimelineCell.comment(id="k1", org_id="o1", case_id="c1", message="first", author_id="u1")
    assert cell.is_comment and cell.content == {"message": "first"} and cell.author_id == "u1"
    cell.edit("second", "u2")
    assert cell.content == {"message": "second"} and cell.modified_at is not None
    cell.delete("u3")
    assert cell.deleted_at is not None
    added, updated, deleted = cell.collect_events()
    assert [(e.type, e.actor_id, e.case_id, e.subject_id) for e in (added, updated, deleted)] == [
        ("case.comment_added", "u1", "c1", "c1"),
        ("case.comment_updated", "u2", "c1", "c1"),
        ("case.comment_deleted", "u3", "c1", "c1"),
    ]
    assert added.data == {"cell_id": "k1", "message": "first"}
    assert updated.data == {"cell_id": "k1", "old": "first", "message": "second"}
    assert deleted.data == {"cell_id": "k1"}


def test_a_bad_edit_changes_nothing() -> None:
    cell = TimelineCell.comment(id="k1", org_id="o1", case_id="c1", message="first", author_id="u1")
    cell.collect_events()
    with pytest.raises(InvalidInput):
        cell.edit("  ", "u1")
    assert cell.content == {"message": "first"} and cell.collect_events() == []


def test_every_case_change_becomes_its_cell() -> None:
    case = new_case()
    changes = {
        "TITLE_CHANGE": lambda c: c.retitle("Disk full on web-1", "u1"),
        "DESCRIPTION_CHANGE": lambda c: c.describe("The /var partition", "u1"),
        "STATUS_CHANGE": lambda c: c.transition("IN_PROGRESS", "u1"),
        "PRIORITY_CHANGE": lambda c: c.prioritize("P2", "u1"),
        "ASSIGNEE_CHANGE": lambda c: c.assign("u7", "u1"),
        "ATTRIBUTES_CHANGE": lambda c: c.set_attributes({"env": ["prod"]}, "u1"),
        "CUSTOM_ATTRIBUTES_CHANGE": lambda c: c.set_custom_attributes({"k": {"value": 1}}, "u1"),
        "DUE_DATE_CHANGE": lambda c: c.set_due_date(date(2030, 1, 1), "u1"),
        "RESOLVED_REASON_CHANGE": lambda c: c.set_resolved_reason("fixed", "u1"),
        "ARCHIVE_CHANGE": lambda c: c.archive("u1"),
        "PROJECT_CHANGE": lambda c: c.move_to("p2", 4, "OPS-4", "u1"),
    }
    for cell_type, change in changes.items():
        event = only_event(case, change)
        cell = change_cell(event, f"cell-{cell_type}")
        assert cell is not None and cell.type == cell_type == CHANGE_CELL_TYPES[event.type]
        assert (cell.id, cell.org_id, cell.case_id, cell.author_id) == (f"cell-{cell_type}", "o1", "c1", "u1")
        assert (cell.created_at, cell.source_event_id) == (event.time, event.id)
        assert cell.content == {"event": event.type, **event.data}
        assert not cell.is_comment
    unassigned = only_event(case, lambda c: c.assign(None, None))
    cell = change_cell(unassigned, "x")
    assert cell is not None and cell.type == "ASSIGNEE_CHANGE" and cell.author_id is None


def test_attachment_steps_become_cells_and_other_events_do_not() -> None:
    attachment = Attachment.upload(
        id="a1",
        org_id="o1",
        case_id="c1",
        filename="f.txt",
        content_type="text/plain",
        size=1,
        sha256="0" * 64,
        uploaded_by_id="u1",
    )
    [uploaded] = attachment.collect_events()
    cell = change_cell(uploaded, "x")
    assert cell is not None and cell.type == "ATTACHMENT_CHANGE" and cell.content["filename"] == "f.txt"
    [comment] = TimelineCell.comment(id="k", org_id="o1", case_id="c1", message="hi", author_id="u1").collect_events()
    assert change_cell(comment, "x") is None  # the comment is its own cell
    case = new_case()
    case.record_deleted("u1")
    [deleted] = case.collect_events()
    assert change_cell(deleted, "x") is None


def test_a_creation_its_creator_indexes_shows_users_no_note_about_it() -> None:
    """case-indexer's note on an intake case's `case.created` (it writes the search document itself) stays in the event
    for the search-indexing flavor, and out of the timeline cell users see."""
    for indexed in (True, False):
        case = new_case()
        case.record_opened(indexed_by_creator=indexed)
        [event] = case.collect_events()
        cell = change_cell(event, "cell-1")
        assert cell is not None
        assert (INDEXED_BY_CREATOR in event.data) is indexed
        assert cell.shown_content == {key: value for key, value in cell.content.items() if key != INDEXED_BY_CREATOR}
        assert INDEXED_BY_CREATOR not in cell.shown_content
        assert cell.shown_content["title"] == "Disk full"
