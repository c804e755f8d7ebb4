"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW...) through boto3.

boto3 is synchronous: every call runs in a worker thread. Uploads stream as a multipart upload
(parts of PART_SIZE, S3's minimum being 5 MiB), so memory stays bounded by one part; a small blob
is a single PUT. An upload over the size limit is aborted, leaving nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from casem.adapters.blobs.port import CHUNK, HEAD_BYTES, BlobInfo, BlobNotFound, BlobTooLarge, StoredBlob, check_key

PART_SIZE = 8 * 1024 * 1024


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}


class S3BlobStore:
    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region_name: str = "us-east-1",
        client: Any | None = None,
        part_size: int = PART_SIZE,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.part_size = part_size
        self.client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region_name,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, s3={"addressing_style": "path"}),
        )

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def ensure_bucket(self) -> None:
        try:
            await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)
        except ClientError:
            await asyncio.to_thread(self.client.create_bucket, Bucket=self.bucket)

    async def put(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str, max_bytes: int | None = None
    ) -> StoredBlob:
        s3_key = self._key(key)
        digest = hashlib.sha256()
        size = 0
        head = b""
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []

        async def flush_part() -> None:
            nonlocal upload_id
            if upload_id is None:
                created = await asyncio.to_thread(
                    self.client.create_multipart_upload, Bucket=self.bucket, Key=s3_key, ContentType=content_type
                )
                upload_id = created["UploadId"]
            number = len(parts) + 1
            body = bytes(buffer)
            buffer.clear()
            answer = await asyncio.to_thread(
                self.client.upload_part,
                Bucket=self.bucket,
                Key=s3_key,
                UploadId=upload_id,
                PartNumber=number,
                Body=body,
            )
            parts.append({"PartNumber": number, "ETag": answer["ETag"]})

        try:
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise BlobTooLarge(max_bytes)
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                digest.update(chunk)
                buffer += chunk
                if len(buffer) >= self.part_size:
                    await flush_part()
            if upload_id is None:
                await asyncio.to_thread(
                    self.client.put_object,
                    Bucket=self.bucket,
                    Key=s3_key,
                    Body=bytes(buffer),
                    ContentType=content_type,
                )
            else:
                if buffer:
                    await flush_part()
                await asyncio.to_thread(
                    self.client.complete_multipart_upload,
                    Bucket=self.bucket,
                    Key=s3_key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            if upload_id is not None:
                await asyncio.to_thread(
                    self.client.abort_multipart_upload, Bucket=self.bucket, Key=s3_key, UploadId=upload_id
                )
            raise
        return StoredBlob(key=key, size=size, sha256=digest.hexdigest(), head=head)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        try:
            answer = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _missing(exc):
                raise BlobNotFound(key) from None
            raise
        body = answer["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK):
                yield chunk
        finally:
            body.close()

    async def stat(self, key: str) -> BlobInfo | None:
        try:
            answer = await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return BlobInfo(key=key, size=answer["ContentLength"], modified_at=answer["LastModified"])

    async def delete(self, key: str) -> bool:
        # S3's DELETE succeeds on a missing key: ask first so the caller learns whether it was there.
        existed = await self.stat(key) is not None
        if existed:
            await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self._key(key))
        return existed

    async def list(self, prefix: str = "") -> list[BlobInfo]:
        def scan() -> list[BlobInfo]:
            found = []
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    found.append(
                        BlobInfo(
                            key=item["Key"][len(self.prefix) :], size=item["Size"], modified_at=item["LastModified"]
                        )
                    )
            return sorted(found, key=lambda b: b.key)

        return await asyncio.to_thread(scan)
