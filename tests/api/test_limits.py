"""Limits people can see, against the live server: per-org and per-key rate limits with Datadog's
X-RateLimit-* headers and 429 answers, deadlines on request headers and bodies, and metrics whose
labels no request can invent."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from casem.app.identity.service import issue_key
from casem.domain.identity import APP_KEY
from casem.services.case_api.http import boundary
from casem.services.case_api.http import server as http_server
from casem.services.common.rate_limit import RateLimiter
from casem.topology.config import ConfigError, rate_limits
from casem.topology.datacenters import RateLimits
from tests.support.api_client import OrgClient
from tests.support.live_server import LiveServer

RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-period", "x-ratelimit-remaining", "x-ratelimit-reset")


@pytest.fixture
def tight_limits(server: LiveServer) -> Iterator[None]:
    """Small limits on the shared test server for one test, then the configured ones again."""
    configured = server.app.state.rate_limiter
    server.app.state.rate_limiter = RateLimiter(RateLimits(period_s=3600, per_org=8, per_key=5))
    yield
    server.app.state.rate_limiter = configured


def second_key(org: OrgClient) -> str:
    async def issue() -> str:
        async with org.server.context.uow() as uow:
            key = issue_key(uow, org.org_id, APP_KEY, "second", user_id=org.user_id)
            await uow.commit()
            return key.secret

    return org.server.call(issue())


def test_each_answer_carries_datadogs_rate_limit_headers_and_the_limit_is_a_429(
    org: OrgClient, other_org: OrgClient, tight_limits: None
) -> None:
    remaining = []
    for _ in range(5):
        answer = org.http.get("/api/v2/cases/projects")
        assert answer.status_code == 200
        assert all(name in answer.headers for name in RATE_HEADERS)
        assert (answer.headers["x-ratelimit-limit"], answer.headers["x-ratelimit-period"]) == ("5", "3600")
        assert answer.headers["x-ratelimit-name"] == "casem-key"
        remaining.append(int(answer.headers["x-ratelimit-remaining"]))
    assert remaining == [4, 3, 2, 1, 0]

    refused = org.http.get("/api/v2/cases/projects")
    assert refused.status_code == 429
    [error] = refused.json()["errors"]
    assert error["status"] == "429" and "5 requests per 3600 s for this key" in error["detail"]
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert 0 < int(refused.headers["retry-after"]) == int(refused.headers["x-ratelimit-reset"]) <= 3600

    # Another key of the same org has its own key window, until the org's (8) runs out.
    other_key = {"DD-API-KEY": org.creds.api_key, "DD-APPLICATION-KEY": second_key(org)}
    statuses = [org.http.get("/api/v2/cases/projects", headers=other_key).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    last = org.http.get("/api/v2/cases/projects", headers=other_key)
    assert last.headers["x-ratelimit-name"] == "casem-org" and "for this org" in last.json()["errors"][0]["detail"]
    # Another org is not slowed down by this one.
    assert other_org.http.get("/api/v2/cases/projects").status_code == 200


def test_the_official_client_waits_for_the_window_to_reset_and_succeeds(org: OrgClient, server: LiveServer) -> None:
    """urllib3 under datadog-api-client honours Retry-After on a 429: the window's end, a short one here."""
    limiter = RateLimiter(RateLimits(period_s=2, per_org=100, per_key=1))
    seen = []
    counting = limiter.hit

    def hit(org_id: str, key_id: str):  # type: ignore[no-untyped-def]
        seen.append(decision := counting(org_id, key_id))
        return decision

    limiter.hit = hit  # type: ignore[method-assign]
    configured, server.app.state.rate_limiter = server.app.state.rate_limiter, limiter
    try:
        for _ in range(3):
            org.cases.get_projects()  # the 2nd and 3rd fall in a full window: 429, wait, retry
    finally:
        server.app.state.rate_limiter = configured
    assert any(not d.allowed for d in seen) and sum(d.allowed for d in seen) == 3


def test_rate_limit_headers_ride_on_errors_and_empty_answers_too(org: OrgClient, tight_limits: None) -> None:
    missing = org.http.get("/api/v2/cases/projects/5b3bd0b7-8d1c-4b6e-9d0a-2f3a3f6f4b11")
    assert missing.status_code == 404 and missing.headers["x-ratelimit-remaining"] == "4"
    read_all = org.http.post("/api/v2/casem/notifications/read")
    assert read_all.status_code == 204 and read_all.headers["x-ratelimit-remaining"] == "3"


def test_the_window_starts_over_and_refusals_use_nothing_up() -> None:
    now = [1000.0]
    limiter = RateLimiter(RateLimits(period_s=60, per_org=3, per_key=2), clock=lambda: now[0])
    assert [limiter.hit("o", "k1").allowed for _ in range(3)] == [True, True, False]  # type: ignore[union-attr]
    assert limiter.hit("o", "k2").remaining == 0  # type: ignore[union-attr]  # the org's third request
    refused = limiter.hit("o", "k3")
    assert refused is not None and (refused.allowed, refused.name) == (False, "org")
    now[0] += 60
    fresh = limiter.hit("o", "k1")
    assert fresh is not None and fresh.allowed and fresh.remaining == 1
    assert RateLimiter(RateLimits(per_org=0, per_key=0)).hit("o", "k") is None  # both off


def test_rate_limits_are_configured_per_datacenter(tmp_path: Path) -> None:
    assert rate_limits(env={}) == RateLimits()
    config = tmp_path / "casem.yaml"
    config.write_text("rate_limits: {per_org: 100, period_s: 10}\n")
    env = {"CASEM_CONFIG": str(config)}
    assert rate_limits(env=env) == RateLimits(period_s=10, per_org=100, per_key=1200)
    assert rate_limits(env={**env, "CASEM_RATE_LIMIT_PER_KEY": "0"}).per_key == 0
    assert rate_limits("us1.prod.dog", env={}) == RateLimits()  # the catalog's (the defaults there)
    with pytest.raises(ConfigError, match="CASEM_RATE_LIMIT_PER_ORG"):
        rate_limits(env={"CASEM_RATE_LIMIT_PER_ORG": "lots"})
    with pytest.raises(ConfigError, match="invalid rate limits"):
        rate_limits(env={"CASEM_RATE_LIMIT_PERIOD_S": "0"})


# -- deadlines ------------------------------------------------------------------------------------------


def _address(live: LiveServer) -> tuple[str, int]:
    host, port = live.url.removeprefix("http://").split(":")
    return host, int(port)


def _read_all(conn: socket.socket) -> bytes:
    received = b""
    while chunk := conn.recv(65_536):
        received += chunk
    return received


def test_a_connection_that_sends_no_request_gets_a_408(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_server.HeaderDeadlineProtocol, "header_timeout_s", 1.0)
    started = time.monotonic()
    with socket.create_connection(_address(server), timeout=10) as conn:
        answer = _read_all(conn)
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 1 s" in answer
    assert time.monotonic() - started < 5


def test_headers_trickled_one_byte_at_a_time_still_meet_the_deadline(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slowloris: each byte used to cancel uvicorn's keep-alive timer, so the connection never timed out."""
    monkeypatch.setattr(http_server.HeaderDeadlineProtocol, "header_timeout_s", 1.0)
    started = time.monotonic()
    with socket.create_connection(_address(server), timeout=10) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: casem\r\n")
        closed = False
        for byte in b"X-Slow: " + b"a" * 40:
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.1)
            if time.monotonic() - started > 3:
                break
        answer = b"" if closed else _read_all(conn)
    assert closed or answer.startswith(b"HTTP/1.1 408"), answer
    assert time.monotonic() - started < 4
    # A prompt client on a new connection is served as usual.
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_a_stalled_body_is_a_408(org: OrgClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boundary, "BODY_IDLE_TIMEOUT_S", 1.0)
    host, port = _address(org.server)
    request = (
        f"POST /api/v2/cases HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
        f"DD-API-KEY: {org.creds.api_key}\r\nDD-APPLICATION-KEY: {org.creds.app_key}\r\n\r\n"
        '{"data": '
    ).encode()
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=10) as conn:
        conn.sendall(request)
        answer = _read_all(conn).decode()
    assert answer.startswith("HTTP/1.1 408"), answer
    assert "nothing arrived for 1 s" in answer and time.monotonic() - started < 5


# -- metrics ----------------------------------------------------------------------------------------------


def test_invented_methods_and_paths_add_no_metric_series(org: OrgClient) -> None:
    for method in ("FOOBAR", "X-INVENTED-1", "BREW"):
        org.http.request(method, "/api/v2/cases")
        org.http.request(method, f"/no/such/{method}")
    metrics = org.http.get("/metrics").text
    assert "FOOBAR" not in metrics and "BREW" not in metrics and "/no/such" not in metrics
    assert 'method="other"' in metrics and 'route="unmatched"' in metrics
