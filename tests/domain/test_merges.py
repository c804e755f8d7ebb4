"""Merging duplicates into a primary: the pure rules, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casem.domain.cases import validate_attributes
from casem.domain.errors import InvalidInput
from casem.domain.merges import (
    MAX_ATTRIBUTE_VALUES,
    MAX_DUPLICATES,
    PROVENANCE,
    auto_merge_id,
    copied_content,
    merge_workflow_id,
    new_watchers,
    resolved_reason,
    union_attributes,
    validate_duplicates,
)

POINTER = "/data/attributes/duplicate_ids"


def test_duplicates_are_distinct_in_the_order_given() -> None:
    assert validate_duplicates("p", ["b", "a", "b", "c", "a"], POINTER) == ["b", "a", "c"]
    assert validate_duplicates("p", ("x",), POINTER) == ["x"]
    assert len(validate_duplicates("p", [str(i) for i in range(MAX_DUPLICATES)], POINTER)) == MAX_DUPLICATES


@pytest.mark.parametrize(
    ("duplicates", "detail"),
    [
        ([], "a merge needs at least one duplicate"),
        ([str(i) for i in range(MAX_DUPLICATES + 1)], "101 duplicates; a merge takes at most 100"),
        (["a", "p"], "a case cannot be merged into itself"),
    ],
)
def test_bad_duplicate_lists(duplicates: list[str], detail: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_duplicates("p", duplicates, POINTER)
    assert (raised.value.detail, raised.value.pointer) == (detail, POINTER)


def test_union_keeps_the_primarys_values_first() -> None:
    primary = {"env": ["prod"], "team": ["sre"]}
    duplicate = {"env": ["staging", "prod"], "service": ["web"]}
    assert union_attributes(primary, duplicate) == {"env": ["prod", "staging"], "team": ["sre"], "service": ["web"]}
    assert primary == {"env": ["prod"], "team": ["sre"]}  # inputs are not changed
    assert union_attributes({}, {}) == {}


def test_union_stops_at_the_per_key_limit() -> None:
    primary = {"host": [f"p{i}" for i in range(60)]}
    duplicate = {"host": [f"d{i}" for i in range(60)]}
    merged = union_attributes(primary, duplicate)["host"]
    assert len(merged) == MAX_ATTRIBUTE_VALUES
    assert merged[:60] == primary["host"] and merged[60:] == duplicate["host"][:40]
    validate_attributes({"host": merged})  # still a valid attribute set


attribute_maps = st.dictionaries(
    st.sampled_from(["env", "service", "team", "host"]),
    st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=4, unique=True),
    max_size=4,
)


@given(attribute_maps, attribute_maps)
def test_union_properties(primary: dict[str, list[str]], duplicate: dict[str, list[str]]) -> None:
    merged = union_attributes(primary, duplicate)
    assert set(merged) == set(primary) | set(duplicate)
    for key, values in merged.items():
        assert len(values) == len(set(values))  # no repeats
        assert values[: len(primary.get(key, []))] == primary.get(key, [])  # the primary's come first
        assert set(values) == set(primary.get(key, [])) | set(duplicate.get(key, []))
    assert union_attributes(merged, duplicate) == merged  # merging the same duplicate again changes nothing


def test_new_watchers_are_the_duplicates_others_sorted() -> None:
    assert new_watchers(["a", "b"], ["d", "b", "c", "a", "c"]) == ["c", "d"]
    assert new_watchers([], iter(["z", "y"])) == ["y", "z"]
    assert new_watchers(["a"], ["a"]) == []


WRITTEN = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_copied_cell_names_where_it_was_written() -> None:
    original = {"message": "Rebooted web-1"}
    copied = copied_content(
        original, merge_id="m1", case_id="dup", case_key="SEC-2", cell_id="cell-1", author_id="u1", created_at=WRITTEN
    )
    assert copied == {
        "message": "Rebooted web-1",
        PROVENANCE: {
            "merge_id": "m1",
            "case_id": "dup",
            "case_key": "SEC-2",
            "cell_id": "cell-1",
            "author_id": "u1",
            "created_at": "2030-01-02T03:04:05+00:00",
        },
    }
    assert original == {"message": "Rebooted web-1"}


def test_a_cell_copied_again_keeps_its_first_provenance_and_the_route() -> None:
    first = copied_content(
        {"message": "hi"},
        merge_id="m1",
        case_id="a",
        case_key="SEC-1",
        cell_id="k1",
        author_id="u1",
        created_at=WRITTEN,
    )
    second = copied_content(
        first, merge_id="m2", case_id="b", case_key="SEC-2", cell_id="k2", author_id=None, created_at=datetime.now(UTC)
    )
    third = copied_content(
        second, merge_id="m3", case_id="c", case_key="SEC-3", cell_id="k3", author_id=None, created_at=datetime.now(UTC)
    )
    provenance = third[PROVENANCE]
    assert (provenance["case_id"], provenance["cell_id"], provenance["author_id"]) == ("a", "k1", "u1")
    assert provenance["created_at"] == WRITTEN.isoformat()
    assert provenance["via"] == [{"merge_id": "m2", "case_id": "b"}, {"merge_id": "m3", "case_id": "c"}]
    assert "via" not in first[PROVENANCE]  # earlier copies are not changed


def test_names_and_ids() -> None:
    assert resolved_reason("SEC-1") == "duplicate of SEC-1"
    assert merge_workflow_id("m-1") == "case-merge-m-1"
    merge_id = auto_merge_id("event-1")
    assert merge_id == auto_merge_id("event-1")  # redelivery finds the same merge
    assert merge_id != auto_merge_id("event-2")
    assert uuid.UUID(merge_id).version == 5
