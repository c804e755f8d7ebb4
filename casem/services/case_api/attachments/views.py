"""HTTP views for /api/v2/cases/{case_id}/attachments (casem's own, not part of Datadog's API)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from casem.adapters.blobs import BlobStore, open_blob_store
from casem.app.attachments import service
from casem.domain.attachments import Attachment
from casem.services.case_api.attachments.multipart import MEDIA_TYPE, UploadForm, file_part
from casem.services.case_api.attachments.schemas import AttachmentResponse, AttachmentsResponse
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import iso
from casem.services.case_api.openapi import contract
from casem.topology.tenants import CASE_MANAGEMENT

router = APIRouter(prefix="/api/v2/cases/{case_id}/attachments", tags=["attachments"])

DEFAULT_BLOBS = "./var/blobs"


def blob_store(request: Request) -> BlobStore:
    """The app's blob store: set on app.state by the runner (or a test), else CASEM_BLOBS_URL / ./var/blobs."""
    state = request.app.state
    if getattr(state, "blobs", None) is None:
        state.blobs = open_blob_store(os.environ.get("CASEM_BLOBS_URL", DEFAULT_BLOBS))
    return state.blobs


def limits(request: Request) -> service.AttachmentLimits:
    return getattr(request.app.state, "attachment_limits", None) or service.AttachmentLimits()


def lifecycle(request: Request) -> service.LifecycleStarter | None:
    # None when no caseworker is wired: uploads then wait in `uploaded` for the caseworker's sweep.
    return getattr(request.app.state, "attachment_lifecycle", None)


def serialize_attachment(a: Attachment) -> dict[str, Any]:
    return {
        "id": a.id,
        "type": "attachment",
        "attributes": {
            "filename": a.filename,
            "content_type": a.content_type,
            "size": a.size,
            "sha256": a.sha256,
            "state": a.state,
            "detail": a.detail,
            "created_at": iso(a.created_at),
            "modified_at": iso(a.modified_at),
            "expires_at": iso(a.expires_at),
        },
        "relationships": {
            "case": {"data": {"id": a.case_id, "type": "case"}},
            "uploaded_by": {"data": {"id": a.uploaded_by_id, "type": "user"} if a.uploaded_by_id else None},
        },
    }


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII `filename` every client reads, and `filename*` (RFC 8187, UTF-8) with the real
    name when it is not plain ASCII. Header values are Latin-1 on the wire: a non-ASCII name written
    into `filename` as it is cannot even be sent."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += "; filename*=UTF-8''" + quote(filename, safe="")
    return value


@router.post("", status_code=201)
@contract(body=UploadForm, body_media_type=MEDIA_TYPE, returns=AttachmentResponse)
async def upload(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    part = await file_part(request.headers.get("content-type"), request.stream().__aiter__())
    attachment = await service.upload_attachment(
        who.uow,
        blob_store(request),
        org_id=who.org_id,
        actor_id=who.user_id,
        case_ref=case_id,
        filename=part.filename,
        content_type=part.content_type,
        chunks=part.chunks,
        limits=limits(request),
    )
    starter = lifecycle(request)
    if starter is not None:
        await starter.attachment_uploaded(CASE_MANAGEMENT, attachment)
    return {"data": serialize_attachment(attachment)}


@router.get("")
@contract(returns=AttachmentsResponse)
async def list_attachments(case_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        found = await service.list_attachments(uow, who.org_id, case_id)
    return {"data": [serialize_attachment(a) for a in found]}


@router.get("/{attachment_id}")
@contract(returns=AttachmentResponse)
async def get_attachment(case_id: str, attachment_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        found = await service.get_attachment(uow, who.org_id, case_id, attachment_id)
    return {"data": serialize_attachment(found)}


@router.get(
    "/{attachment_id}/content",
    response_class=StreamingResponse,
    responses={200: {"description": "The file, of its own media type", "content": {"*/*": {"schema": {}}}}},
)
@contract(errors={409})  # the file is not available (yet, or any more)
async def download(case_id: str, attachment_id: str, request: Request, who: Caller = Depends(caller)) -> Response:
    attachment, chunks = await service.open_download(who.uow, blob_store(request), who.org_id, case_id, attachment_id)
    return StreamingResponse(
        chunks,
        media_type=attachment.content_type,
        headers={
            "Content-Length": str(attachment.size),
            "Content-Disposition": content_disposition(attachment.filename),
            "Digest": f"sha-256={attachment.sha256}",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.delete("/{attachment_id}", status_code=204)
async def delete(case_id: str, attachment_id: str, request: Request, who: Caller = Depends(caller)) -> Response:
    attachment = await service.delete_attachment(
        who.uow, blob_store(request), who.org_id, who.user_id, case_id, attachment_id
    )
    starter = lifecycle(request)
    if starter is not None:
        await starter.attachment_deleted(CASE_MANAGEMENT, attachment)
    return Response(status_code=204)
