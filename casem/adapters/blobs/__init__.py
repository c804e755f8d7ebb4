"""Blob storage for attachments: a port with a local filesystem adapter and an S3-compatible one."""

from casem.adapters.blobs.port import BlobInfo, BlobNotFound, BlobStore, BlobTooLarge, InvalidBlobKey, StoredBlob

__all__ = ["BlobInfo", "BlobNotFound", "BlobStore", "BlobTooLarge", "InvalidBlobKey", "StoredBlob", "open_blob_store"]


def open_blob_store(url: str) -> BlobStore:
    """`file:///abs/dir` (or a bare path) for the embedded store, `s3://bucket/prefix?endpoint_url=...` for S3."""
    from urllib.parse import parse_qs, urlparse

    parsed = urlparse(url)
    if parsed.scheme == "s3":
        from casem.adapters.blobs.s3 import S3BlobStore

        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return S3BlobStore(
            bucket=parsed.netloc,
            prefix=parsed.path.lstrip("/"),
            endpoint_url=query.get("endpoint_url"),
            region_name=query.get("region", "us-east-1"),
        )
    from pathlib import Path

    from casem.adapters.blobs.filesystem import FilesystemBlobStore

    return FilesystemBlobStore(Path(parsed.path if parsed.scheme == "file" else url))
