"""The case page: fields in place, the timeline with Markdown comments, watchers, links, attachments, merges."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.datastructures import UploadFile

from casem.adapters.blobs import BlobStore, open_blob_store
from casem.app.attachments import service as attachments
from casem.app.cases import service as cases
from casem.app.cases import updates
from casem.app.console.case_page import load_case_page
from casem.app.console.markdown import render_markdown
from casem.app.merges import service as merges
from casem.app.timeline import service as timeline
from casem.app.watchers import service as watching
from casem.domain.cases import Priority, Status
from casem.domain.errors import InvalidInput
from casem.services.case_console.web import Visitor, is_htmx, render, visitor
from casem.topology.tenants import CASE_MANAGEMENT

router = APIRouter(prefix="/cases/{case_ref}")

UPLOAD_CHUNK = 256 * 1024
DEFAULT_BLOBS = "./var/blobs"


def blob_store(request: Request) -> BlobStore:
    state = request.app.state
    if getattr(state, "blobs", None) is None:
        state.blobs = open_blob_store(os.environ.get("CASEM_BLOBS_URL", DEFAULT_BLOBS))
    return state.blobs


async def page_values(who: Visitor, case_ref: str) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        page = await load_case_page(uow, who.org_id, case_ref)
    return {
        "p": page,
        "case": page.case,
        "statuses": list(Status),
        "priorities": list(Priority),
        "markdown": render_markdown,
    }


@router.get("")
async def case_page(case_ref: str, request: Request, part: str = "", who: Visitor = Depends(visitor)) -> Response:
    values = await page_values(who, case_ref)
    if part == "body":
        return render(request, "_case_body.html", **values)
    return render(request, "case.html", **values)


async def _answer(request: Request, who: Visitor, case_ref: str) -> Response:
    """After a change: the refreshed case body for htmx, a redirect back to the page for a plain form."""
    if is_htmx(request):
        return render(request, "_case_body.html", **await page_values(who, case_ref))
    return RedirectResponse(f"/cases/{case_ref}", status_code=303)


async def _field(request: Request, name: str) -> str:
    form = await request.form()
    value = form.get(name)
    return value if isinstance(value, str) else ""


@router.post("/title")
async def retitle(case_ref: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    title = await _field(request, "title")
    async with who.uow() as uow:
        await updates.retitle(uow, who.org_id, who.user_id, case_ref, title)
        await uow.commit()
    return await _answer(request, who, case_ref)


@router.post("/description")
async def describe(case_ref: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    description = await _field(request, "description")
    async with who.uow() as uow:
        await updates.describe(uow, who.org_id, who.user_id, case_ref, description)
        await uow.commit()
    return await _answer(request, who, case_ref)


@router.post("/status")
async def change_status(case_ref: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    status = updates.resolve_status(await _field(request, "status"), None)
    async with who.uow() as uow:
        await updates.transition(uow, who.org_id, who.user_id, case_ref, status)
        await uow.commit()
    if request.headers.get("x-casem-board") == "1":
        return Response(status_code=204)  # the board moved the card itself
    return await _answer(request, who, case_ref)


@router.post("/priority")
async def change_priority(case_ref: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    priority = await _field(request, "priority")
    async with who.uow() as uow:
        await updates.prioritize(uow, who.org_id, who.user_id, case_ref, priority)
        await uow.commit()
    return await _answer(request, who, case_ref)


@router.post("/assignee")
async def change_assignee(case_ref: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    assignee = await _field(request, "assignee")
    if assignee == "me":
        assignee = who.user_id
    async with who.uow() as uow:
        if assignee:
            await updates.assign(uow, who.org_id, who.user_id, case_ref, assignee)
        else:
            await updates.unassign(uow, who.org_id, who.user_id, case_ref)
        await uow.commit()
    return await _answer(request, who, case_ref)


@router.post("/custom/{key}")
async def change_custom_attribute(
    case_ref: str, key: str, request: Request, who: Visitor = Depends(visitor)
) -> Response:
    form = await request.form()
    async with who.uow() as uow:
        case = await cases.get_case(uow, who.org_id, case_ref)
        configs = await cases.attribute_configs(uow, who.org_id, case.type_id)
        config = configs.get(key)
        if config is None:
            raise InvalidInput(f"this case type has no attribute {key!r}", f"/custom/{key}")
        raw: Any = (
            [str(v) for v in form.getlist("value") if str(v)] if config.is_multi else str(form.get("value") or "")
        )
        if raw in ("", []):
            await updates.delete_custom_attribute(uow, who.org_id, who.user_id, case_ref, key)
        else:
            if config.type == "NUMBER" and not config.is_multi:
                try:
                    raw = float(raw)
                except ValueError:
                    raise InvalidInput(f"{config.display_name} must be a number", f"/custom/{key}") from None
            value = {"type": config.type, "is_multi": config.is_multi, "value": raw}
            await updates.set_custom_attribute(uow, who.org_id, who.user_id, case_ref, key, value)
        await uow.commit()
    return await _answer(request, who, case_ref)


@router.post("/comments")
async def comment(case_ref: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    message = await _field(request, "message")
    async with who.uow() as uow:
        await timeline.add_comment(uow, who.org_id, who.user_id, case_ref, message)
        await uow.commit()
    response = await _answer(request, who, case_ref)
    response.headers["HX-Trigger"] = "casem:commented"
    return response


@router.post("/comments/{cell_id}/edit")
async def edit_comment(case_ref: str, cell_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    message = await _field(request, "message")
    async with who.uow() as uow:
        await timeline.edit_comment(uow, who.org_id, who.user_id, case_ref, cell_id, message)
        await uow.commit()
    return await _answer(request, who, case_ref)


@router.post("/comments/{cell_id}/delete")
async def delete_comment(case_ref: str, cell_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    async with who.uow() as uow:
        await timeline.delete_comment(uow, who.org_id, who.user_id, case_ref, cell_id)
        await uow.commit()
    return await _answer(request, who, case_ref)


@router.post("/watch")
async def watch(case_ref: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    watching_now = await _field(request, "watch") == "1"
    async with who.uow() as uow:
        if watching_now:
            await watching.watch(uow, who.org_id, who.user_id, case_ref, who.user_id)
        else:
            await watching.unwatch(uow, who.org_id, who.user_id, case_ref, who.user_id)
        await uow.commit()
    return await _answer(request, who, case_ref)


@router.post("/attachments")
async def upload(case_ref: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    form = await request.form()
    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        raise InvalidInput("choose a file to attach", "/file")

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await file.read(UPLOAD_CHUNK):
            yield chunk

    attachment = await attachments.upload_attachment(
        who.uow,
        blob_store(request),
        org_id=who.org_id,
        actor_id=who.user_id,
        case_ref=case_ref,
        filename=file.filename,
        content_type=file.content_type,
        chunks=chunks(),
    )
    starter = request.app.state.attachment_lifecycle
    if starter is not None:
        await starter.attachment_uploaded(CASE_MANAGEMENT, attachment)
    return await _answer(request, who, case_ref)


@router.get("/attachments/{attachment_id}")
async def download(case_ref: str, attachment_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    found, chunks = await attachments.open_download(who.uow, blob_store(request), who.org_id, case_ref, attachment_id)
    # The file is always downloaded, never shown inline: a crafted HTML file cannot run as this origin.
    ascii_name = "".join(c if c.isascii() and c.isprintable() and c not in '"\\;' else "_" for c in found.filename)
    return StreamingResponse(
        chunks,
        media_type=found.content_type,
        headers={
            "Content-Length": str(found.size),
            "Content-Disposition": f'attachment; filename="{ascii_name}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


@router.post("/attachments/{attachment_id}/delete")
async def delete_attachment(
    case_ref: str, attachment_id: str, request: Request, who: Visitor = Depends(visitor)
) -> Response:
    found = await attachments.delete_attachment(
        who.uow, blob_store(request), who.org_id, who.user_id, case_ref, attachment_id
    )
    starter = request.app.state.attachment_lifecycle
    if starter is not None:
        await starter.attachment_deleted(CASE_MANAGEMENT, found)
    return await _answer(request, who, case_ref)


@router.post("/merge")
async def merge(case_ref: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    refs = [r.strip() for r in (await _field(request, "duplicates")).replace(",", " ").split() if r.strip()]
    if not refs:
        raise InvalidInput("name the duplicate cases by key, e.g. PROJ-12 PROJ-15", "/duplicates")
    caseworker = request.app.state.caseworker
    async with who.uow() as uow:
        request_ = await merges.request_merge(uow, CASE_MANAGEMENT, who.org_id, who.user_id, case_ref, refs)
        if caseworker is None:  # checked after the lookups: another org's keys are "not found" either way
            raise InvalidInput("merges need the caseworker, and this console has no Temporal to start it on")
        await uow.commit()
    try:
        await caseworker.start_merge(request_)
    except Exception as exc:
        async with who.uow() as uow:
            await merges.mark_unstarted(uow, request_.merge_id, f"the merge workflow did not start: {exc}")
            await uow.commit()
    return await _answer(request, who, case_ref)
