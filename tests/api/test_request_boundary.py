"""The request boundary, against the live server on SQLite and PostgreSQL: every malformed body, number,
string, page or query the fuzzing found as a server error is now a 400 (or a 413 for size) with a JSON:API
error saying what and where, and a body over the limit is refused while it streams in.

Each test here is the regression test of one defect of the hardening issue (they answered 500 before)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import Request

from casem.app.context import AppContext
from casem.services.case_api.http.app import create_app
from casem.services.case_api.jsonapi import MAX_BODY_BYTES, MAX_JSON_DEPTH, read_json
from tests.api.helpers import make_case, make_project
from tests.support.api_client import OrgClient

CASES = "/api/v2/cases"


def error_of(answer: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    [error] = answer.json()["errors"]
    assert error["status"] == str(status) and error["detail"]
    return error


def case_document(project_id: str, **attributes: Any) -> dict[str, Any]:
    return {
        "data": {
            "type": "case",
            "attributes": {"title": "t", "type_id": "00000000-0000-0000-0000-000000000001", **attributes},
            "relationships": {"project": {"data": {"id": project_id, "type": "project"}}},
        }
    }


def post_raw(org: OrgClient, path: str, raw: bytes) -> httpx.Response:
    return org.http.post(path, content=raw, headers={"Content-Type": "application/json"})


# -- JSON decoding --------------------------------------------------------------------------------------


def test_invalid_utf8_in_a_json_body_is_a_400(org: OrgClient) -> None:
    project = make_project(org)
    document = json.dumps(case_document(project.id, title="caf\u00e9"), ensure_ascii=False).encode()
    raw = document.replace("caf\u00e9".encode(), b"caf\xe9")  # Latin-1 bytes where UTF-8 is due
    assert raw != document
    error = error_of(post_raw(org, CASES, raw))
    assert "not valid UTF-8" in error["detail"] and error["source"] == {"pointer": ""}


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 200_000])
def test_deep_nesting_is_a_400(org: OrgClient, depth: int) -> None:
    project = make_project(org)
    nested = "[" * depth + "]" * depth
    raw = json.dumps(case_document(project.id, custom_attributes={"x": "NESTED"})).replace('"NESTED"', nested)
    error = error_of(post_raw(org, CASES, raw.encode()))
    assert f"deeper than {MAX_JSON_DEPTH} levels" in error["detail"]


@pytest.mark.parametrize(
    "number", ["9" * 5_000, "-" + "9" * 5_000, str(2**63), "1e999", "-1e999", "NaN", "Infinity", "-Infinity"]
)
def test_numbers_casem_cannot_hold_are_a_400_with_their_pointer(org: OrgClient, number: str) -> None:
    project = make_project(org)
    raw = json.dumps(case_document(project.id, custom_attributes={"big": "NUMBER"})).replace('"NUMBER"', number)
    error = error_of(post_raw(org, CASES, raw.encode()))
    if number.lstrip("-").isalpha():  # NaN and Infinity are not JSON at all
        assert error["source"] == {"pointer": ""} and "not a JSON value" in error["detail"]
    else:
        assert error["source"] == {"pointer": "/data/attributes/custom_attributes/big"}, error
    assert len(error["detail"]) < 200  # the number is not echoed back


@pytest.mark.parametrize(
    ("escaped", "what"),
    [("\\ud800", "lone UTF-16 surrogate"), ("x\\udfffy", "lone UTF-16 surrogate"), ("a\\u0000b", "NUL")],
)
def test_lone_surrogates_and_nul_in_strings_are_a_400(org: OrgClient, escaped: str, what: str) -> None:
    project = make_project(org)
    raw = json.dumps(case_document(project.id, title="TITLE")).replace('"TITLE"', f'"{escaped}"')
    error = error_of(post_raw(org, CASES, raw.encode()))
    assert what in error["detail"] and error["source"] == {"pointer": "/data/attributes/title"}
    # In a member name too, where the pointer names the object holding it.
    raw = json.dumps(case_document(project.id, custom_attributes={"KEY": 1})).replace('"KEY"', f'"{escaped}"')
    error = error_of(post_raw(org, CASES, raw.encode()))
    assert what in error["detail"] and error["source"] == {"pointer": "/data/attributes/custom_attributes"}


def test_malformed_json_says_where(org: OrgClient) -> None:
    error = error_of(post_raw(org, CASES, b'{"data": {"type": "case",}}'))
    assert "line 1 column" in error["detail"] and error["source"] == {"pointer": ""}
    assert error_of(post_raw(org, CASES, b"   "))["detail"].startswith("request body is empty")


# -- body size ------------------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_a_413_naming_the_limit(org: OrgClient) -> None:
    error = error_of(post_raw(org, CASES, b" " * (MAX_BODY_BYTES + 1)), 413)
    assert str(MAX_BODY_BYTES) in error["detail"]


def test_a_chunked_body_over_the_limit_is_a_413(org: OrgClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):  # 2.5 MB without a Content-Length
            yield b" " * 65_536

    answer = org.http.post(CASES, content=chunks(), headers={"Content-Type": "application/json"})
    assert str(MAX_BODY_BYTES) in error_of(answer, 413)["detail"]


def test_a_declared_200_mb_body_is_refused_before_it_is_sent(org: OrgClient) -> None:
    """The server answers 413 on the headers alone: the client has sent 0 bytes of the 200 MB."""
    host, port = org.server.url.removeprefix("http://").split(":")
    request = (
        f"POST {CASES} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {200 * 1024 * 1024}\r\nDD-API-KEY: {org.creds.api_key}\r\n"
        f"DD-APPLICATION-KEY: {org.creds.app_key}\r\n\r\n"
    ).encode()
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        received = b""
        while chunk := conn.recv(65_536):  # the server closes the connection after its answer
            received += chunk
    answer = received.decode()
    assert answer.startswith("HTTP/1.1 413"), answer
    assert str(MAX_BODY_BYTES) in answer and time.monotonic() - started < 5


def test_an_oversized_body_is_never_read_whole() -> None:
    """At the ASGI level, through the app's own middleware and error handling: of a 200 MB chunked body
    offered 1 MB at a time, a route reading JSON takes at most the limit and one chunk before the 413 (it
    was read whole, server memory 174 -> 568 MB, then answered 400)."""
    app = create_app(AppContext())

    @app.post("/test/read-json")
    async def read_body(request: Request) -> dict[str, Any]:
        return {"read": await read_json(request)}

    chunk = b" " * (1024 * 1024)
    offered = 200
    taken = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal taken
        taken += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": taken < offered * len(chunk)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/test/read-json",
        "raw_path": b"/test/read-json",
        "query_string": b"",
        "headers": [(b"host", b"casem"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("casem", 80),
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert str(MAX_BODY_BYTES) in body["errors"][0]["detail"]
    assert taken <= MAX_BODY_BYTES + len(chunk) < offered * len(chunk)


# -- pages, bulk, queries, NUL in the URL ----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/v2/casem/audit", "/api/v2/casem/notifications", "/api/v2/users", "/api/v2/team", CASES],
)
@pytest.mark.parametrize("number", ["99999999999999999999999", "9" * 5_000, "-1", "abc"])
def test_page_numbers_past_the_range_are_a_400(org: OrgClient, path: str, number: str) -> None:
    answer = org.http.get(path, params={"page[number]": number})
    error = error_of(answer)
    assert error.get("source") in ({"parameter": "page[number]"}, None), error
    assert "page[number]" in error["detail"] and len(error["detail"]) <= 1000


@pytest.mark.parametrize("kind", [["priority"], {"a": 1}, 5, None, True])
def test_bulk_with_a_type_that_is_not_a_string_is_a_400(org: OrgClient, kind: Any) -> None:
    case = make_case(org, make_project(org).id)
    document = {"data": {"type": "bulk", "attributes": {"case_ids": [case.id], "type": kind, "payload": {}}}}
    error = error_of(org.http.post(f"{CASES}/bulk", json=document))
    assert error["source"] == {"pointer": "/data/attributes/type"}


@pytest.mark.parametrize(
    ("query", "limit"),
    [
        ("(" * 400 + "disk" + ")" * 400, "deeper than 16 levels"),
        ("NOT " * 400 + "disk", "deeper than 16 levels"),
        (" OR ".join(f"w{i}" for i in range(1_000)), "characters long; the limit is 4096"),
        (" OR ".join(["a"] * 500), "terms; the limit is 100"),
        ("x" * 10_000, "characters long; the limit is 4096"),
    ],
)
def test_query_limits_are_checked_before_any_query_is_built(org: OrgClient, query: str, limit: str) -> None:
    error = error_of(org.http.get(CASES, params={"filter": query}))
    assert limit in error["detail"] and len(error["detail"]) < 200
    aggregate = {
        "data": {"type": "aggregate", "attributes": {"query_filter": query, "group_by": {"groups": ["status"]}}}
    }
    assert limit in error_of(org.http.post(f"{CASES}/aggregate", json=aggregate))["detail"]
    assert limit in error_of(org.http.get(f"{CASES}/count", params={"query_filter": query}))["detail"]


def test_a_syntax_error_quotes_a_short_excerpt_only(org: OrgClient) -> None:
    error = error_of(org.http.get(CASES, params={"filter": "status: " + "x" * 4_000}))
    assert len(error["detail"]) < 200


@pytest.mark.parametrize("url", [f"{CASES}/%00", f"{CASES}?filter=a%00b", "/api/v2/users?filter=%00"])
def test_a_nul_in_the_path_or_query_is_a_400(org: OrgClient, url: str) -> None:
    assert "NUL" in error_of(org.http.get(url))["detail"]


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/api/v2/users", "filter"),
        ("/api/v2/team", "filter[keyword]"),
        ("/api/v2/api_keys", "filter"),
        ("/api/v2/current_user/application_keys", "filter"),
    ],
)
def test_a_text_filter_longer_than_any_stored_value_is_a_400(org: OrgClient, path: str, parameter: str) -> None:
    """60,000 characters: SQLite refused the LIKE pattern ('pattern too complex') and the answer was a 500."""
    error = error_of(org.http.get(path, params={parameter: "a" * 60_000}))
    assert "at most 1,000" in error["detail"]
    assert org.http.get(path, params={parameter: "a" * 1_000}).status_code == 200
