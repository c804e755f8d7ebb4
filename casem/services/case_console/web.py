"""The console's HTTP edge: who is signed in, CSRF checks, and rendering pages and fragments."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.console.sessions import ABSOLUTE, ConsoleSession, load_session
from casem.app.context import AppContext
from casem.app.identity.service import get_user
from casem.topology.tenants import CASE_MANAGEMENT

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

SESSION_COOKIE = "casem_session"
SECURE_SESSION_COOKIE = "__Host-casem_session"  # over TLS: Secure, host-only, path / (the prefix enforces it)
SIGN_IN_CSRF_COOKIE = "casem_signin"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class NotSignedIn(Exception):  # noqa: N818 - reads as "raise NotSignedIn"
    """No live session: pages redirect to the sign-in page, fragments and fetches get a 401."""


class CsrfRejected(Exception):  # noqa: N818
    """An unsafe request without this session's CSRF token (or from another origin)."""


@dataclass(frozen=True)
class Visitor:
    """The signed-in person behind a request, with the org every page is scoped to."""

    session: ConsoleSession
    context: AppContext
    name: str = ""
    email: str = ""

    @property
    def org_id(self) -> str:
        return self.session.org_id

    @property
    def user_id(self) -> str:
        return self.session.user_id

    def uow(self, *, read_only: bool = False) -> UnitOfWork:
        return self.context.uow(CASE_MANAGEMENT, read_only=read_only)


def context_of(request: Request) -> AppContext:
    return request.app.state.context


def is_secure(request: Request) -> bool:
    """Served over TLS (directly, or behind a proxy that says so and that the operator trusts)."""
    if request.url.scheme == "https":
        return True
    return bool(request.app.state.trust_forwarded_proto) and request.headers.get("x-forwarded-proto") == "https"


def session_cookie_name(request: Request) -> str:
    return SECURE_SESSION_COOKIE if is_secure(request) else SESSION_COOKIE


def session_token(request: Request) -> str | None:
    return request.cookies.get(session_cookie_name(request))


async def visitor(request: Request) -> Visitor:
    """FastAPI dependency: the signed-in visitor, or NotSignedIn. Unsafe methods must carry the CSRF token."""
    cached = getattr(request.state, "visitor", None)
    if cached is not None:
        return cached
    ctx = context_of(request)
    async with ctx.uow(CASE_MANAGEMENT) as uow:
        session = await load_session(uow, session_token(request))
        await uow.session.commit()  # the last-seen stamp, when it was due
    if session is None:
        raise NotSignedIn()
    if request.method in UNSAFE_METHODS:
        await check_csrf(request, session.csrf_token)
    async with ctx.uow(CASE_MANAGEMENT, read_only=True) as uow:
        user = await get_user(uow, session.org_id, session.user_id)
    found = Visitor(session, ctx, user.name or user.email, user.email)
    request.state.visitor = found
    return found


def same_origin(request: Request) -> bool:
    """A browser names the page a request comes from (Origin, else Referer): it must be this console."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return True  # old browsers and non-browser clients: the token alone decides
    parts = urlsplit(source)
    return f"{parts.scheme}://{parts.netloc}" == f"{request.url.scheme}://{request.url.netloc}" or (
        is_secure(request) and parts.scheme == "https" and parts.netloc == request.url.netloc
    )


async def submitted_token(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette keeps the parsed form for the view
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def check_csrf(request: Request, expected: str) -> None:
    token = await submitted_token(request)
    if not same_origin(request) or not token or not hmac.compare_digest(token.encode(), expected.encode()):
        raise CsrfRejected()


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(24)


def render(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    visitor_value = getattr(request.state, "visitor", None)
    return templates.TemplateResponse(
        request,
        template,
        {"visitor": visitor_value, "csrf_token": visitor_value.session.csrf_token if visitor_value else "", **values},
        status_code=status_code,
    )


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def safe_next(target: str | None) -> str:
    """Only a path of this console: never an absolute URL or `//host` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/cases"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/cases"
    return target


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        session_cookie_name(request),
        token,
        max_age=int(ABSOLUTE.total_seconds()),
        path="/",
        secure=is_secure(request),
        httponly=True,
        samesite="lax",  # lax: a link from a chat opens the case signed in; cross-site posts carry no cookie
    )
