"""Batch creation's faster encodings write the same text as SQLAlchemy's own: the driver-form INSERT's values
(UTC datetimes, JSON) on SQLite, the outbox envelope and change cell encoded from their event's data once, and the
bulk identifiers are canonical version 4 UUIDs."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from casem.adapters.storage.set_statements import JsonText, driver_insert, dumps
from casem.adapters.storage.tables import domain_events, timeline_cells
from casem.adapters.storage.unit_of_work import _cell_content_text, _envelope_text, stored_envelope
from casem.domain.events import DomainEvent
from casem.domain.ids import _fresh, new_id
from casem.domain.timeline import change_cell_fields

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
datas = st.dictionaries(st.text(max_size=8), json_values, max_size=6)


def _sqlalchemy_values(table: sa.Table, row: dict[str, Any], dialect: sa.Dialect) -> dict[str, Any]:
    """The row's values as SQLAlchemy's bind processors convert them."""
    converted = {}
    for name, value in row.items():
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        converted[name] = process(value) if process is not None else value
    return converted


@pytest.fixture
def sqlite_dialect(tmp_path: Path) -> sa.Dialect:
    return sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}").dialect


@given(data=datas)
def test_json_text_is_json_dumps(data: dict[str, Any]) -> None:
    assert dumps(data) == json.dumps(data)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 30, 1, 2, 3, 456789, tzinfo=UTC),
        datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC),  # no microseconds: still written with six zeros
        datetime(2026, 11, 30, 1, 2, 3, tzinfo=timezone(timedelta(hours=2))),  # another offset: the general path
        datetime(2026, 11, 30, 1, 2, 3),  # naive: taken as UTC
    ],
)
def test_driver_insert_converts_as_sqlalchemy_does(sqlite_dialect: sa.Dialect, moment: datetime) -> None:
    rows = [
        {"id": "c1", "org_id": "o", "case_id": "k", "type": "COMMENT", "content": {"a": [1, "ü"]}, "author_id": None,
         "created_at": moment, "modified_at": None, "deleted_at": None, "source_event_id": None},
        {"id": "c2", "org_id": "o", "case_id": "k", "type": "COMMENT", "content": None, "author_id": "u",
         "created_at": moment, "modified_at": moment, "deleted_at": None, "source_event_id": "e"},
    ]  # fmt: skip
    sql, values = driver_insert(timeline_cells, rows, sqlite_dialect)
    order = [name.strip('"') for name in sql.split("(", 1)[1].split(")", 1)[0].split(", ")]
    for row, got in zip(rows, values, strict=True):
        expected = _sqlalchemy_values(timeline_cells, row, sqlite_dialect)
        assert dict(zip(order, got, strict=True)) == expected


def test_json_text_is_written_as_it_is(sqlite_dialect: sa.Dialect) -> None:
    row = {"seq": 1, "id": "e", "type": "t", "version": 1, "org_id": "o", "case_id": None, "actor_id": None,
           "time": datetime.now(UTC), "envelope": JsonText('{"a": 1}'), "published_at": None}  # fmt: skip
    sql, values = driver_insert(domain_events, [row], sqlite_dialect)
    assert '{"a": 1}' in values[0]
    row["envelope"] = '{"a": 1}'  # a plain string is a JSON string value: encoded
    assert '"{\\"a\\": 1}"' in driver_insert(domain_events, [row], sqlite_dialect)[1][0]


@given(data=datas, traced=st.booleans())
def test_envelope_and_cell_texts_are_their_json(data: dict[str, Any], traced: bool) -> None:
    event = DomainEvent(type="case.created", org_id="o", actor_id=None, subject_id="c", case_id="c", data=data)
    trace = {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"} if traced else None
    envelope = stored_envelope(event.envelope("case-management", trace=trace))
    text = _envelope_text(envelope, event.data, dumps(event.data))
    assert isinstance(text, JsonText)
    assert text == json.dumps(envelope)
    cell = change_cell_fields(event, "cell")
    assert cell is not None
    content = _cell_content_text(cell["content"], event, dumps(event.data))
    if "event" in data:  # not the shape {"event": type, **data}: left to the usual encoding
        assert content is cell["content"]
    else:
        assert isinstance(content, JsonText)
        assert content == json.dumps(cell["content"])
        assert json.loads(content) == cell["content"]


def test_an_envelope_not_ending_in_data_is_encoded_as_usual() -> None:
    envelope = {"id": "e", "data": {"a": 1}, "extra": True}
    assert _envelope_text(envelope, envelope["data"], dumps(envelope["data"])) is envelope


def test_new_ids_are_canonical_random_v4_uuids() -> None:
    ids = [new_id() for _ in range(600)] + _fresh(300)
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
    # every variant digit occurs (the two variant bits are fixed, the next two random)
    assert {value[19] for value in ids} == set("89ab")
