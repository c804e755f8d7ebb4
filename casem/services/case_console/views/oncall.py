"""On-call: who is on call now per team, a schedule as a timeline, and the org's pages with acknowledge/resolve.

The data lives in the on-call tenant (its own database); people and teams in the case-management one. The
acknowledge and resolve buttons run the Paging API's use cases, then signal the page's workflow like it does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.adapters.workflows.contracts import PAGE_ACKNOWLEDGED, PAGE_RESOLVED
from casem.app.cases.finder import CaseSearch, DatabaseCaseSearch, EngineCaseSearch
from casem.app.console import oncall as views
from casem.app.oncall import pages as paging
from casem.domain.oncall import Page
from casem.services.case_console.web import Visitor, is_htmx, render, visitor
from casem.topology.tenants import ON_CALL

log = structlog.get_logger("case-console.on-call")
router = APIRouter(prefix="/on-call")

STATUS_LABELS = {"": "All", "triggered": "Triggered", "acknowledged": "Acknowledged", "resolved": "Resolved"}


class OnCallMissing(Exception):  # noqa: N818 - reads as "raise OnCallMissing"
    """The on-call tenant is not deployed where this console runs."""


@asynccontextmanager
async def on_call(who: Visitor, *, read_only: bool = True) -> AsyncIterator[tuple[UnitOfWork, UnitOfWork]]:
    """The on-call tenant's unit of work and the case-management one where people and teams live."""
    if ON_CALL not in who.context.databases:
        raise OnCallMissing()
    async with who.context.uow(ON_CALL, read_only=read_only) as uow, who.uow(read_only=True) as people:
        yield uow, people


def _finder(request: Request) -> CaseSearch:
    engine = request.app.state.context.search
    return EngineCaseSearch(engine, ON_CALL) if engine is not None else DatabaseCaseSearch()


@router.get("")
async def overview(request: Request, who: Visitor = Depends(visitor)) -> Response:
    async with on_call(who) as (uow, people):
        found = await views.on_call_overview(uow, people, who.org_id, datetime.now(UTC))
    return render(request, "oncall.html", overview=found)


@router.get("/schedules/{schedule_id}")
async def schedule(schedule_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    async with on_call(who) as (uow, people):
        timeline = await views.schedule_timeline(uow, people, who.org_id, schedule_id, datetime.now(UTC))
    return render(request, "oncall_schedule.html", t=timeline)


def _pages_link(status: str, number: int) -> str:
    params = {k: v for k, v in (("status", status), ("page", str(number) if number > 1 else "")) if v}
    return "/on-call/pages" + (f"?{urlencode(params)}" if params else "")


@router.get("/pages")
async def pages(request: Request, status: str = "", page: int = 1, who: Visitor = Depends(visitor)) -> Response:
    async with on_call(who) as (uow, people):
        found = await views.list_pages(uow, people, _finder(request), who.org_id, status, page)
    values: dict[str, Any] = {
        "listing": found,
        "statuses": STATUS_LABELS,
        "next_link": _pages_link(status, found.number + 1) if found.has_next else None,
        "previous_link": _pages_link(status, found.number - 1) if found.number > 1 else None,
    }
    if is_htmx(request) and request.headers.get("hx-target") == "page-results":
        return render(request, "_oncall_pages.html", **values)
    return render(request, "oncall_pages.html", **values)


Change = Callable[[UnitOfWork, str, str, str], Awaitable[tuple[Page, bool]]]


async def _change(request: Request, who: Visitor, page_id: str, action: Change, signal: str, done: str) -> Response:
    async with on_call(who, read_only=False) as (uow, _people):
        page, changed = await action(uow, who.org_id, who.user_id, page_id)
        await uow.commit()
    caseworker = request.app.state.caseworker
    if changed and caseworker is not None:
        try:
            await caseworker.signal_page(page.id, signal)
        except Exception as exc:  # the workflow re-reads the page before every step and notification
            log.warning("page signal not delivered", page_id=page.id, signal=signal, error=str(exc))
    if not is_htmx(request):
        return RedirectResponse("/on-call/pages", status_code=303)
    async with on_call(who) as (uow, people):
        row = await views.page_row(uow, people, who.org_id, page.id)
    response = render(request, "_oncall_page_row.html", page=row.pages[0], names=row.names)
    message = f"{page.key} {done}" if changed else f"{page.key} was already {page.status}"
    response.headers["HX-Trigger"] = json.dumps({"casem:flash": message})
    return response


@router.post("/pages/{page_id}/acknowledge")
async def acknowledge(page_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    return await _change(request, who, page_id, paging.acknowledge_page, PAGE_ACKNOWLEDGED, "acknowledged")


@router.post("/pages/{page_id}/resolve")
async def resolve(page_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    return await _change(request, who, page_id, paging.resolve_page, PAGE_RESOLVED, "resolved")
