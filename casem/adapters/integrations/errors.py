"""How a remote system's refusal reaches casem: an `OutboundError` plus the remote's own messages.

The reason is casem's sentence (`OutboundError.from_response`). `details` adds what the remote said, but
only from its documented error shape (Jira's ErrorCollection `{"errorMessages": [...], "errors": {field:
message}}`, ServiceNow's `{"error": {"message", "detail"}, "status": "failure"}`), as short plain strings:
a user creating an issue needs to read "project: valid project is required" to fix the request, while an
arbitrary body (an HTML page of a host that is not the remote) is never copied.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from casem.adapters.http import OutboundError

MAX_DETAILS = 10
MAX_DETAIL_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _clean(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    text = _CONTROL.sub(" ", text).strip()
    return text[:MAX_DETAIL_CHARS] if text else None


def remote_details(system: str, response: httpx.Response) -> list[str]:
    """The remote's error messages, when its answer has the documented error shape; [] otherwise."""
    if "json" not in response.headers.get("content-type", ""):
        return []
    try:
        body = json.loads(response.content[:65536])
    except (ValueError, UnicodeDecodeError):
        return []
    found: list[str | None] = []
    if not isinstance(body, dict):
        return []
    if system == "jira":
        messages = body.get("errorMessages")
        if isinstance(messages, list):
            found.extend(_clean(m) for m in messages)
        errors = body.get("errors")
        if isinstance(errors, dict):
            found.extend(_clean(f"{k}: {v}") for k, v in errors.items() if isinstance(k, str) and isinstance(v, str))
    else:
        error = body.get("error")
        if isinstance(error, dict):
            found.extend(_clean(error.get(k)) for k in ("message", "detail"))
    return [d for d in found if d][:MAX_DETAILS]


class RemoteError(OutboundError):
    """A call to Jira or ServiceNow that failed; `details` are the remote's own messages (may be empty)."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        transient: bool,
        retry_after: float | None = None,
        details: list[str] | None = None,
        system: str = "",
    ) -> None:
        super().__init__(reason, status=status, transient=transient, retry_after=retry_after)
        self.details = details or []
        self.system = system

    @property
    def explanation(self) -> str:
        """One sentence for the timeline and the API's answer: casem's reason, then what the remote said."""
        if not self.details:
            return self.reason
        return f"{self.reason}; the remote said: {'; '.join(self.details)}"

    @classmethod
    def of_response(cls, system: str, response: httpx.Response) -> RemoteError:
        base = OutboundError.from_response(response)
        return cls(
            base.reason,
            status=base.status,
            transient=base.transient,
            retry_after=base.retry_after,
            details=remote_details(system, response),
            system=system,
        )

    @classmethod
    def of_exception(cls, system: str, exc: BaseException) -> RemoteError:
        if isinstance(exc, RemoteError):
            return exc
        base = OutboundError.from_exception(exc)
        return cls(
            base.reason, status=base.status, transient=base.transient, retry_after=base.retry_after, system=system
        )

    @classmethod
    def unexpected(cls, system: str, what: str) -> RemoteError:
        """A 2xx answer that does not have the documented shape."""
        return cls(f"the remote answered with an unexpected document ({what})", transient=False, system=system)
