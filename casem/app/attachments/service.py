"""Attachment use cases: upload (streamed to blob storage), list, get, download, delete.

The blob is written before the database row: a crash in between leaves an unreferenced blob,
which the caseworker's orphan sweep removes, never a row pointing at nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import sqlalchemy as sa

from casem.adapters.blobs import BlobStore, BlobTooLarge
from casem.adapters.storage.tables import attachments
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases.service import get_case
from casem.domain.attachments import (
    DEFAULT_CONTENT_TYPES,
    DEFAULT_MAX_BYTES,
    DEFAULT_RETENTION,
    Attachment,
    blob_key,
    validate_filename,
)
from casem.domain.cases import Case
from casem.domain.errors import Conflict, InvalidInput, NotFound, TooLarge


@dataclass(frozen=True)
class AttachmentLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    content_types: frozenset[str] = field(default=DEFAULT_CONTENT_TYPES)
    retention: timedelta = DEFAULT_RETENTION


class LifecycleStarter(Protocol):
    """Hands a new or deleted attachment to the caseworker (Temporal in production)."""

    async def attachment_uploaded(self, tenant: str, attachment: Attachment) -> None: ...

    async def attachment_deleted(self, tenant: str, attachment: Attachment) -> None: ...


def normalize_content_type(value: str | None) -> str:
    return (value or "application/octet-stream").split(";", 1)[0].strip().lower()


async def upload_attachment(
    uow_factory: Callable[[], UnitOfWork],
    blobs: BlobStore,
    *,
    org_id: str,
    actor_id: str | None,
    case_ref: str,
    filename: str,
    content_type: str | None,
    chunks: AsyncIterable[bytes],
    limits: AttachmentLimits = AttachmentLimits(),
) -> Attachment:
    name = validate_filename(filename)
    ctype = normalize_content_type(content_type)
    if ctype not in limits.content_types:
        raise InvalidInput(f"content type {ctype!r} is not accepted for attachments", "/file/content_type")
    async with uow_factory() as uow:
        case = await get_case(uow, org_id, case_ref)
        case_id = case.id
    attachment_id = str(uuid.uuid4())
    key = blob_key(org_id, case_id, attachment_id)
    try:
        stored = await blobs.put(key, chunks, content_type=ctype, max_bytes=limits.max_bytes)
    except BlobTooLarge:
        limit = limits.max_bytes
        raise TooLarge(f"the file is larger than the {limit} byte limit", limit, "/file") from None
    try:
        async with uow_factory() as uow:
            # Deleted meanwhile: don't attach to nothing. Locked: the upload's event keeps the case's order.
            await uow.get(Case, org_id, case_id, resource="case", lock=True)
            attachment = Attachment.upload(
                id=attachment_id,
                org_id=org_id,
                case_id=case_id,
                filename=name,
                content_type=ctype,
                size=stored.size,
                sha256=stored.sha256,
                uploaded_by_id=actor_id,
                retention=limits.retention,
            )
            uow.add(attachment)
            await uow.commit()
    except BaseException:
        await blobs.delete(key)
        raise
    return attachment


async def list_attachments(uow: UnitOfWork, org_id: str, case_ref: str) -> list[Attachment]:
    case = await get_case(uow, org_id, case_ref)
    return await uow.scalars(
        sa.select(Attachment)
        .where(attachments.c.case_id == case.id, attachments.c.deleted_at.is_(None))
        .order_by(attachments.c.created_at, attachments.c.id)
    )


async def get_attachment(uow: UnitOfWork, org_id: str, case_ref: str, attachment_id: str) -> Attachment:
    case = await get_case(uow, org_id, case_ref)
    found = await uow.session.get(Attachment, attachment_id)
    if found is None or found.case_id != case.id or found.org_id != org_id or found.deleted_at is not None:
        raise NotFound("attachment", attachment_id)
    return found


async def open_download(
    uow_factory: Callable[..., UnitOfWork], blobs: BlobStore, org_id: str, case_ref: str, attachment_id: str
) -> tuple[Attachment, AsyncIterator[bytes]]:
    async with uow_factory(read_only=True) as uow:
        attachment = await get_attachment(uow, org_id, case_ref, attachment_id)
    if not attachment.downloadable:
        # Unverified files are never served: the scanner has not cleared them yet.
        raise Conflict(f"attachment {attachment_id} is {attachment.state}, not available for download")
    return attachment, blobs.read(attachment.blob_key)


async def delete_attachment(
    uow_factory: Callable[[], UnitOfWork],
    blobs: BlobStore,
    org_id: str,
    actor_id: str | None,
    case_ref: str,
    attachment_id: str,
) -> Attachment:
    async with uow_factory() as uow:
        attachment = await get_attachment(uow, org_id, case_ref, attachment_id)
        attachment.delete(actor_id, "deleted by user")
        await uow.commit()
    # After the commit: a failure here leaves an unreferenced blob for the orphan sweep.
    await blobs.delete(attachment.blob_key)
    return attachment
