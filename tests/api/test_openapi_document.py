"""The case-api OpenAPI document is complete: bodies, errors, and the same body models the routes parse with.

The document is read as served (/api/openapi.json); the body models are checked against the views' code:
each view's `parse_body(request, Model)` must parse with the model its `@contract(body=...)` documents, and a 409 is
documented exactly where the view's calls can reach a `Conflict`, a 502 where they reach a remote system; and
every answer the live server gives in any suite is one its route documents (tests/support/fixtures/case_api.py).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from casem.adapters.storage.conflicts import duplicate_is_conflict
from casem.domain.errors import Conflict
from casem.services.case_api.integrations.views import remotes_of
from casem.services.case_api.openapi import api_routes, contract_of
from tests.support.api_client import new_org
from tests.support.live_server import LiveServer

BODY_METHODS = {"post", "put", "patch"}
METHODS = BODY_METHODS | {"get", "delete"}

# Operations that take a body-taking method but read no body, each with its reason.
NO_BODY = {
    ("post", "/api/v2/cases/projects/{project_id}/favorites"): "the path names the project; no body",
    ("post", "/api/v2/cases/{case_id}/watchers/{user_uuid}"): "the path names the case and the watcher",
    ("post", "/api/v2/casem/notifications/read"): "marks every notification of the caller read",
    ("post", "/api/v2/casem/notifications/{notification_id}/read"): "the path names the notification",
    ("post", "/api/v2/cases/projects/{project_id}/rules/{rule_id}/enable"): "the path names the rule",
    ("post", "/api/v2/cases/projects/{project_id}/rules/{rule_id}/disable"): "the path names the rule",
    ("post", "/api/v2/casem/on-call/schedules/{schedule_id}/calendar-feed"): "issues a feed URL; nothing to send",
    ("post", "/api/v2/on-call/pages/{page_id}/acknowledge"): "Datadog's page actions take no body",
    ("post", "/api/v2/on-call/pages/{page_id}/escalate"): "Datadog's page actions take no body",
    ("post", "/api/v2/on-call/pages/{page_id}/resolve"): "Datadog's page actions take no body",
}


@pytest.fixture(scope="module")
def document(server: LiveServer) -> dict[str, Any]:
    return httpx.get(server.url + "/api/openapi.json").raise_for_status().json()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_body_taking_operation_documents_its_body(document: dict[str, Any]) -> None:
    found = operations(document)
    missing = [
        f"{m.upper()} {p}"
        for m, p, op in found
        if m in BODY_METHODS and "requestBody" not in op and (m, p) not in NO_BODY
    ]
    assert not missing, "operations without a requestBody:\n" + "\n".join(missing)
    stale = [f"{m.upper()} {p}" for (m, p) in NO_BODY if "requestBody" in document["paths"].get(p, {}).get(m, {})]
    assert not stale, "listed as taking no body, yet documented with one:\n" + "\n".join(stale)
    assert sum(1 for m, _, _ in found if m in BODY_METHODS) > 70


def test_every_operation_documents_its_errors(document: dict[str, Any]) -> None:
    error_ref = "#/components/schemas/ErrorResponse"
    problems = []
    for method, path, operation in operations(document):
        responses = operation["responses"]
        errors = {status for status in responses if status.startswith("4")}
        if not errors:
            problems.append(f"{method.upper()} {path}: no 4xx response")
        if "422" in responses:
            problems.append(f"{method.upper()} {path}: documents a 422, which casem never answers")
        for status in errors:
            schema = responses[status].get("content", {}).get("application/json", {}).get("schema")
            if schema != {"$ref": error_ref}:
                problems.append(f"{method.upper()} {path}: {status} is not an ErrorResponse")
        if "requestBody" in operation and not {"400", "413"} <= errors:
            problems.append(f"{method.upper()} {path}: takes a body but documents no 400 and 413")
    assert not problems, "\n".join(problems)
    assert "ErrorResponse" in document["components"]["schemas"]


def test_case_search_documents_its_query_parameters(document: dict[str, Any]) -> None:
    names = {p["name"] for p in document["paths"]["/api/v2/cases"]["get"]["parameters"] if p["in"] == "query"}
    assert {"page[size]", "page[number]", "sort[field]", "sort[asc]", "filter"} <= names


def test_main_answers_are_typed(document: dict[str, Any]) -> None:
    typed = {
        ("get", "/api/v2/cases/{case_id}"): ("200", "CaseResponse"),
        ("post", "/api/v2/cases"): ("201", "CaseResponse"),
        ("get", "/api/v2/cases"): ("200", "CasesResponse"),
        ("get", "/api/v2/cases/projects/{project_id}"): ("200", "ProjectResponse"),
        ("get", "/api/v2/cases/{case_id}/timelines"): ("200", "TimelineResponse"),
    }
    for (method, path), (status, model) in typed.items():
        schema = document["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}, (method, path)
        assert document["components"]["schemas"][model]["properties"]["data"]


def test_every_json_answer_is_typed(document: dict[str, Any]) -> None:
    """Every successful JSON answer names its model: none is left an untyped object (or an empty schema)."""
    untyped = []
    answers = 0
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if not status.startswith("2") or schema is None:
                continue
            answers += 1
            ref = schema.get("$ref", "")
            if not ref.startswith("#/components/schemas/"):
                untyped.append(f"{method.upper()} {path} {status}: {schema}")
            else:
                assert document["components"]["schemas"][ref.rsplit("/", 1)[1]].get("properties"), ref
    assert answers > 140
    assert not untyped, "\n".join(untyped)


def _parsed_models(endpoint: Any) -> list[Any]:
    """The models a view passes to parse_body, resolved in the view's module."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(endpoint)))
    models = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "parse_body":
            models.append(eval(compile(ast.Expression(node.args[1]), "<model>", "eval"), endpoint.__globals__))  # noqa: S307 - a name in the view's own module
    return models


def test_documented_bodies_are_the_models_the_views_parse(server: LiveServer) -> None:
    """One source of truth: the documented body is the model parse_body validates with, on every route."""
    mismatches = []
    checked = 0
    for route in api_routes(server.app.routes):
        declared = contract_of(route).body
        # A view may hand its request to a shared helper of its module (the application key updates do).
        parsed = _parsed_models(route.endpoint) or [
            model for helper in _called_helpers(route.endpoint) for model in _parsed_models(helper)
        ]
        if declared is None and not parsed:
            continue
        checked += 1
        if declared is not None and declared.__module__.endswith("multipart") and not parsed:
            continue  # the upload form is read by attachments/multipart.py's streaming parser, not parse_body
        if parsed != [declared]:
            mismatches.append(f"{sorted(route.methods)} {route.path_format}: documents {declared}, parses {parsed}")
    assert not mismatches, "\n".join(mismatches)
    assert checked > 70


def _called_helpers(endpoint: Any) -> list[Any]:
    """Module-level functions a view calls by name (a view may hand its request to a shared helper)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(endpoint)))
    names = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return [endpoint.__globals__[name] for name in names if inspect.isfunction(endpoint.__globals__.get(name))]


# Statuses a route answers only when its calls reach one of these, and which the document must list exactly there:
# 409 a Conflict (raised, or a unique key already taken turned into one), 502 a remote Jira or ServiceNow (the views
# reach them only through remotes_of; a transient failure of theirs is a 502).
REACHED_STATUSES: dict[int, tuple[Any, ...]] = {409: (Conflict, duplicate_is_conflict), 502: (remotes_of,)}
# Routes that answer one of them through a call the check cannot follow (a method of an object, not a function or a
# class's attribute named in the code), each with the reason.
BEYOND_THE_CALLS = {
    ("delete", "/api/v2/cases/link/{link_id}", 409): "CaseLink.delete refuses the link a merge recorded",
}


def _named(node: ast.AST, namespace: dict[str, Any]) -> Any:
    """What a name or a dotted name (module.function, Class.attribute) in a function's code refers to, if it can
    be told from the function's module alone."""
    if isinstance(node, ast.Name):
        return namespace.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _named(node.value, namespace)
        if isinstance(base, (types.ModuleType, type)):
            return getattr(base, node.attr, None)
    return None


def call_path(function: Callable[..., Any], targets: tuple[Any, ...], seen: set[Any] | None = None) -> list[str]:
    """The chain of casem functions by which `function` reaches one of `targets`, following every function it names
    (called or passed on); empty when none does."""
    seen = set() if seen is None else seen
    function = inspect.unwrap(function)
    if not inspect.isfunction(function) or not function.__module__.startswith("casem.") or function in seen:
        return []
    seen.add(function)
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Name, ast.Attribute)):
            continue
        target = _named(node, function.__globals__)
        if any(target is wanted for wanted in targets):
            return [function.__qualname__]
        if inspect.isfunction(target) and (found := call_path(target, targets, seen)):
            return [function.__qualname__, *found]
    return []


def test_the_call_check_follows_views_into_the_use_cases() -> None:
    from casem.services.case_api.integrations import views as integration_views
    from casem.services.case_api.projects import views as project_views

    # The view calls the use case, which raises Conflict for a key already taken.
    assert call_path(project_views.create_project, REACHED_STATUSES[409]) == ["create_project", "create_project"]
    assert call_path(project_views.get_project, REACHED_STATUSES[409]) == []
    listing = integration_views.list_service_now_users
    assert call_path(listing, REACHED_STATUSES[502]) == ["list_service_now_users", "_listing"]


@pytest.mark.parametrize("status", sorted(REACHED_STATUSES))
def test_a_status_is_documented_exactly_where_a_route_can_answer_it(
    server: LiveServer, document: dict[str, Any], status: int
) -> None:
    missing, needless, answering = [], [], 0
    for route in api_routes(server.app.routes):
        path = call_path(route.endpoint, REACHED_STATUSES[status])
        for method in (m.lower() for m in route.methods):
            beyond = BEYOND_THE_CALLS.get((method, route.path_format, status))
            can_answer = bool(path) or beyond is not None
            documented = str(status) in document["paths"][route.path_format][method]["responses"]
            answering += can_answer
            label = f"{method.upper()} {route.path_format}"
            if can_answer and not documented:
                missing.append(f"{label} (via {' > '.join(path) or beyond})")
            if documented and not can_answer:
                needless.append(label)
    assert not missing, f"can answer {status} but does not document it (add it to errors= of its @contract):\n" + (
        "\n".join(missing)
    )
    assert not needless, f"documents a {status} it never answers:\n" + "\n".join(needless)
    assert answering > 10


def test_the_server_records_each_answer_by_its_documented_route(server: LiveServer, document: dict[str, Any]) -> None:
    # What the suites' after-test check reads (tests/support/fixtures/case_api.py): the route's documented path.
    org = new_org(server, "answers")
    since = len(server.recorder.answers)
    missing = org.http.get(f"/api/v2/cases/projects/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert ("GET", "/api/v2/cases/projects/{project_id}", 404) in server.recorder.answers[since:]
    assert server.recorder.undocumented(document, since) == []
    # The same route answering a status its document leaves out is reported.
    assert "409" not in document["paths"]["/api/v2/cases/projects/{project_id}"]["get"]["responses"]
    server.recorder.answers.append(("GET", "/api/v2/cases/projects/{project_id}", 409))
    try:
        assert server.recorder.undocumented(document, since) == ["GET /api/v2/cases/projects/{project_id} 409"]
    finally:
        server.recorder.answers.pop()
    org.api_client.close()
    org.http.close()
