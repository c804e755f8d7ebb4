"""Maintenance windows: periods in UTC, and the events their changes record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from casem.domain.errors import InvalidInput
from casem.domain.maintenance_windows import MaintenanceWindow, validate_period

START = datetime(2030, 6, 1, 22, 0, tzinfo=UTC)
PARIS = timezone(timedelta(hours=2))


def window(**overrides: object) -> MaintenanceWindow:
    fields: dict[str, object] = dict(
        id="w1", org_id="o1", name="DB upgrade", query="service:db", start_at=START, end_at=START + timedelta(hours=2)
    )
    fields.update(overrides)
    return MaintenanceWindow.create(actor_id="u1", **fields)


def test_a_period_must_end_after_it_starts() -> None:
    validate_period(START, START + timedelta(seconds=1))
    for end in (START, START - timedelta(minutes=1)):
        with pytest.raises(InvalidInput) as raised:
            validate_period(START, end)
        assert raised.value.pointer == "/data/attributes/end_at"
        assert raised.value.detail == f"end_at ({end.isoformat()}) must be after start_at ({START.isoformat()})"


def test_times_without_offset_are_utc_and_offsets_are_compared_as_instants() -> None:
    naive_start = datetime(2030, 6, 1, 22, 0)
    with pytest.raises(InvalidInput):
        validate_period(naive_start, START)  # the same instant
    # 23:30 in Paris is 21:30 UTC: before a 22:00 UTC start.
    with pytest.raises(InvalidInput):
        validate_period(START, datetime(2030, 6, 1, 23, 30, tzinfo=PARIS))
    validate_period(START, datetime(2030, 6, 2, 0, 30, tzinfo=PARIS))


def test_creating_stores_utc_and_records_the_period() -> None:
    created = window(start_at=datetime(2030, 6, 2, 0, 0, tzinfo=PARIS), end_at=datetime(2030, 6, 2, 1, 0))
    assert created.start_at == START and created.start_at.tzinfo is UTC
    assert created.end_at == datetime(2030, 6, 2, 1, 0, tzinfo=UTC)
    [event] = created.collect_events()
    assert (event.type, event.subject_type, event.subject_id, event.actor_id, event.case_id) == (
        "maintenance_window.created",
        "maintenance_window",
        "w1",
        "u1",
        None,
    )
    assert event.data == {
        "name": "DB upgrade",
        "query": "service:db",
        "start_at": "2030-06-01T22:00:00+00:00",
        "end_at": "2030-06-02T01:00:00+00:00",
    }
    assert created.created_by_id == "u1"


def test_a_backwards_window_is_refused_at_creation() -> None:
    with pytest.raises(InvalidInput):
        window(end_at=START)


def test_updates_record_what_changed() -> None:
    w = window()
    w.collect_events()
    assert not w.update("u2", name="DB upgrade", start_at=START.astimezone(PARIS))  # same instant: no change
    assert w.collect_events() == [] and w.modified_at is None
    assert w.update("u2", name="DB upgrade v2", end_at=datetime(2030, 6, 2, 3, 0))
    [event] = w.collect_events()
    assert event.type == "maintenance_window.updated"
    assert event.data == {"changes": {"name": "DB upgrade v2", "end_at": "2030-06-02T03:00:00+00:00"}}
    assert w.end_at.tzinfo is UTC and w.updated_by_id == "u2" and w.modified_at is not None


def test_an_update_that_would_end_before_the_start_changes_nothing() -> None:
    w = window()
    w.collect_events()
    with pytest.raises(InvalidInput):
        w.update("u2", start_at=START + timedelta(hours=3))
    assert w.start_at == START and w.collect_events() == []


def test_deleting_records_the_name() -> None:
    w = window()
    w.collect_events()
    w.delete("u3")
    [event] = w.collect_events()
    assert (event.type, event.actor_id, event.data) == ("maintenance_window.deleted", "u3", {"name": "DB upgrade"})
