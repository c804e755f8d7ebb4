"""The case document helpers both adapters rely on: checksum, timestamps, word split."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casem.adapters.search.document import (
    InvalidDocumentError,
    _canonical,
    content,
    document_checksum,
    epoch_millis,
    prepare,
    stamp,
    stamped,
    words,
)
from casem.adapters.search.opensearch import indexed_text, projection


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


def test_a_stamp_is_the_prepared_document_and_its_content_as_json() -> None:
    doc = {"id": "c1", "org_id": "o", "key": "P-1", "status": "OPEN", "priority": "P1", "created_at": "2024-01-01"}
    sent = stamp({**doc, "title": "Café", "version": 7})
    assert sent.fields == prepare({**doc, "title": "Café", "version": 7})
    assert sent.version == 7
    assert json.loads(sent.text) == content(sent.fields)  # the version travels beside the text, not in it
    assert "Café" in sent.text  # UTF-8 as it is, not \u escapes: what the index stores is the text itself
    received = stamped(sent.text, 7)
    assert received == sent


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("[1, 2]", "JSON object"),
        ('{"id": "c1"}', "lacks org_id"),
        ('{"id":"c1","org_id":"o","key":"P-1","status":"OPEN","priority":"P1","created_at":"2024-01-01"}', "checksum"),
        (
            '{"id":"c1","org_id":"o","key":"P-1","status":"OPEN","priority":"P1","created_at":"2024-01-01",'
            '"checksum":"x","version":3}',
            "holds a version",
        ),
    ],
)
def test_a_received_stamp_is_checked(text: str, refusal: str) -> None:
    with pytest.raises(InvalidDocumentError, match=refusal):
        stamped(text, 1)


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


def test_opensearch_gets_the_stamped_text_as_the_source_spliced_into_the_projection() -> None:
    doc = {
        "id": "c1",
        "org_id": "o",
        "key": "P-1",
        "status": "OPEN",
        "priority": "P1",
        "created_at": "2024-01-01T00:00:00Z",
        "attributes": {"service": ["web"]},
        "title": 'Ünïcode "quoted" {braces}',
    }
    sent = stamp({**doc, "version": 2})
    line = indexed_text(sent)
    assert "\n" not in line  # one line of the bulk request's ndjson
    assert json.loads(line) == {**projection(sent.fields), "source": content(sent.fields)}


# --- the canonical text the checksum is computed over: the standard library's, whoever writes it ------------------


def _standard_canonical(doc: dict) -> str:  # type: ignore[type-arg]
    body = {k: v for k, v in doc.items() if k not in ("checksum", "version")}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


_texts = st.text(st.characters(codec="utf-8"), max_size=8)  # any character UTF-8 can carry, controls and emoji too
_plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | _texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_texts, inner, max_size=3),
    max_leaves=10,
)


@given(extra=st.dictionaries(_texts, _plain_values, max_size=6))
def test_canonical_text_is_the_standard_librarys_without_floats(extra: dict) -> None:  # type: ignore[type-arg]
    doc = {**extra, "checksum": "x"}
    assert _canonical(doc) == _standard_canonical(doc)


@given(
    extra=st.dictionaries(
        _texts,
        st.recursive(
            st.floats(allow_nan=False, allow_infinity=False) | _plain_values,
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_texts, inner, max_size=3),
            max_leaves=10,
        ),
        max_size=6,
    )
)
def test_canonical_text_is_the_standard_librarys_with_floats(extra: dict) -> None:  # type: ignore[type-arg]
    assert _canonical(extra) == _standard_canonical(extra)


@pytest.mark.parametrize(
    "value", [1e-07, 0.00001, 2.5, 2**70, {"deep": [1, [2, {"x": 3e-05}]]}, (1, 2), {1: "integer key"}]
)
def test_canonical_text_of_what_orjson_would_write_otherwise_or_refuses(value: object) -> None:
    doc = {"id": "c1", "value": value}
    try:
        expected = _standard_canonical(doc)
    except TypeError as error:
        with pytest.raises(type(error)):
            _canonical(doc)
        return
    assert _canonical(doc) == expected
