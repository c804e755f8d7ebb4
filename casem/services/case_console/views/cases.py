"""Triage: the case list with its search box, filters, sorting, keyset paging, saved views and bulk actions."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response

from casem.app.case_views import service as case_views
from casem.app.cases import updates
from casem.app.console import query_help
from casem.app.console.case_list import PAGE_SIZES, ListRequest, list_cases
from casem.app.identity.service import list_users, page_of
from casem.app.projects.service import list_projects
from casem.domain.cases import Priority, Status
from casem.domain.errors import InvalidInput
from casem.services.case_console.web import Visitor, is_htmx, render, visitor

router = APIRouter()

FILTERS = ("project", "status", "priority", "assignee", "type")
BULK_ACTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "close": ("status", {"status": Status.CLOSED.value}),
    "in_progress": ("status", {"status": Status.IN_PROGRESS.value}),
    "reopen": ("status", {"status": Status.OPEN.value}),
    **{f"priority_{p.value}": ("priority", {"priority": p.value}) for p in Priority},
    "unassign": ("unassign", {}),
    "archive": ("archive", {}),
}


def _quoted(value: str) -> str:
    return query_help._quoted(value)


def effective_query(query: str, filters: dict[str, str]) -> str:
    """The search box's query with each chosen filter ANDed on as `field:value`."""
    terms = [f"{name}:{_quoted(value)}" for name, value in filters.items() if value]
    if query.strip():
        terms.insert(0, f"({query.strip()})" if terms else query.strip())
    return " ".join(terms)


def _list_request(request: Request) -> tuple[ListRequest, dict[str, str], str]:
    params = request.query_params
    filters = {name: params.get(name, "").strip() for name in FILTERS}
    query = params.get("q", "")
    try:
        size = int(params.get("size") or 50)
    except ValueError:
        size = 50
    sort = params.get("sort") or "created_at"
    listing = ListRequest(
        query=effective_query(query, filters),
        sort=sort,
        ascending=params.get("dir") == "asc",
        size=size if size in PAGE_SIZES else 50,
        after=params.get("after") or None,
        before=params.get("before") or None,
    )
    return listing, filters, query


def _page_link(request: Request, **changes: str | None) -> str:
    params = {k: v for k, v in request.query_params.items() if k not in ("after", "before")}
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return "/cases?" + urlencode(params)


async def _list_values(request: Request, who: Visitor) -> dict[str, Any]:
    listing, filters, query = _list_request(request)
    problem = query_help.check_query(query)
    async with who.uow(read_only=True) as uow:
        projects = await list_projects(uow, who.org_id)
        people, _total, _filtered = await list_users(uow, who.org_id, page_of(0, 100))
        views = await case_views.list_views(uow, who.org_id, None)
        page = None
        error = ""
        if problem is None:
            try:
                page = await list_cases(uow, who.org_id, listing)
            except InvalidInput as exc:
                error = exc.detail
    return {
        "page": page,
        "query": query,
        "problem": problem,
        "error": error,
        "filters": filters,
        "listing": listing,
        "projects": projects,
        "people": people,
        "views": views,
        "statuses": list(Status),
        "priorities": list(Priority),
        "page_sizes": PAGE_SIZES,
        "next_link": _page_link(request, after=page.next_cursor) if page and page.next_cursor else None,
        "previous_link": _page_link(request, before=page.previous_cursor) if page and page.previous_cursor else None,
        "sort_link": lambda field: _page_link(
            request, sort=field, dir="asc" if listing.sort == field and not listing.ascending else "desc"
        ),
        "bulk_actions": BULK_ACTIONS,
    }


@router.get("/cases")
async def case_list(request: Request, who: Visitor = Depends(visitor)) -> Response:
    values = await _list_values(request, who)
    if is_htmx(request) and request.headers.get("hx-target") == "case-results":
        return render(request, "_case_results.html", **values)
    return render(request, "cases.html", **values)


@router.get("/cases/suggest")
async def suggest(request: Request, q: str = "", caret: int = -1, who: Visitor = Depends(visitor)) -> Response:
    position = len(q) if caret < 0 else caret
    async with who.uow(read_only=True) as uow:
        start, end, found = await query_help.suggest(uow, who.org_id, q, position)
    problem = query_help.check_query(q)
    return render(request, "_suggestions.html", suggestions=found, start=start, end=end, query=q, problem=problem)


@router.post("/cases/bulk")
async def bulk(request: Request, who: Visitor = Depends(visitor)) -> Response:
    form = await request.form()
    case_ids = [str(v) for v in form.getlist("case_id")]
    chosen = str(form.get("action") or "")
    if chosen == "assign_me":
        kind, payload = "assign", {"assignee_id": who.user_id}
    elif chosen in BULK_ACTIONS:
        kind, payload = BULK_ACTIONS[chosen]
    else:
        raise InvalidInput("choose an action for the selected cases", "/action")
    if not case_ids:
        raise InvalidInput("select at least one case first", "/case_id")
    action = updates.parse_bulk_action(kind, payload)
    async with who.uow() as uow:
        changed = await updates.bulk_update(uow, who.org_id, who.user_id, case_ids, action)
        await uow.commit()
        count = len(changed)
        del changed
    back = str(form.get("back") or "/cases")
    if not back.startswith("/cases"):
        back = "/cases"
    response = Response(status_code=204)
    # Only the page's main part is replaced: a navigation of the whole body would also replace the flash this
    # response shows, a moment after it appeared.
    response.headers["HX-Location"] = json.dumps(
        {"path": back, "target": "#main", "select": "#main", "swap": "outerHTML"}
    )
    response.headers["HX-Trigger"] = f'{{"casem:flash": "{count} case{"s" if count != 1 else ""} updated"}}'
    return response


@router.post("/views")
async def save_view(request: Request, who: Visitor = Depends(visitor)) -> Response:
    form = await request.form()
    filters = {name: str(form.get(name) or "") for name in FILTERS}
    query = effective_query(str(form.get("q") or ""), filters)
    async with who.uow() as uow:
        view = await case_views.create_view(
            uow,
            who.org_id,
            who.user_id,
            name=str(form.get("name") or ""),
            project_id=str(form.get("view_project") or ""),
            query=query,
            np_rule_id=None,
        )
        await uow.commit()
    response = Response(status_code=204)
    response.headers["HX-Location"] = "/cases?" + urlencode({"q": view.query, "view": view.id})
    return response


@router.post("/views/{view_id}/delete")
async def delete_view(view_id: str, who: Visitor = Depends(visitor)) -> Response:
    async with who.uow() as uow:
        await case_views.delete_view(uow, who.org_id, who.user_id, view_id)
        await uow.commit()
    response = Response(status_code=204)
    response.headers["HX-Location"] = "/cases"
    return response
