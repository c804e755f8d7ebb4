"""Stream the `file` part of a multipart/form-data request body without buffering it.

Starlette's form parser spools uploads to a temporary file first; here python-multipart's push
parser is fed the request stream chunk by chunk and the file part's bytes are yielded as they
arrive, so an upload flows straight into blob storage with memory bounded by one chunk.

Anything malformed is a 400 (`InvalidInput` on `/file`), raised from the part's `chunks` when it is
found there: the blob store then discards what it wrote, so a truncated upload (a body that ends
before the part's closing boundary) is never stored as if it were whole.

The file name is read as UTF-8, from RFC 7578's `filename="..."` (browsers send UTF-8 bytes there) or
RFC 5987's `filename*=UTF-8''...` when the client sent that form.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from casem.domain.errors import InvalidInput

POINTER = "/file"


@dataclass
class FilePart:
    filename: str
    content_type: str
    chunks: AsyncIterator[bytes]


class _Events:
    """The parser's callbacks, queued as ("headers", dict) | ("data", bytes) | ("end", None) | ("done", None)."""

    def __init__(self) -> None:
        self.queue: deque[tuple[str, object]] = deque()
        self._headers: dict[bytes, bytes] = {}
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
            "on_end": lambda: self.queue.append(("done", None)),
        }

    def _begin(self) -> None:
        self._headers = {}

    def _add(self, attr: str, data: bytes) -> None:
        # python-multipart bounds a header's size (MultipartParseError past it).
        setattr(self, attr, getattr(self, attr) + data)

    def _header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field = b""
        self._value = b""


def _filename(params: dict[bytes, bytes]) -> str:
    extended = params.get(b"filename*")
    if extended is not None:
        parts = extended.split(b"'", 2)  # charset'language'percent-encoded
        if len(parts) != 3 or parts[0].lower() != b"utf-8":
            raise InvalidInput("filename* must be RFC 5987 UTF-8 (filename*=UTF-8''name)", POINTER)
        raw = unquote_to_bytes(parts[2])
    else:
        raw = params.get(b"filename", b"")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the file name is not valid UTF-8", POINTER) from None


def _options(value: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    ctype, params = parse_options_header(value)
    # python-multipart leaves RFC 5987 parameters out: read `filename*` here.
    for item in value.split(b";")[1:]:
        name, eq, param = item.partition(b"=")
        if eq and name.strip().lower() == b"filename*":
            params[b"filename*"] = param.strip().strip(b'"')
    return ctype, params


async def file_part(content_type_header: str | None, body: AsyncIterator[bytes], field: str = "file") -> FilePart:
    """The first part named `field`; its `chunks` must be consumed before the request ends."""
    ctype, params = parse_options_header((content_type_header or "").encode("latin-1", "replace"))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise InvalidInput("upload with Content-Type multipart/form-data and a `file` part", POINTER)
    if len(boundary) > 70:  # RFC 2046 §5.1.1
        raise InvalidInput("the multipart boundary is longer than 70 characters", POINTER)
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
                continue
            try:
                parser.write(chunk)
            except MultipartParseError:
                raise InvalidInput("the multipart body is malformed", POINTER) from None
        return events.queue.popleft()

    # Skip parts until the wanted one's headers: other form fields are ignored.
    while True:
        event = await next_event()
        if event is None:
            raise InvalidInput(f"the multipart body has no `{field}` part (or it ends early)", POINTER)
        kind, value = event
        if kind != "headers":
            continue
        assert isinstance(value, dict)
        _disp, disp_params = _options(value.get(b"content-disposition", b""))
        if disp_params.get(b"name", b"") == field.encode():
            filename = _filename(disp_params)
            part_type = value.get(b"content-type", b"application/octet-stream").decode("latin-1")
            break

    async def chunks() -> AsyncIterator[bytes]:
        while True:
            event = await next_event()
            if event is None:
                # The body ended inside the file: what arrived is not the whole file.
                raise InvalidInput("the upload ended before the end of the file part (truncated body)", POINTER)
            if event[0] == "end":
                return
            if event[0] == "data":
                data = event[1]
                assert isinstance(data, bytes)
                yield data

    return FilePart(filename=filename, content_type=part_type, chunks=chunks())
