"""Stream the `file` part of a multipart/form-data request body without buffering it.

Starlette's form parser spools uploads to a temporary file first; here python-multipart's push
parser is fed the request stream chunk by chunk and the file part's bytes are yielded as they
arrive, so an upload flows straight into blob storage with memory bounded by one chunk.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.multipart import MultipartParser, parse_options_header

from casem.domain.errors import InvalidInput


@dataclass
class FilePart:
    filename: str
    content_type: str
    chunks: AsyncIterator[bytes]


class _Events:
    """The parser's callbacks, queued as ("headers", dict) | ("data", bytes) | ("end", None)."""

    def __init__(self) -> None:
        self.queue: deque[tuple[str, object]] = deque()
        self._headers: dict[str, str] = {}
        self._field = b""
        self._value = b""

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._add("_field", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_value", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": lambda: self.queue.append(("headers", dict(self._headers))),
            "on_part_data": lambda d, s, e: self.queue.append(("data", bytes(d[s:e]))),
            "on_part_end": lambda: self.queue.append(("end", None)),
        }

    def _begin(self) -> None:
        self._headers = {}

    def _add(self, attr: str, data: bytes) -> None:
        setattr(self, attr, getattr(self, attr) + data)

    def _header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = self._value.decode("utf-8", "replace")
        self._field = b""
        self._value = b""


async def file_part(content_type_header: str | None, body: AsyncIterator[bytes], field: str = "file") -> FilePart:
    """The first part named `field`; its `chunks` must be consumed before the request ends."""
    ctype, params = parse_options_header(content_type_header or "")
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise InvalidInput("upload with Content-Type multipart/form-data and a `file` part", "/file")
    events = _Events()
    parser = MultipartParser(boundary, events.callbacks())  # type: ignore[arg-type]
    finished = False

    async def next_event() -> tuple[str, object] | None:
        nonlocal finished
        while not events.queue:
            if finished:
                return None
            try:
                chunk = await anext(body)
            except StopAsyncIteration:
                finished = True
                parser.finalize()
                continue
            parser.write(chunk)
        return events.queue.popleft()

    # Skip parts until the wanted one's headers: other form fields are ignored.
    while True:
        event = await next_event()
        if event is None:
            raise InvalidInput(f"the multipart body has no `{field}` part", "/file")
        kind, value = event
        if kind != "headers":
            continue
        assert isinstance(value, dict)
        _disp, disp_params = parse_options_header(value.get("content-disposition", ""))
        if disp_params.get(b"name", b"").decode() == field:
            filename = disp_params.get(b"filename", b"").decode("utf-8", "replace")
            part_type = value.get("content-type", "application/octet-stream")
            break

    async def chunks() -> AsyncIterator[bytes]:
        while True:
            event = await next_event()
            if event is None or event[0] == "end":
                return
            if event[0] == "data":
                data = event[1]
                assert isinstance(data, bytes)
                yield data

    return FilePart(filename=filename, content_type=part_type, chunks=chunks())
