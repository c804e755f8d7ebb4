"""The HTTP server's connection handling: uvicorn's h11 protocol with a deadline on request headers.

uvicorn waits for a request's headers as long as the client likes: nothing limits a connection that
sends no request at all, and its keep-alive timer is cancelled by every byte received, so a client
trickling a header one byte at a time holds a connection forever (slowloris). `HeaderDeadlineProtocol`
gives every connection `HEADER_TIMEOUT_S` (CASEM_HTTP_HEADER_TIMEOUT_S) to complete a request's
headers, from the moment it opens and again after each answer; past it the connection gets a 408 and
is closed. A slow body is the request boundary's job (`BodyLimit`'s idle timeout).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_S = float(os.environ.get("CASEM_HTTP_HEADER_TIMEOUT_S", "10"))


def _timeout_answer(seconds: float) -> bytes:
    body = json.dumps(
        {
            "errors": [
                {
                    "status": "408",
                    "title": "Request Timeout",
                    "detail": f"the request headers did not arrive within {seconds:g} s",
                }
            ]
        }
    ).encode()
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


class HeaderDeadlineProtocol(H11Protocol):
    header_timeout_s: float = HEADER_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_deadline: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _waiting_for_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def handle_events(self) -> None:
        super().handle_events()
        if not self._waiting_for_headers():
            self._disarm()  # a request is in flight: its headers are complete

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._waiting_for_headers() and not self.transport.is_closing():
            self._arm()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self._waiting_for_headers() and not self.transport.is_closing():
            self.transport.write(_timeout_answer(self.header_timeout_s))
            self.transport.close()


def server_config(app: Any, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for case-api: the header deadline protocol, casem's defaults, `options`."""
    return uvicorn.Config(app, host=host, port=port, http=HeaderDeadlineProtocol, **options)
