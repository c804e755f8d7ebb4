"""Signing in and out: e-mail and password, or the operator's OpenID Connect provider."""

from __future__ import annotations

import hmac
import math
from datetime import timedelta

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from casem.app.console import accounts, sessions
from casem.app.console.accounts import SignInBlocked, SignInFailed
from casem.app.console.sessions import token_hash
from casem.services.case_console.web import (
    CSRF_FIELD,
    SIGN_IN_CSRF_COOKIE,
    CsrfRejected,
    Visitor,
    context_of,
    is_secure,
    new_sign_in_token,
    render,
    safe_next,
    same_origin,
    session_cookie_name,
    session_token,
    set_session_cookie,
    visitor,
)

router = APIRouter()

SIGN_IN_FAILED = "That e-mail address and password do not match an account."


def _blocked_message(wait: timedelta) -> str:
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    return (
        f"Too many failed sign-ins for this address. Try again in {minutes} minute{'s' if minutes > 1 else ''}, "
        "or ask an administrator to set a new password for you (casem admin set-password)."
    )


def _sign_in_form(
    request: Request,
    status: int = 200,
    error: str = "",
    email: str = "",
    next_: str = "",
    retry_after: timedelta | None = None,
) -> Response:
    token = new_sign_in_token()
    response = render(
        request,
        "sign_in.html",
        status,
        sign_in_token=token,
        error=error,
        email=email,
        next=safe_next(next_),
        oidc=request.app.state.oidc,
    )
    # Login CSRF: the form's token must match this cookie (a double submit, as there is no session yet).
    response.set_cookie(
        SIGN_IN_CSRF_COOKIE, token, max_age=3600, path="/", secure=is_secure(request), httponly=True, samesite="strict"
    )
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(retry_after.total_seconds())))
    return response


@router.get("/sign-in")
async def sign_in_page(request: Request, next: str = "") -> Response:
    return _sign_in_form(request, next_=next)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    form = await request.form()
    submitted = str(form.get(CSRF_FIELD) or "")
    expected = request.cookies.get(SIGN_IN_CSRF_COOKIE, "")
    if not same_origin(request) or not expected or not hmac.compare_digest(submitted.encode(), expected.encode()):
        raise CsrfRejected()
    email, password = str(form.get("email") or ""), str(form.get("password") or "")
    next_ = safe_next(str(form.get("next") or ""))
    ctx = context_of(request)
    try:
        async with ctx.uow() as uow:
            account = await accounts.check_password(uow, email, password)
            # Whatever session cookie the browser brought is dropped, never promoted: a new token every sign-in.
            old = session_token(request)
            if old:
                await sessions.end_session(uow, token_hash(old))
            token, _session = await sessions.start_session(uow, account, request.headers.get("user-agent"))
            await accounts.stamp_sign_in(uow, account.id)
            await uow.commit()
    except SignInBlocked as blocked:
        return _sign_in_form(request, 429, _blocked_message(blocked.retry_after), email, next_, blocked.retry_after)
    except SignInFailed as failed:
        wait = None
        if failed.account_id is not None:
            async with ctx.uow() as uow:
                wait = await accounts.count_failed_sign_in(uow, failed.account_id)
                await uow.commit()
        if wait is not None:
            return _sign_in_form(request, 429, _blocked_message(wait), email, next_, wait)
        return _sign_in_form(request, 401, SIGN_IN_FAILED, email, next_)
    response = RedirectResponse(next_, status_code=303)
    set_session_cookie(request, response, token)
    response.delete_cookie(SIGN_IN_CSRF_COOKIE, path="/")
    return response


@router.post("/sign-out")
async def sign_out(request: Request, who: Visitor = Depends(visitor)) -> Response:
    async with who.uow() as uow:
        await sessions.end_session(uow, who.session.token_hash)
        await uow.commit()
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(session_cookie_name(request), path="/", secure=is_secure(request), httponly=True)
    if request.headers.get("hx-request") == "true":
        response.headers["HX-Redirect"] = "/sign-in"
    return response
