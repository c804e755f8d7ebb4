"""Where the on-call tenant is not deployed (us1.fed.dog), every on-call route answers 503 with a clear message,
while the case-management API, users and teams included, keeps working."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from casem.topology.tenants import CASE_MANAGEMENT
from tests.api.oncall_helpers import make_team
from tests.support.api_client import OrgClient, new_org
from tests.support.databases import tenant_endpoints
from tests.support.live_server import LiveServer


@pytest.fixture
def fed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OrgClient]:
    monkeypatch.setenv("CASEM_DATACENTER", "us1.fed.dog")
    with tenant_endpoints("sqlite", tmp_path) as endpoints:
        live = LiveServer({CASE_MANAGEMENT: endpoints[CASE_MANAGEMENT]}).start()
        try:
            yield new_org(live)
        finally:
            live.stop()


def test_on_call_answers_503_where_the_tenant_is_not_deployed(fed: OrgClient) -> None:
    team = make_team(fed, "sre", [fed.user_id])  # teams and memberships are case-management's: they work
    some = str(uuid.uuid4())
    for method, path in [
        ("GET", "/api/v2/on-call/schedules"),
        ("GET", f"/api/v2/on-call/schedules/{some}"),
        ("POST", "/api/v2/on-call/escalation-policies"),
        ("GET", f"/api/v2/on-call/teams/{team}/routing-rules"),
        ("GET", f"/api/v2/on-call/users/{fed.user_id}/notification-channels"),
        ("POST", "/api/v2/on-call/pages"),
        ("POST", f"/api/v2/on-call/pages/{some}/acknowledge"),
        ("GET", "/api/v2/casem/on-call/pages"),
    ]:
        response = fed.http.request(method, path, json={"data": {}})
        assert response.status_code == 503, f"{method} {path}: {response.text}"
        detail = response.json()["errors"][0]["detail"]
        assert detail == "the on-call tenant is not available in datacenter us1.fed.dog", detail
    assert fed.http.get(f"/api/v2/team/{team}/memberships").status_code == 200
