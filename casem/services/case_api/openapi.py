"""The case-api OpenAPI document, completed from the same pydantic models the routes validate with.

Request bodies are not FastAPI body parameters: a view reads its body through casem's own boundary
(`parse_body(request, Model)` in jsonapi.py: bounded size, precise JSON errors, JSON:API pointers). So a
route declares its body model once more with `@contract(body=Model)`, and a test checks that this is the
model its `parse_body` call validates with (tests/api/test_openapi_document.py). Response models work the
same way (`returns=`): documented, not used to filter what the view answers, and checked against real
answers by the schemathesis suite.

Error responses come from what the application answers: every authenticated route can answer 400 (a NUL in
the path or query, a bad query parameter), 403 (authentication), 429 (rate limit) and 503 (an engine away);
a route with a path parameter or a body can answer 404 (another org's id is a 404 too; a listing whose query
names a resource declares `errors={404}`); a route with a body 408 and 413. `errors=` adds what else a route
answers: 409 only where the route can refuse with a `Conflict` (a name already taken, a resource still in use), never
on every write; 502 where it calls a remote Jira or ServiceNow (tests/api/test_openapi_document.py follows each view's
calls to check both). FastAPI's default 422 is
dropped: casem answers a bad parameter with a JSON:API 400, never a 422.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

from casem.services.case_api.http import api_key_caller, caller

F = TypeVar("F", bound=Callable[..., Any])

REF_TEMPLATE = "#/components/schemas/{model}"
JSON = "application/json"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
ERROR_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    429: "Too Many Requests",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class ErrorSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pointer: str | None = None
    parameter: str | None = None


class ErrorObject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: str
    title: str
    detail: str
    source: ErrorSource | None = None


class ErrorResponse(BaseModel):
    """Every error casem answers: JSON:API error objects, or (authentication, 403) Datadog's bare list of
    messages, `{"errors": ["Forbidden"]}`."""

    errors: list[ErrorObject | str]


@dataclass(frozen=True)
class Contract:
    body: type[BaseModel] | None = None
    body_media_type: str = JSON
    returns: type[BaseModel] | None = None
    errors: frozenset[int] = frozenset()


def contract(
    *,
    body: type[BaseModel] | None = None,
    body_media_type: str = JSON,
    returns: type[BaseModel] | None = None,
    errors: Iterable[int] = (),
) -> Callable[[F], F]:
    """Declare, for the document, the body model a view parses, the model of its answer and the errors it
    answers beyond the common ones. The view object itself is returned: the order of decorators is free."""

    def mark(endpoint: F) -> F:
        endpoint.__casem_contract__ = Contract(body, body_media_type, returns, frozenset(errors))  # type: ignore[attr-defined]
        return endpoint

    return mark


def api_routes(routes: Iterable[Any]) -> list[Any]:
    """The documented API routes of an app, each as FastAPI sees it once included (full path, methods,
    dependencies, status code, endpoint)."""
    return [
        context
        for context in iter_route_contexts(list(routes))
        if isinstance(context.original_route, APIRoute) and context.include_in_schema
    ]


def contract_of(route: Any) -> Contract:
    return getattr(route.endpoint, "__casem_contract__", None) or Contract()


def error_statuses(route: Any) -> set[int]:
    declared = contract_of(route)
    statuses = set(declared.errors)
    if any(dependency.call in (caller, api_key_caller) for dependency in route.dependant.dependencies):
        statuses |= {400, 403, 429, 503}
    else:
        statuses |= {400, 503}  # the request boundary (NUL characters) and engines apply to every route
    if route.dependant.path_params or declared.body is not None:
        statuses.add(404)  # whatever names a resource may name one that is not there (or another org's)
    if declared.body is not None:
        statuses |= {400, 408, 413}
    return statuses


def _schemas_of(routes: list[Any]) -> tuple[dict[tuple[type[BaseModel], str], dict[str, Any]], dict[str, Any]]:
    wanted: dict[tuple[type[BaseModel], str], None] = {(ErrorResponse, "serialization"): None}
    for route in routes:
        declared = contract_of(route)
        if declared.body is not None:
            wanted[(declared.body, "validation")] = None
        if declared.returns is not None:
            wanted[(declared.returns, "serialization")] = None
    # One pass over every model: pydantic names each schema once and tells same-named models apart.
    refs, definitions = models_json_schema(list(wanted), ref_template=REF_TEMPLATE)  # type: ignore[arg-type]
    return refs, definitions.get("$defs", {})


def _drop_validation_errors(operation: dict[str, Any]) -> None:
    operation.get("responses", {}).pop("422", None)


def complete(document: dict[str, Any], routes: Iterable[Any]) -> dict[str, Any]:
    documented = api_routes(routes)
    refs, definitions = _schemas_of(documented)
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    clash = set(components) & set(definitions)
    assert not clash, f"schema names defined twice in the document: {sorted(clash)}"
    components.update(definitions)
    error_ref = refs[(ErrorResponse, "serialization")]
    for route in documented:
        declared = contract_of(route)
        for method in sorted(route.methods):
            operation = document["paths"][route.path_format].get(method.lower())
            if operation is None:
                continue
            _drop_validation_errors(operation)
            responses = operation.setdefault("responses", {})
            if declared.body is not None:
                schema = refs[(declared.body, "validation")]
                operation["requestBody"] = {"required": True, "content": {declared.body_media_type: {"schema": schema}}}
            if declared.returns is not None:
                success = str(route.status_code or 200)
                answer = responses.setdefault(success, {"description": "Successful Response"})
                answer["content"] = {JSON: {"schema": refs[(declared.returns, "serialization")]}}
            for status in sorted(error_statuses(route)):
                responses[str(status)] = {
                    "description": ERROR_TITLES.get(status, "Error"),
                    "content": {JSON: {"schema": error_ref}},
                }
    return document


def install(app: FastAPI) -> None:
    """Serve the completed document at the app's openapi_url."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, routes=app.routes)
            app.openapi_schema = complete(document, app.routes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
