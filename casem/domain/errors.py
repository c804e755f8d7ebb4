"""Domain errors: raised by the domain and the application services, mapped to HTTP and gRPC at the edge.

Messages and pointers are bounded: they often quote what the caller sent (a value, a member name),
and an error must not echo an unbounded input back (nor let a 1 MB member name become a 1 MB answer).
"""

from __future__ import annotations

MAX_DETAIL = 1000
MAX_POINTER = 300
MAX_IDENT = 200


def bounded(text: str, limit: int = MAX_DETAIL) -> str:
    """`text` cut to `limit` characters, saying so."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class DomainError(Exception):
    """Base of every error the domain reports to a caller."""


class NotFound(DomainError):  # noqa: N818 - reads as "raise NotFound(...)"
    """`pointer`: the member of the request that named the missing resource (a reference in a body)."""

    def __init__(self, resource: str, ident: str, pointer: str | None = None) -> None:
        ident = bounded(str(ident), MAX_IDENT)
        super().__init__(f"{resource} {ident} not found")
        self.resource = resource
        self.ident = ident
        self.pointer = pointer


class InvalidInput(DomainError):  # noqa: N818
    """Bad input: `pointer` is the JSON pointer of the offending member of the request ("" for the whole
    document)."""

    def __init__(self, detail: str, pointer: str | None = None) -> None:
        detail = bounded(detail)
        super().__init__(detail)
        self.detail = detail
        self.pointer = bounded(pointer, MAX_POINTER) if pointer is not None else None


class TooLarge(InvalidInput):
    """Input over a size limit (a body, a file): 413 on HTTP, INVALID_ARGUMENT on gRPC. `limit` in bytes."""

    def __init__(self, detail: str, limit: int, pointer: str | None = None) -> None:
        super().__init__(detail, pointer)
        self.limit = limit


class Conflict(DomainError):  # noqa: N818
    def __init__(self, detail: str) -> None:
        detail = bounded(detail)
        super().__init__(detail)
        self.detail = detail


class TenantUnavailable(DomainError):  # noqa: N818
    def __init__(self, tenant: str, datacenter: str) -> None:
        super().__init__(f"the {tenant} tenant is not available in datacenter {datacenter}")
        self.tenant = tenant
        self.datacenter = datacenter
