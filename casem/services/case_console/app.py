"""The case-console web application: pages, fragments, static assets, security headers, error pages."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from casem.app.context import AppContext
from casem.app.timeline.service import NotAuthor
from casem.domain.errors import Conflict, InvalidInput, NotFound
from casem.services.case_console import oidc as oidc_views
from casem.services.case_console.live import LiveFeed
from casem.services.case_console.views import (
    analytics,
    auth,
    board,
    case_page,
    cases,
    configuration,
    live_events,
    oncall,
    settings,
)
from casem.services.case_console.web import HERE, CsrfRejected, NotSignedIn, is_htmx, render

log = structlog.get_logger("case-console")

VENDOR_MANIFEST = HERE / "static" / "vendor" / "manifest.json"

# Everything from this origin only; no inline script or style, no framing, forms post only here.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class AssetsMissing(RuntimeError):
    pass


def vendor_assets() -> dict[str, Any]:
    """The built front-end libraries (scripts/tools/build-console.sh); the console cannot run without them."""
    if not VENDOR_MANIFEST.exists():
        raise AssetsMissing(
            f"the console's front-end libraries are not built ({VENDOR_MANIFEST} is missing): "
            "run `make console-assets` (npm ci from the lockfile, then a copy into static/vendor)"
        )
    return json.loads(VENDOR_MANIFEST.read_text())


def create_app(
    context: AppContext,
    *,
    live: LiveFeed | None = None,
    trust_forwarded_proto: bool = False,
    oidc: Any | None = None,
    blobs: Any | None = None,
    attachment_lifecycle: Any | None = None,
    caseworker: Any | None = None,
) -> FastAPI:
    assets = vendor_assets()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if live is not None:
            await live.start()
        yield
        if live is not None:
            await live.stop()

    app = FastAPI(title="casem console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.context = context
    app.state.live = live
    app.state.trust_forwarded_proto = trust_forwarded_proto
    app.state.oidc = oidc
    app.state.blobs = blobs
    app.state.attachment_lifecycle = attachment_lifecycle
    app.state.caseworker = caseworker
    app.state.vendor = assets
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    for module in (auth, oidc_views, cases, case_page, board, live_events, analytics, settings, configuration, oncall):
        app.include_router(module.router)

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, _exc: NotSignedIn) -> Response:
        if is_htmx(request) or request.method != "GET":
            # htmx follows HX-Redirect: the page goes to the sign-in form instead of swapping in an error.
            return Response(status_code=401, headers={"HX-Redirect": "/sign-in"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, _exc: CsrfRejected) -> Response:
        log.warning("csrf token missing or wrong", path=request.url.path)
        return render(
            request,
            "error.html",
            403,
            title="Request refused",
            detail="This form was not sent from a page of this console (its security token is missing or "
            "out of date). Reload the page and try again.",
        )

    @app.exception_handler(oncall.OnCallMissing)
    async def _no_on_call(request: Request, _exc: oncall.OnCallMissing) -> Response:
        return render(
            request,
            "error.html",
            503,
            title="On-call is not available here",
            detail="The on-call tenant is not deployed in this datacenter.",
        )

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> Response:
        # Another org's id lands here exactly like one that never existed: same page, same status.
        return render(request, "error.html", 404, title="Not found", detail=f"There is no {exc.resource} {exc.ident}.")

    @app.exception_handler(InvalidInput)
    async def _invalid(request: Request, exc: InvalidInput) -> Response:
        if is_htmx(request):
            return render(request, "_error_fragment.html", 422, detail=exc.detail)
        return render(request, "error.html", 400, title="Cannot do that", detail=exc.detail)

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict) -> Response:
        if is_htmx(request):
            return render(request, "_error_fragment.html", 409, detail=exc.detail)
        return render(request, "error.html", 409, title="Cannot do that now", detail=exc.detail)

    @app.exception_handler(NotAuthor)
    async def _not_author(request: Request, exc: NotAuthor) -> Response:
        return render(request, "_error_fragment.html" if is_htmx(request) else "error.html", 403, detail=exc.detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Not found", 405: "Not allowed"}
        return render(request, "error.html", exc.status_code, title=titles.get(exc.status_code, "Error"), detail="")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", path=request.url.path)
        return render(request, "error.html", 500, title="Something went wrong", detail="The error has been logged.")

    @app.middleware("http")
    async def _security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        response: Response = await call_next(request)
        # How long the server took (to the first byte of a streamed answer): DevTools and bench/console.py read it.
        response.headers.setdefault("Server-Timing", f"app;dur={(time.perf_counter() - started) * 1000:.2f}")
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return RedirectResponse("/static/favicon.svg", status_code=301)

    @app.get("/", include_in_schema=False)
    async def home() -> HTMLResponse:
        return RedirectResponse("/cases", status_code=303)  # type: ignore[return-value]

    return app
