"""The blob storage port: content-addressed by caller-chosen keys, written as a stream.

`put` consumes an async byte stream, enforces a size limit while reading (so an oversized upload
is never fully buffered nor left behind), computes sha256 on the way, and publishes the blob
atomically: a reader sees the whole blob or none of it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

CHUNK = 256 * 1024
# Keys are paths of safe segments: no "..", no leading slash, nothing a filesystem would interpret.
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class BlobNotFound(KeyError):
    pass


class BlobTooLarge(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"blob exceeds the {limit} byte limit")
        self.limit = limit


class InvalidBlobKey(ValueError):
    pass


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key.split("/"):
        raise InvalidBlobKey(f"invalid blob key {key!r}")
    return key


@dataclass(frozen=True)
class StoredBlob:
    """What `put` wrote: measured from the stream itself, not trusted from the client."""

    key: str
    size: int
    sha256: str
    head: bytes  # the first bytes, for content sniffing without a second read


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    modified_at: datetime


class BlobStore(Protocol):
    async def put(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str, max_bytes: int | None = None
    ) -> StoredBlob: ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """The blob's bytes in chunks; raises BlobNotFound on first iteration when missing."""
        ...

    async def stat(self, key: str) -> BlobInfo | None: ...

    async def delete(self, key: str) -> bool:
        """Remove the blob; False when it was not there (deleting twice is not an error)."""
        ...

    async def list(self, prefix: str = "") -> list[BlobInfo]: ...


HEAD_BYTES = 4096
