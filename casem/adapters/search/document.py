"""The case document that the search port indexes, its checksum, and what both adapters derive
from it for matching and sorting (so the embedded and the OpenSearch adapter agree exactly)."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypedDict

import orjson

from casem.adapters import fastjson

STATUSES = ("OPEN", "IN_PROGRESS", "CLOSED")
PRIORITIES = ("NOT_DEFINED", "P1", "P2", "P3", "P4", "P5")

# Sort ranks. Status follows the workflow. Priority ascending puts the most urgent first (P1..P5)
# and cases without a priority last, as Datadog's case list does when sorted by priority.
STATUS_RANK = {s: i for i, s in enumerate(STATUSES)}
PRIORITY_RANK = {"P1": 1, "P2": 2, "P3": 3, "P4": 4, "P5": 5, "NOT_DEFINED": 6}


class CustomAttribute(TypedDict):
    type: str
    is_multi: bool
    value: Any


class CaseDocument(TypedDict, total=False):
    id: str
    org_id: str
    key: str
    title: str
    description: str
    status: str
    priority: str
    project_id: str
    project_key: str
    type_id: str
    type_name: str
    assignee_id: str | None
    assignee_handle: str | None
    created_by_id: str
    attributes: dict[str, list[str]]
    custom_attributes: dict[str, CustomAttribute]
    comments: list[str]
    archived: bool
    created_at: str
    modified_at: str
    closed_at: str | None
    checksum: str
    # The case's revision when the document was built: a write never replaces a document of a higher one.
    # Not part of the document's content (nor of its checksum); not stored in the returned document.
    version: int


REQUIRED_FIELDS = ("id", "org_id", "key", "status", "priority", "created_at")
VERSION = "version"


def content(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The document as stored and returned: without its version."""
    return {k: v for k, v in doc.items() if k != VERSION}


def version_of(doc: Mapping[str, Any]) -> int | None:
    value = doc.get(VERSION)
    return int(value) if value is not None else None


class InvalidDocumentError(ValueError):
    pass


def document_checksum(doc: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of every field but `checksum` itself.

    Canonical: keys sorted at every level, no insignificant whitespace, UTF-8. Two documents
    that are equal as JSON values have the same checksum whatever their key order, so the
    database side (`casem search verify`) can compute it from its own rows and compare.
    """
    return hashlib.sha256(_canonical(doc).encode("utf-8")).hexdigest()


def _canonical(doc: Mapping[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k not in ("checksum", VERSION)}
    if not _holds_other_than_text_and_integers(body):
        # orjson writes this very text, several times faster (every created case's document is stamped), for
        # anything but floats, which it may spell otherwise (`1e-7` for `1e-07`): the checksum must not change.
        try:
            return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()
        except orjson.JSONEncodeError:
            pass  # an integer beyond 64 bits, a lone surrogate: the standard library's text, or its error
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


_TEXT_AND_INTEGERS = frozenset({str, int, bool, type(None)})


def _holds_other_than_text_and_integers(value: Any) -> bool:
    """Whether anything in `value` (through dicts and lists) is other than a string, an integer, a boolean or None:
    a float, or a type only the standard library's encoder decides about."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:
            pending.extend(item.values())
        elif kind is list:
            pending.extend(item)
        elif kind not in _TEXT_AND_INTEGERS:
            return True
    return False


def prepare(doc: Mapping[str, Any]) -> CaseDocument:
    """Validate a document and stamp its checksum: what the adapters store and return (the fields of its stamp)."""
    return stamp(doc).fields


def validate(doc: Mapping[str, Any]) -> None:
    """What every document must have: its ids, key, dates, and a known status and priority. Raises
    InvalidDocumentError otherwise."""
    missing = [f for f in REQUIRED_FIELDS if not doc.get(f)]
    if missing:
        raise InvalidDocumentError(f"case document {doc.get('id')!r} lacks {', '.join(missing)}")
    if doc["status"] not in STATUS_RANK:
        raise InvalidDocumentError(f"case document {doc['id']!r}: unknown status {doc['status']!r}")
    if doc["priority"] not in PRIORITY_RANK:
        raise InvalidDocumentError(f"case document {doc['id']!r}: unknown priority {doc['priority']!r}")
    for name, values in (doc.get("attributes") or {}).items():
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidDocumentError(f"case document {doc['id']!r}: attribute {name!r} is not a list of str")


@dataclass(frozen=True, slots=True)
class StampedDocument:
    """A document validated and stamped with its checksum, and its content (as stored and returned: the checksum in,
    the version out) already encoded as JSON, by whoever built it. The adapters take it as it comes: no second
    checksum, and `text` is what the embedded index stores and what OpenSearch gets as the source, not encoded again.
    A plain document handed to `bulk_upsert` is stamped there; IngestCases stamps the documents of the cases it
    creates, and case-indexer writes them without encoding them a second and a third time."""

    fields: CaseDocument  # the content's fields and the version
    text: str

    @property
    def version(self) -> int | None:
        return version_of(self.fields)


def stamp(doc: Mapping[str, Any]) -> StampedDocument:
    """The document validated and stamped; its text is the canonical JSON its checksum is computed over, with the
    checksum added at the end: one encoding for both."""
    validate(doc)
    canonical = _canonical(doc)
    checksum = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    fields = dict(doc)
    fields["checksum"] = checksum
    # `canonical` is a JSON object with at least the required fields: its closing brace is its last character.
    return StampedDocument(fields, f'{canonical[:-1]},"checksum":"{checksum}"}}')  # type: ignore[arg-type]


def stamped(text: str, version: int | None) -> StampedDocument:
    """A stamped document from its text and version, as they crossed a process boundary. Validated again, and its
    checksum must be there: a stamp is trusted (`casem search verify` compares it with the database), not made up."""
    fields = fastjson.loads(text)
    if not isinstance(fields, dict):
        raise InvalidDocumentError("a stamped case document is a JSON object")
    validate(fields)
    if not isinstance(fields.get("checksum"), str):
        raise InvalidDocumentError(f"case document {fields['id']!r} is not stamped: its checksum is missing")
    if VERSION in fields:
        raise InvalidDocumentError(f"case document {fields['id']!r}: its text holds a version (it travels beside it)")
    if version is not None:
        fields[VERSION] = version
    return StampedDocument(fields, text)  # type: ignore[arg-type]


def stamped_all(docs: Iterable[Mapping[str, Any] | StampedDocument]) -> list[StampedDocument]:
    """What `bulk_upsert` writes: the stamped documents as they are, the others stamped now."""
    return [doc if isinstance(doc, StampedDocument) else stamp(doc) for doc in docs]


def epoch_millis(value: str | None) -> int | None:
    """An ISO 8601 timestamp as epoch milliseconds (naive ones are UTC): sortable everywhere."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def fold(text: str) -> str:
    """Case-insensitive form for exact-value comparisons (keys, handles, attributes): plain
    lower-casing, what OpenSearch's lowercase normalizer does, not casefold (ß stays ß)."""
    return text.lower()


# Words are runs of letters and digits: the same split as the OpenSearch analyzer's pattern
# tokenizer ([^\p{L}\p{N}]+) and SQLite FTS5's unicode61 tokenizer.
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """Free-text tokens: lower-cased, diacritics removed."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return [w.lower() for w in _WORD.findall(stripped)]


ATTR_SEPARATOR = "\x1f"  # between an attribute's key and value in one indexed term: never typed


def attribute_pairs(doc: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(k, v) for k, values in sorted((doc.get("attributes") or {}).items()) for v in values]
