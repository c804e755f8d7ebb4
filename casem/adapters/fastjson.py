"""JSON on the hot paths (every intake, case row and event crosses several of them), by orjson, to the same data.

The standard library's module spends most of its time outside its C core: per call set-up, a Python callback for
each datetime, `\\uXXXX` escapes it then has to undo. orjson does the same work in one pass, several times faster.
It is stricter, though: it refuses what the standard library takes (NaN and Infinity literals, lone surrogates,
integers beyond 64 bits when writing, non-string keys). Each function here falls back to the standard library in
those cases, so a caller gets what it got before: the same values, the same text, or the same error.

Two differences are left, both about numbers casem's boundaries refuse before they get this far (jsonapi.decode_json
takes no integer beyond 64 bits and no NaN, case_types' number checks no infinity):
- reading, an integer outside -2**63 .. 2**64-1 comes back as the nearest float, not as an int;
- writing, a float NaN or infinity is written as `null` (the standard library writes `NaN`, which no strict reader
  takes and PostgreSQL refuses).

Not for a text that must stay byte for byte what it was (a search document's canonical form, which its checksum is
computed over: orjson spells some floats otherwise, `1e-7` for `1e-07`, the same number). The search document does
use orjson for that text, but only for documents without floats, where the bytes are the same
(casem.adapters.search.document._canonical).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["compact_bytes", "loads", "text"]


def loads(raw: bytes | str) -> Any:
    """json.loads(raw): the same values (but for an integer beyond 64 bits, see above), and for what neither can
    read, the standard library's error."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # What orjson refuses and the standard library may take (NaN, a lone surrogate, a UTF-8 BOM, a number
        # beyond a double's range): its answer, or its error.
        return json.loads(raw)


def compact_bytes(value: Any) -> bytes:
    """json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(): the same data, and the same bytes
    but for some floats' spelling (`1e-7` for `1e-07`) and a NaN (see above)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def text(value: Any, default: Any = None) -> str:
    """`value` as JSON text for an engine that parses it (PostgreSQL's JSONB, a search engine's request): the same
    data as json.dumps(value, default=default), not the same spacing. Dates and datetimes are written as their
    `isoformat()`, as the callers' `default` writes them; the standard library (with `default`) takes what orjson
    refuses."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, default=default)
