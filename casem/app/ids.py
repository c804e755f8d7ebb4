"""Identifiers as the API receives them: canonical UUIDs, checked before any query is built."""

from __future__ import annotations

import re
import uuid

from casem.domain.errors import InvalidInput

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def require_uuid(value: str, what: str, pointer: str | None = None) -> str:
    if not UUID_RE.match(value):
        raise InvalidInput(f"{what} {value!r} is not a valid UUID", pointer)
    return str(uuid.UUID(value))
