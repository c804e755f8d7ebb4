"""One contract for every blob store: the local filesystem, and S3 through moto's real HTTP server."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from casem.adapters.blobs import BlobNotFound, BlobStore, BlobTooLarge, InvalidBlobKey, open_blob_store
from casem.adapters.blobs.filesystem import FilesystemBlobStore
from casem.adapters.blobs.s3 import S3BlobStore
from tests.support.ports import free_port


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    # moto's server mode is a real HTTP S3 on loopback: boto3 speaks the wire protocol to it.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["filesystem", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "filesystem":
        return FilesystemBlobStore(tmp_path / "blobs")
    endpoint = request.getfixturevalue("moto_endpoint")
    # S3's minimum part size, like moto enforces: the 11 MiB round trip below is a 3-part upload.
    s3 = S3BlobStore(f"b-{uuid.uuid4().hex[:12]}", prefix="tenant-a", endpoint_url=endpoint, part_size=5 * 1024 * 1024)
    await s3.ensure_bucket()
    return s3


async def stream(data: bytes, chunk: int = 10_000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), chunk):
        yield data[i : i + chunk]


async def read_all(store: BlobStore, key: str) -> bytes:
    return b"".join([c async for c in store.read(key)])


async def test_put_measures_and_round_trips(store: BlobStore) -> None:
    data = os.urandom(11 * 1024 * 1024 + 1)  # three multipart parts on S3, many chunks on disk
    stored = await store.put("org/case/a1", stream(data, 1024 * 1024), content_type="application/octet-stream")
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.head == data[:4096]
    assert await read_all(store, "org/case/a1") == data
    info = await store.stat("org/case/a1")
    assert info is not None and info.size == len(data)


async def test_small_blob_and_empty_blob(store: BlobStore) -> None:
    await store.put("k/small", stream(b"hello"), content_type="text/plain")
    await store.put("k/empty", stream(b""), content_type="text/plain")
    assert await read_all(store, "k/small") == b"hello"
    assert await read_all(store, "k/empty") == b""


async def test_overwrite_replaces_whole_blob(store: BlobStore) -> None:
    await store.put("k/x", stream(b"first version, long"), content_type="text/plain")
    await store.put("k/x", stream(b"second"), content_type="text/plain")
    assert await read_all(store, "k/x") == b"second"


async def test_size_limit_rejects_and_leaves_nothing(store: BlobStore) -> None:
    with pytest.raises(BlobTooLarge):
        await store.put("k/big", stream(b"x" * 150_000), content_type="text/plain", max_bytes=100_000)
    assert await store.stat("k/big") is None
    assert [b.key for b in await store.list("k/")] == []


async def test_missing_blob(store: BlobStore) -> None:
    assert await store.stat("nope/x") is None
    with pytest.raises(BlobNotFound):
        await read_all(store, "nope/x")
    assert await store.delete("nope/x") is False


async def test_delete_and_list_by_prefix(store: BlobStore) -> None:
    for key in ("o1/c1/a", "o1/c1/b", "o1/c2/a", "o2/c9/a"):
        await store.put(key, stream(key.encode()), content_type="text/plain")
    assert [b.key for b in await store.list("o1/")] == ["o1/c1/a", "o1/c1/b", "o1/c2/a"]
    assert await store.delete("o1/c1/a") is True
    assert await store.delete("o1/c1/a") is False
    assert [b.key for b in await store.list("o1/c1/")] == ["o1/c1/b"]
    assert len(await store.list()) == 3


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a//b", "a/../b", "", "a/.hidden"])
async def test_unsafe_keys_are_refused(store: BlobStore, key: str) -> None:
    with pytest.raises(InvalidBlobKey):
        await store.put(key, stream(b"x"), content_type="text/plain")


def test_open_blob_store_from_url(tmp_path: Path) -> None:
    fs = open_blob_store(f"file://{tmp_path}/blobs")
    assert isinstance(fs, FilesystemBlobStore) and fs.root == (tmp_path / "blobs").resolve()
    s3 = open_blob_store("s3://bucket-x/some/prefix?endpoint_url=http://127.0.0.1:9&region=eu-west-1")
    assert isinstance(s3, S3BlobStore)
    assert (s3.bucket, s3.prefix, s3.client.meta.region_name) == ("bucket-x", "some/prefix/", "eu-west-1")
