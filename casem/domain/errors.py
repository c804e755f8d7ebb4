"""Domain errors: raised by the domain and the application services, mapped to HTTP and gRPC at the edge."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain reports to a caller."""


class NotFound(DomainError):  # noqa: N818 - reads as "raise NotFound(...)"
    """`pointer`: the member of the request that named the missing resource (a reference in a body)."""

    def __init__(self, resource: str, ident: str, pointer: str | None = None) -> None:
        super().__init__(f"{resource} {ident} not found")
        self.resource = resource
        self.ident = ident
        self.pointer = pointer


class InvalidInput(DomainError):  # noqa: N818
    """Bad input: `pointer` is the JSON pointer of the offending member of the request."""

    def __init__(self, detail: str, pointer: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.pointer = pointer


class Conflict(DomainError):  # noqa: N818
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TenantUnavailable(DomainError):  # noqa: N818
    def __init__(self, tenant: str, datacenter: str) -> None:
        super().__init__(f"the {tenant} tenant is not available in datacenter {datacenter}")
        self.tenant = tenant
        self.datacenter = datacenter
