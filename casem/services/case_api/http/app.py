"""The case-api HTTP application: routers, JSON:API error mapping, health, readiness and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from casem.adapters.availability import is_unavailable
from casem.adapters.bus import BusError
from casem.adapters.search import SearchBackendError
from casem.app.context import AppContext
from casem.app.integrations.errors import RemoteFailure
from casem.domain.errors import Conflict, InvalidInput, NotFound, TenantUnavailable, TooLarge, bounded
from casem.observability import configure_logging
from casem.services.case_api.http import AuthenticationFailed
from casem.services.case_api.http.boundary import BodyLimit, RequestTimeout
from casem.services.case_api.http.observe import ObserveRequests
from casem.services.case_api.integrations.views import remote_failure_answer
from casem.services.case_api.jsonapi import error_response, forbidden
from casem.services.case_api.openapi import install as install_openapi
from casem.services.common.rate_limit import RateLimited, rate_limiter_for
from casem.services.common.tracing import HttpTracing
from casem.topology.config import rate_limits
from casem.topology.tenants import CASE_MANAGEMENT

log = structlog.get_logger("case-api.http")

RETRY_AFTER_S = 2  # seconds a client should wait when an engine is away (engines restart in seconds)


def _routers() -> list:
    # One router per domain concept, each in its own package beside this one.
    from casem.services.case_api.access_tokens.views import router as access_tokens
    from casem.services.case_api.activity.views import router as activity
    from casem.services.case_api.attachments.views import router as attachments
    from casem.services.case_api.automation_rules.views import casem_router as automation_settings
    from casem.services.case_api.automation_rules.views import router as automation_rules
    from casem.services.case_api.case_links.views import router as case_links
    from casem.services.case_api.case_types.views import router as case_types
    from casem.services.case_api.case_views.views import router as case_views
    from casem.services.case_api.cases.views import router as cases
    from casem.services.case_api.custom_attributes.views import router as custom_attributes
    from casem.services.case_api.identity.views import router as identity
    from casem.services.case_api.insights.views import router as insights
    from casem.services.case_api.integrations.views import case_router as case_integrations
    from casem.services.case_api.integrations.views import jira_router as jira_integration
    from casem.services.case_api.integrations.views import servicenow_router as servicenow_integration
    from casem.services.case_api.keys.views import router as keys
    from casem.services.case_api.maintenance_windows.views import router as maintenance_windows
    from casem.services.case_api.merges.views import router as merges
    from casem.services.case_api.notification_rules.views import casem_router as notifications
    from casem.services.case_api.notification_rules.views import router as notification_rules
    from casem.services.case_api.oncall.notifications import router as oncall_notifications
    from casem.services.case_api.oncall.pages import router as oncall_pages
    from casem.services.case_api.oncall.paging_rules import router as oncall_paging_rules
    from casem.services.case_api.oncall.policies import router as oncall_policies
    from casem.services.case_api.oncall.routing import router as oncall_routing
    from casem.services.case_api.oncall.schedules import feed_router as oncall_calendar_feeds
    from casem.services.case_api.oncall.schedules import router as oncall_schedules
    from casem.services.case_api.project_favorites.views import router as project_favorites
    from casem.services.case_api.projects.views import router as projects
    from casem.services.case_api.timeline.views import router as timeline
    from casem.services.case_api.watchers.views import router as watchers

    # Projects first: /api/v2/cases/projects must win over /api/v2/cases/{case_id}.
    # Case types and their attributes too (/api/v2/cases/types...). Project favorites before projects:
    # /api/v2/cases/projects/favorites must win over /api/v2/cases/projects/{project_id}.
    return [
        project_favorites,
        projects,
        notification_rules,
        case_types,
        custom_attributes,
        identity,
        timeline,
        watchers,
        attachments,
        activity,
        notifications,
        merges,
        automation_rules,
        automation_settings,
        case_views,
        case_links,
        maintenance_windows,
        insights,
        keys,
        access_tokens,
        jira_integration,
        servicenow_integration,
        case_integrations,
        oncall_schedules,
        oncall_calendar_feeds,
        oncall_policies,
        oncall_routing,
        oncall_notifications,
        oncall_pages,
        oncall_paging_rules,
        cases,
    ]


def create_app(context: AppContext, *, owns_context: bool = False) -> FastAPI:
    configure_logging("case-api")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if context.search is not None:
            for tenant in context.databases:  # each tenant's index behind its alias, created once
                await context.search.ensure_index(tenant)
        yield
        if owns_context:
            await context.close()

    app = FastAPI(
        title="casem case-api",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.context = context
    api_database = context.databases.get(CASE_MANAGEMENT)
    app.state.rate_limiter = rate_limiter_for(
        rate_limits(), api_database.dialect if api_database else None, api_database.writer if api_database else None
    )
    app.add_middleware(BodyLimit)
    for router in _routers():
        # The routers' own routes, not the routers: their paths and tags are complete already (each router only has
        # a prefix and tags), and FastAPI walks an included router's routes twice per request (to match, then to
        # handle), through a per-route context switch, which cost a GET case more CPU than its database read.
        app.router.routes.extend(router.routes)
    install_openapi(app)  # request bodies, answers and errors from the routes' own models

    app.add_exception_handler(RemoteFailure, remote_failure_answer)

    @app.exception_handler(InvalidInput)
    async def _invalid(_: Request, exc: InvalidInput) -> JSONResponse:
        return error_response(400, "Bad Request", exc.detail, exc.pointer)

    @app.exception_handler(TooLarge)
    async def _too_large(_: Request, exc: TooLarge) -> JSONResponse:
        # The rest of an oversized body is not read: close the connection rather than drain it.
        return error_response(413, "Payload Too Large", exc.detail, exc.pointer, headers={"Connection": "close"})

    @app.exception_handler(ClientDisconnect)
    async def _gone(_: Request, _exc: ClientDisconnect) -> JSONResponse:
        # Nobody reads this answer; it keeps a dropped upload from being logged as a server error.
        return error_response(400, "Bad Request", "the client disconnected before the request was complete")

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return error_response(404, "Not Found", str(exc), exc.pointer)

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> JSONResponse:
        return error_response(409, "Conflict", exc.detail)

    @app.exception_handler(TenantUnavailable)
    async def _tenant(_: Request, exc: TenantUnavailable) -> JSONResponse:
        return error_response(503, "Service Unavailable", str(exc))

    @app.exception_handler(RateLimited)
    async def _rate_limited(_: Request, exc: RateLimited) -> JSONResponse:
        return error_response(429, "Too Many Requests", str(exc), headers=exc.decision.headers())

    @app.exception_handler(RequestTimeout)
    async def _request_timeout(_: Request, exc: RequestTimeout) -> JSONResponse:
        return error_response(408, "Request Timeout", str(exc), headers={"Connection": "close"})

    @app.exception_handler(AuthenticationFailed)
    async def _forbidden(_: Request, _exc: AuthenticationFailed) -> JSONResponse:
        return forbidden()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        loc = tuple(str(p) for p in first.get("loc", ()))
        where = ".".join(loc)
        detail = bounded(f"{where}: {first.get('msg')}")
        if len(loc) == 2 and loc[0] == "query":
            return error_response(400, "Bad Request", detail, parameter=loc[1])
        return error_response(400, "Bad Request", detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {404: "Not Found", 405: "Method Not Allowed"}
        return error_response(exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail))

    async def _engine_error(request: Request, exc: Exception) -> JSONResponse:
        if is_unavailable(exc):  # an engine is away: the request was fine, it can be sent again shortly
            log.warning("engine unavailable", path=request.url.path, error=repr(exc)[:300])
            response = error_response(
                503, "Service Unavailable", "a backing service is unavailable; retry after the delay in Retry-After"
            )
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
            return response
        log.exception("unhandled error", path=request.url.path)
        return error_response(500, "Internal Server Error", "an unexpected error occurred; it has been logged")

    # The engines' own error types are answered here, inside the app: a handler for bare Exception runs in
    # Starlette's outermost middleware, which re-raises after answering and so drops kept-alive connections.
    for engine_error in (SQLAlchemyError, OSError, SearchBackendError, BusError):
        app.add_exception_handler(engine_error, _engine_error)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if is_unavailable(exc):
            return await _engine_error(request, exc)
        log.exception("unhandled error", path=request.url.path)
        return error_response(500, "Internal Server Error", "an unexpected error occurred; it has been logged")

    app.add_middleware(ObserveRequests)  # metrics and rate-limit headers, around the request boundary

    app.add_middleware(HttpTracing)  # outermost: a request's span covers everything it does

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        failures = {}
        for name, db in context.databases.items():
            try:
                async with db.reader.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
            except Exception as exc:  # readiness reports, it does not raise
                failures[name] = str(exc)
        if failures:
            return JSONResponse({"status": "unavailable", "tenants": failures}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
