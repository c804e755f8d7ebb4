"""Outbound failures as casem reports them: a status, a reason casem wrote, and whether retrying can help.

What a receiver answers is never copied into the reason: the reason of a failed delivery is stored on
the endpoint and shown to the tenant, and the receiver may be a host the tenant must not read (an
internal service reached through a misconfigured allow-list, a redirect target). Nor is the URL: Slack
and Teams webhook URLs carry their secret in the path.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus

import httpx


class OutboundError(Exception):
    """A failed outbound call.

    `status` is the receiver's HTTP status (None when there was no answer), `reason` a sentence casem
    wrote (safe to store and show to the tenant), `transient` whether the same call may succeed later
    (429, 408, 5xx, connection failures and timeouts) as opposed to a permanent refusal (other 4xx, a
    refused destination, a redirect not followed), and `retry_after` the receiver's Retry-After in
    seconds when it sent one (callers cap it to their own back-off ceiling).
    """

    def __init__(
        self, reason: str, *, status: int | None = None, transient: bool, retry_after: float | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.transient = transient
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.reason!r}, status={self.status!r}, "
            f"transient={self.transient!r}, retry_after={self.retry_after!r})"
        )

    @classmethod
    def from_response(cls, response: httpx.Response) -> OutboundError:
        """The error for a non-2xx answer, built from its status and Retry-After header only."""
        status = response.status_code
        if 200 <= status < 300:
            raise ValueError(f"HTTP {status} is a success, not an outbound error")
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        transient = status in (408, 429) or status >= 500
        label = f"HTTP {status} {_phrase(status)}".rstrip()
        if status == 429:
            meaning = "the receiver is rate limiting casem"
        elif status >= 500:
            meaning = "the receiver failed to handle the request"
        elif status == 408:
            meaning = "the receiver timed out reading the request"
        elif 300 <= status < 400:
            meaning = "the receiver answered with a redirect, which casem does not follow; use the final URL"
        elif status in (401, 403):
            meaning = "the receiver refused casem's credentials"
        elif status in (404, 410):
            meaning = "the receiver has no such endpoint; check the URL"
        elif status < 200:
            meaning = "the receiver answered with an unexpected interim status"
        else:
            meaning = "the receiver rejected the request"
        reason = f"{label}: {meaning}"
        if retry_after is not None:
            reason += f" (it asked to retry after {retry_after:g} s)"
        return cls(reason, status=status, transient=transient, retry_after=retry_after)

    @classmethod
    def from_exception(cls, exc: BaseException) -> OutboundError:
        """The error for an exception raised by an outbound call (httpx's or the guard's)."""
        if isinstance(exc, OutboundError):
            return exc
        if isinstance(exc, httpx.TooManyRedirects):
            return cls("the receiver redirected too many times", transient=False)
        if isinstance(exc, httpx.ConnectTimeout):
            return cls("timed out connecting to the receiver", transient=True)
        if isinstance(exc, httpx.TimeoutException):
            return cls("timed out waiting for the receiver", transient=True)
        if isinstance(exc, httpx.ConnectError):
            if _caused_by(exc, ssl.SSLCertVerificationError):
                return cls("the receiver's TLS certificate could not be verified for its host name", transient=False)
            return cls("could not connect to the receiver", transient=True)
        if isinstance(exc, httpx.RemoteProtocolError):
            return cls("the receiver closed the connection or broke the HTTP protocol", transient=True)
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return cls("the URL is not an absolute http(s) URL", transient=False)
        if isinstance(exc, httpx.TransportError):
            return cls("a network error interrupted the call", transient=True)
        return cls(f"the call failed unexpectedly ({type(exc).__name__})", transient=False)


def raise_for_response(response: httpx.Response) -> httpx.Response:
    """Return a 2xx answer; raise `OutboundError` for any other."""
    if 200 <= response.status_code < 300:
        return response
    raise OutboundError.from_response(response)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date (RFC 9110 §10.2.3).

    None when absent or unreadable; a date in the past is 0.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT; email.utils answers naive for "-0000"
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
