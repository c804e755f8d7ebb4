"""A remote system that refused or failed what casem asked of it, as the use cases report it."""

from __future__ import annotations

from casem.adapters.integrations import RemoteError
from casem.domain.errors import DomainError
from casem.domain.integrations import LABELS


class RemoteFailure(DomainError):
    """`transient`: the remote was unavailable (a later try may work); otherwise it refused the request.

    The HTTP views answer 400 for a refusal (what was asked, or the account's credentials, must change)
    and 502 for an unavailable remote, naming the remote's error either way."""

    def __init__(self, system: str, what: str, error: RemoteError) -> None:
        self.system = system
        self.error = error
        self.transient = error.transient
        self.detail = f"{LABELS[system]} {what}: {error.explanation}"
        super().__init__(self.detail)
