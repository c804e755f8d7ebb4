"""Settings: projects, people and their console passwords, API and application keys, and what the org has
configured (case types and attributes, automation and notification rules, endpoints, SLAs, maintenance)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from casem.app.console import accounts, keys, sessions
from casem.app.identity.service import create_user
from casem.app.projects.service import create_project
from casem.services.case_console.views.configuration import SECTIONS, page_values
from casem.services.case_console.web import Visitor, is_htmx, render, visitor

router = APIRouter(prefix="/settings")


def _back(section: str) -> Response:
    return RedirectResponse(f"/settings/{section}", status_code=303)


@router.get("")
async def settings_home() -> Response:
    return _back("projects")


@router.get("/{section}")
async def settings_page(section: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    if section == "configuration":  # the former single page of what is now four
        return _back("case-types")
    if section not in SECTIONS:
        return render(request, "error.html", 404, title="Not found", detail="There is no such settings page.")
    return render(request, "settings.html", **await page_values(who, section))


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


@router.post("/projects")
async def add_project(request: Request, who: Visitor = Depends(visitor)) -> Response:
    form = await _form(request)
    async with who.uow() as uow:
        await create_project(uow, who.org_id, who.user_id, key=form.get("key", ""), name=form.get("name", ""))
        await uow.commit()
    return _back("projects")


@router.post("/people")
async def add_person(request: Request, who: Visitor = Depends(visitor)) -> Response:
    form = await _form(request)
    async with who.uow() as uow:
        user = await create_user(
            uow, who.org_id, form.get("email", ""), name=form.get("name") or None, actor_id=who.user_id
        )
        await uow.session.flush()
        if form.get("password"):
            await accounts.set_password(uow, who.org_id, user.id, form["password"])
        await uow.commit()
    return _back("people")


@router.post("/people/{user_id}/password")
async def set_password(user_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    form = await _form(request)
    async with who.uow() as uow:
        account = await accounts.set_password(uow, who.org_id, user_id, form.get("password", ""))
        # A new password ends the account's other sessions (a stolen cookie stops working); the person
        # changing their own keeps this one.
        await sessions.end_other_sessions(uow, account.id, keep=who.session.token_hash)
        await uow.commit()
    return _back("people")


@router.post("/keys")
async def add_key(request: Request, who: Visitor = Depends(visitor)) -> Response:
    form = await _form(request)
    async with who.uow() as uow:
        issued = keys.new_key(uow, who.org_id, who.user_id, form.get("kind", ""), form.get("name", ""))
        await uow.commit()
    values = await page_values(who, "keys")
    # Shown once: only the hash is stored.
    return render(request, "settings.html", issued=issued, **values)


@router.post("/keys/{key_id}/revoke")
async def revoke(key_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    async with who.uow() as uow:
        await keys.revoke_key(uow, who.org_id, key_id)
        await uow.commit()
    if is_htmx(request):
        return render(request, "settings.html", **await page_values(who, "keys"))
    return _back("keys")
