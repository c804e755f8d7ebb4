"""The request boundary of case-api: what a request may be before any view reads it.

`BodyLimit` is an ASGI middleware that bounds request bodies while they stream in: a declared
Content-Length over the limit is answered 413 before a byte of the body is read, and a body that
grows past the limit as it arrives (chunked, or lying about its length) stops the view that reads it
with `TooLarge`, which the app answers 413 too. So a 200 MB body is never held in memory to be
refused. Attachment uploads get their file limit plus room for the multipart framing; every other
route takes JSON:API documents of at most `MAX_BODY_BYTES`.

A body that stalls (no bytes for `BODY_IDLE_TIMEOUT_S`, CASEM_HTTP_BODY_TIMEOUT_S) stops its view
with `RequestTimeout`, answered 408: a client cannot hold a request open by sending nothing.

It also refuses, with a 400, a path or query string holding a NUL character: no database stores one,
and PostgreSQL fails on it.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from casem.domain.errors import TooLarge
from casem.services.case_api.jsonapi import MAX_BODY_BYTES, error_response

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]

MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around an uploaded file
BODY_IDLE_TIMEOUT_S = float(os.environ.get("CASEM_HTTP_BODY_TIMEOUT_S", "30"))


class RequestTimeout(Exception):  # noqa: N818 - reads as "raise RequestTimeout(...)"
    """The client stopped sending its body."""


_UPLOAD = re.compile(r"^/api/v2/cases/[^/]+/attachments/?$")


def too_large(limit: int) -> TooLarge:
    return TooLarge(f"the request body is larger than the {limit} byte limit of this route", limit, "")


def attachment_limit(scope: Scope) -> int:
    from casem.app.attachments.service import AttachmentLimits

    app = scope.get("app")
    limits = getattr(getattr(app, "state", None), "attachment_limits", None) or AttachmentLimits()
    return limits.max_bytes + MULTIPART_OVERHEAD


def body_limit(scope: Scope) -> int:
    """The largest body the route of this request takes."""
    if scope.get("method") == "POST" and _UPLOAD.match(scope.get("path", "")):
        return attachment_limit(scope)
    return MAX_BODY_BYTES


class BodyLimit:
    def __init__(
        self,
        app: ASGIApp,
        limit_for: Callable[[Scope], int] = body_limit,
        idle_timeout_s: float | None = None,
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.idle_timeout_s = idle_timeout_s

    async def __call__(self, scope: Scope, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _holds_nul(scope):
            await error_response(400, "Bad Request", "the request path or query string holds a NUL character (%00)")(
                scope, receive, send
            )
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _answer_too_large(limit, scope, receive, send)
            return
        received = 0
        body_done = False
        idle_timeout_s = BODY_IDLE_TIMEOUT_S if self.idle_timeout_s is None else self.idle_timeout_s

        async def limited_receive() -> dict[str, Any]:
            nonlocal received, body_done
            if body_done:  # after the body, receive() only waits for a disconnect: no deadline there
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), idle_timeout_s)
            except TimeoutError:
                raise RequestTimeout(f"the request body stalled: nothing arrived for {idle_timeout_s:g} s") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        await self.app(scope, limited_receive, send)


async def _answer_too_large(limit: int, scope: Scope, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    error = too_large(limit)
    # Connection: close, so the server does not read the rest of the body to reuse the connection.
    response = error_response(413, "Payload Too Large", error.detail, "", headers={"Connection": "close"})
    await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None  # the server refuses malformed lengths itself
    return None


def _holds_nul(scope: Scope) -> bool:
    raw_path = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "surrogateescape")
    return b"\x00" in unquote_to_bytes(raw_path) or b"\x00" in unquote_to_bytes(scope.get("query_string", b""))
