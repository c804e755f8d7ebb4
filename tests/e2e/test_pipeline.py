"""API → outbox → relay → bus → audit-trail and analytics flavors → casem's audit and analytics endpoints."""

from __future__ import annotations

import time

from casem.adapters.bus.embedded import EmbeddedBus
from casem.cli.local_stack import LocalWorkers
from tests.api.helpers import make_case, make_project
from tests.support.api_client import OrgClient


def wait_for(check, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "the pipeline did not catch up in time"
        time.sleep(0.2)


def test_changes_reach_the_audit_trail_and_analytics(org: OrgClient, tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = org.server
    bus = EmbeddedBus(tmp_path / "bus.db")
    workers = LocalWorkers(server.context, bus)
    server.call(workers.start())
    try:
        project = make_project(org, "PIPE")
        case = make_case(org, project.id, "Pipeline case", priority="P2")
        org.http.post(
            f"/api/v2/cases/{case.id}/status",
            json={"data": {"type": "case", "attributes": {"status": "CLOSED"}}},
        ).raise_for_status()

        def audited():  # type: ignore[no-untyped-def]
            body = org.http.get("/api/v2/casem/audit", params={"case_id": case.id}).json()
            return body if body["meta"]["page"]["total"] >= 2 else None

        entries = wait_for(audited)["data"]
        assert [e["attributes"]["event_type"] for e in entries] == ["case.status_changed", "case.created"]
        assert entries[0]["attributes"]["actor_id"] == org.user_id
        assert entries[0]["attributes"]["changes"]["status"] == {"old": "OPEN", "new": "CLOSED"}

        def analysed():  # type: ignore[no-untyped-def]
            data = org.http.get("/api/v2/casem/analytics", params={"project_id": project.id}).json()["data"]
            return data if data["attributes"]["cases_closed"] == 1 else None

        attributes = wait_for(analysed)["attributes"]
        assert attributes["cases_created"] == 1 and attributes["open_by_priority"] == {}
        assert attributes["mean_time_to_close_seconds"] >= 0
    finally:
        server.call(workers.stop())
        server.call(bus.close())


def test_another_orgs_audit_is_not_visible(org: OrgClient, other_org: OrgClient) -> None:
    project = make_project(org)
    case = make_case(org, project.id)
    assert other_org.http.get("/api/v2/casem/audit", params={"case_id": case.id}).status_code == 404
    assert other_org.http.get("/api/v2/casem/analytics", params={"project_id": project.id}).status_code == 404
