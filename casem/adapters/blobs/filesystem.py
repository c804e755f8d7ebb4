"""Blobs as files under one directory (embedded mode: ./var/blobs)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from casem.adapters.blobs.port import CHUNK, HEAD_BYTES, BlobInfo, BlobNotFound, BlobTooLarge, StoredBlob, check_key
from casem.adapters.private_files import open_private, private_directory

_PARTIAL = ".partial-"  # in-flight uploads; never listed, never read


class FilesystemBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = private_directory(root.resolve())

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str, max_bytes: int | None = None
    ) -> StoredBlob:
        path = self._path(key)
        private_directory(path.parent)
        # Write beside the target then rename: the rename is atomic, so readers never see half a file.
        partial = path.with_name(f"{_PARTIAL}{uuid.uuid4().hex}")
        digest = hashlib.sha256()
        size = 0
        head = b""
        try:
            with open_private(partial) as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise BlobTooLarge(max_bytes)
                    if len(head) < HEAD_BYTES:
                        head += chunk[: HEAD_BYTES - len(head)]
                    digest.update(chunk)
                    await asyncio.to_thread(out.write, chunk)
                await asyncio.to_thread(os.fsync, out.fileno())
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return StoredBlob(key=key, size=size, sha256=digest.hexdigest(), head=head)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed in the finally below
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()

    async def stat(self, key: str) -> BlobInfo | None:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        return BlobInfo(key=key, size=st.st_size, modified_at=datetime.fromtimestamp(st.st_mtime, UTC))

    async def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
            return True
        except FileNotFoundError:
            return False

    async def list(self, prefix: str = "") -> list[BlobInfo]:
        def scan() -> list[BlobInfo]:
            found = []
            for dirpath, _dirs, files in os.walk(self.root):
                for name in files:
                    if name.startswith(_PARTIAL):
                        continue
                    full = Path(dirpath) / name
                    key = full.relative_to(self.root).as_posix()
                    if key.startswith(prefix):
                        st = full.stat()
                        found.append(BlobInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)))
            return sorted(found, key=lambda b: b.key)

        return await asyncio.to_thread(scan)
