"""The case document helpers both adapters rely on: checksum, timestamps, word split."""

from __future__ import annotations

import hashlib

import pytest

from casem.adapters.search.document import (
    InvalidDocumentError,
    document_checksum,
    epoch_millis,
    prepare,
    words,
)


def test_checksum_is_sha256_of_the_canonical_json() -> None:
    doc = {"title": "Café", "id": "c1", "attributes": {"z": ["1"], "a": ["2"]}, "closed_at": None}
    canonical = '{"attributes":{"a":["2"],"z":["1"]},"closed_at":null,"id":"c1","title":"Café"}'
    assert document_checksum(doc) == hashlib.sha256(canonical.encode()).hexdigest()


def test_checksum_ignores_key_order_and_its_own_field() -> None:
    a = {"id": "c1", "attributes": {"x": ["1"], "y": ["2"]}, "archived": False}
    b = {"archived": False, "attributes": {"y": ["2"], "x": ["1"]}, "id": "c1", "checksum": "stale"}
    assert document_checksum(a) == document_checksum(b)


@pytest.mark.parametrize(
    "change",
    [{"title": "other"}, {"archived": True}, {"attributes": {"x": ["1", "2"]}}, {"closed_at": "2024-01-01T00:00:00Z"}],
)
def test_checksum_changes_with_any_field(change: dict[str, object]) -> None:
    base = {"id": "c1", "title": "t", "archived": False, "attributes": {"x": ["1"]}, "closed_at": None}
    assert document_checksum(base) != document_checksum({**base, **change})


def test_prepare_stamps_the_checksum_without_touching_the_input() -> None:
    doc = {"id": "c1", "org_id": "o", "key": "P-1", "status": "OPEN", "priority": "P1", "created_at": "2024-01-01"}
    prepared = prepare(doc)
    assert prepared["checksum"] == document_checksum(doc)
    assert "checksum" not in doc


@pytest.mark.parametrize("missing", ["id", "org_id", "key", "status", "priority", "created_at"])
def test_prepare_requires_the_identifying_fields(missing: str) -> None:
    doc = {"id": "c1", "org_id": "o", "key": "P-1", "status": "OPEN", "priority": "P1", "created_at": "2024-01-01"}
    del doc[missing]
    with pytest.raises(InvalidDocumentError, match=missing):
        prepare(doc)


@pytest.mark.parametrize(
    ("value", "millis"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2024-01-01T00:00:00.250Z", 1704067200250),
        ("2024-01-01T00:00:00", 1704067200000),  # naive is UTC
        ("2024-01-01T01:00:00+01:00", 1704067200000),
        (None, None),
        ("", None),
    ],
)
def test_epoch_millis(value: str | None, millis: int | None) -> None:
    assert epoch_millis(value) == millis


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Disk full", ["disk", "full"]),
        ("web-store", ["web", "store"]),
        ("disk_full", ["disk", "full"]),
        ("PROJ-12", ["proj", "12"]),
        ("Café résumé", ["cafe", "resume"]),
        ("!!! ---", []),
    ],
)
def test_words(text: str, expected: list[str]) -> None:
    assert words(text) == expected
