"""The HTTP API continues a caller's trace: a change made in a traced request writes the trace into its outbox
envelope (CloudEvents' traceparent), which is how the relay and the flavors carry it on."""

from __future__ import annotations

import uuid

from tests.api.helpers import make_project, outbox
from tests.support.api_client import OrgClient


def test_a_traced_request_writes_its_trace_into_the_envelope(org: OrgClient) -> None:
    project = make_project(org)
    trace_id = uuid.uuid4().hex
    caller = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    response = org.http.post(
        "/api/v2/cases",
        headers={"traceparent": caller},
        json={
            "data": {
                "type": "case",
                "attributes": {"title": "traced", "type_id": "00000000-0000-0000-0000-000000000001"},
                "relationships": {"project": {"data": {"id": project.id, "type": "project"}}},
            }
        },
    )
    assert response.status_code == 201, response.text
    case_id = response.json()["data"]["id"]
    [created] = [e for e in outbox(org) if e["caseid"] == case_id and e["type"].endswith("case.created.v1")]
    version, traced_id, _span, _flags = created["traceparent"].split("-")
    assert (version, traced_id) == ("00", trace_id)  # the caller's trace, continued (the span is case-api's)
