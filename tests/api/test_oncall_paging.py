"""On-Call Paging through the official client: pages for a team (by id or handle) or a user; acknowledge,
escalate, resolve; pages are cases of the on-call tenant, found with the case query language and with a timeline.
(The escalation itself runs on the caseworker: tests/caseworker/test_paging.py.)"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from datadog_api_client.exceptions import ApiException

from casem.adapters.storage.tables import oncall_notifications, oncall_pages
from casem.topology.tenants import ON_CALL
from tests.api.helpers import add_user
from tests.api.oncall_helpers import (
    event_types_of,
    make_team,
    on_call,
    oncall_outbox,
    page_id,
    page_request,
    paging,
    policy_request,
    step,
    target,
)
from tests.support.api_client import OrgClient


def team_with_policy(org: OrgClient, handle: str) -> tuple[str, str]:
    team = make_team(org, handle, [org.user_id])
    policy = on_call(org).create_on_call_escalation_policy(
        body=policy_request(handle, [step([target("users", org.user_id)])], team_ids=[team])
    )
    return team, policy.data.id


def test_a_page_for_a_team_is_a_case_with_a_timeline(org: OrgClient) -> None:
    team, policy = team_with_policy(org, "storage")
    api = paging(org)
    created = api.create_on_call_page(
        body=page_request("Disk full on db-3", "team_handle", "storage", tags=["service:db", "env:prod"])
    )
    assert str(created.data.type) == "pages"
    page = org.http.get(f"/api/v2/casem/on-call/pages/{created.data.id}").json()["data"]
    assert page["attributes"]["key"] == "PAGE-1" and page["attributes"]["status"] == "triggered"
    assert page["relationships"]["team"]["data"]["id"] == team
    assert page["relationships"]["policy"]["data"]["id"] == policy  # no routing rule: the team's policy

    api.acknowledge_on_call_page(page_id=page_id(created.data.id))
    api.acknowledge_on_call_page(page_id=page_id(created.data.id))  # again: accepted, nothing more recorded
    api.escalate_on_call_page(page_id=page_id(created.data.id))  # acknowledged: nothing to escalate
    api.resolve_on_call_page(page_id=page_id(created.data.id))
    page = org.http.get(f"/api/v2/casem/on-call/pages/{created.data.id}").json()["data"]
    assert page["attributes"]["status"] == "resolved"
    assert page["relationships"]["acknowledged_by"]["data"]["id"] == org.user_id
    cells = org.http.get(f"/api/v2/casem/on-call/pages/{created.data.id}/timeline").json()["data"]
    kinds = [c["attributes"]["cell_type"] for c in cells]
    assert kinds[:2] in (["CASE_CREATED", "PAGE_TRIGGERED"], ["PAGE_TRIGGERED", "CASE_CREATED"])
    assert kinds[2:] == ["PAGE_ACKNOWLEDGEMENT", "STATUS_CHANGE", "PAGE_RESOLUTION", "STATUS_CHANGE"]
    assert event_types_of(oncall_outbox(org)).count("page.acknowledged") == 1

    # Found with the case query language, like cases: its tags are attributes, its urgency a priority.
    def found(query: str) -> list[str]:
        body = org.http.get("/api/v2/casem/on-call/pages", params={"filter": query}).json()
        return [p["id"] for p in body["data"]]

    assert found("service:db priority:P1") == [created.data.id]
    assert found("status:closed disk") == [created.data.id]
    assert found("env:staging") == []


def test_routing_rules_pick_the_policy_and_the_urgency(org: OrgClient) -> None:
    team, default_policy = team_with_policy(org, "web")
    other = (
        on_call(org)
        .create_on_call_escalation_policy(body=policy_request("checkout", [step([target("users", org.user_id)])]))
        .data.id
    )
    rules = {
        "rules": [
            {"query": "service:checkout", "policy_id": other, "urgency": "low"},
            {"query": "", "policy_id": default_policy},
        ]
    }
    response = org.http.put(
        f"/api/v2/on-call/teams/{team}/routing-rules",
        json={"data": {"type": "team_routing_rules", "attributes": rules}},
    )
    assert response.status_code == 200, response.text
    checkout = paging(org).create_on_call_page(
        body=page_request("Checkout down", "team_id", team, tags=["service:checkout"])
    )
    search = org.http.get(f"/api/v2/casem/on-call/pages/{checkout.data.id}").json()["data"]
    assert search["relationships"]["policy"]["data"]["id"] == other and search["attributes"]["urgency"] == "low"
    other_page = paging(org).create_on_call_page(body=page_request("Search slow", "team_id", team, urgency="low"))
    read = org.http.get(f"/api/v2/casem/on-call/pages/{other_page.data.id}").json()["data"]
    assert read["relationships"]["policy"]["data"]["id"] == default_policy


def test_a_page_for_a_user_needs_no_policy(org: OrgClient) -> None:
    bob = add_user(org, "bob@example.com")
    created = paging(org).create_on_call_page(body=page_request("Look at this", "user_id", bob, urgency="low"))
    page = org.http.get(f"/api/v2/casem/on-call/pages/{created.data.id}").json()["data"]
    assert page["attributes"]["target"] == {"type": "user_id", "identifier": bob}
    assert page["relationships"]["policy"]["data"] is None


@pytest.mark.parametrize(
    ("attributes", "status", "pointer"),
    [
        ({"title": "", "urgency": "high", "target": {"type": "user_id", "identifier": "{me}"}}, 400,
         "/data/attributes/title"),
        ({"title": "t", "urgency": "critical", "target": {"type": "user_id", "identifier": "{me}"}}, 400,
         "/data/attributes/urgency"),
        ({"title": "t", "urgency": "high", "target": {"type": "team_handle", "identifier": "nobody"}}, 404,
         "/data/attributes/target/identifier"),
        ({"title": "t", "urgency": "high", "target": {"type": "user_id", "identifier": "{missing}"}}, 404,
         "/data/attributes/target/identifier"),
        ({"title": "t", "urgency": "high", "target": {"type": "pager", "identifier": "x"}}, 400,
         "/data/attributes/target/type"),
        ({"title": "t", "urgency": "high", "target": {"type": "team_handle", "identifier": "lonely"}}, 400,
         "/data/attributes/target/identifier"),
        ({"title": "t", "urgency": "high", "tags": "x", "target": {"type": "user_id", "identifier": "{me}"}}, 400,
         "/data/attributes/tags"),
    ],
)  # fmt: skip
def test_bad_pages_are_refused_with_the_field(org: OrgClient, attributes: dict, status: int, pointer: str) -> None:
    import json

    make_team(org, "lonely")  # a team with no rules and no policy: nothing to run
    raw = json.dumps({"data": {"type": "pages", "attributes": attributes}})
    raw = raw.replace("{me}", org.user_id).replace("{missing}", str(uuid.uuid4()))
    before = oncall_outbox(org)
    response = org.http.post("/api/v2/on-call/pages", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert response.json()["errors"][0]["source"]["pointer"] == pointer
    assert oncall_outbox(org) == before
    assert org.http.get("/api/v2/casem/on-call/pages").json()["data"] == []


def test_unknown_pages_are_not_found(org: OrgClient) -> None:
    for action in ("acknowledge_on_call_page", "escalate_on_call_page", "resolve_on_call_page"):
        with pytest.raises(ApiException) as missing:
            getattr(paging(org), action)(page_id=uuid.uuid4())
        assert missing.value.status == 404


def test_on_call_analytics_per_team_per_responder_and_out_of_hours(org: OrgClient) -> None:
    """MTTA and MTTR per team, pages per responder and out-of-hours pages, beside the case figures."""
    team, _ = team_with_policy(org, "payments")
    bob = add_user(org, "bob@example.com")
    made = [paging(org).create_on_call_page(body=page_request(f"p{n}", "team_id", team)).data.id for n in range(3)]
    paging(org).acknowledge_on_call_page(page_id=page_id(made[0]))
    paging(org).acknowledge_on_call_page(page_id=page_id(made[1]))
    paging(org).resolve_on_call_page(page_id=page_id(made[1]))
    saturday_night = datetime(2025, 3, 8, 23, 0, tzinfo=UTC)  # Saturday in UTC; in Tokyo, Sunday morning
    monday_noon = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)  # in Tokyo, 21:00
    timings = {
        made[0]: (saturday_night, saturday_night + timedelta(minutes=4), None),
        made[1]: (monday_noon, monday_noon + timedelta(minutes=2), monday_noon + timedelta(hours=1)),
        made[2]: (monday_noon, None, None),
    }

    async def backdate() -> None:
        async with org.server.context.uow(ON_CALL) as uow:
            for ident, (created, acked, resolved) in timings.items():
                await uow.execute(
                    sa.update(oncall_pages)
                    .where(oncall_pages.c.id == ident)
                    .values(created_at=created, acknowledged_at=acked, resolved_at=resolved)
                )
            for ident in made[:2]:  # as the caseworker records them: Bob notified of two pages
                await uow.execute(
                    sa.insert(oncall_notifications).values(
                        id=str(uuid.uuid4()), org_id=org.org_id, page_id=ident, idempotency_key=f"{ident}/bob",
                        user_id=bob, medium="sms", destination="+14155550100", round=0, step_index=0, status="sent",
                        attempts=1, created_at=monday_noon,
                    )
                )  # fmt: skip
            await uow.commit()

    org.server.call(backdate())
    body = org.http.get("/api/v2/casem/analytics").json()["data"]["attributes"]
    assert "cases_created" in body  # beside the case figures
    oncall = body["on_call"]
    [stats] = oncall["teams"]
    assert (stats["team_id"], stats["pages"], stats["acknowledged"], stats["resolved"]) == (team, 3, 2, 1)
    assert stats["mean_time_to_acknowledge_seconds"] == 180.0 and stats["mean_time_to_resolve_seconds"] == 3600.0
    responders = {r["user_id"]: r for r in oncall["responders"]}
    assert responders[bob] == {"user_id": bob, "pages_notified": 2, "pages_acknowledged": 0}
    assert responders[org.user_id]["pages_acknowledged"] == 2
    assert (oncall["out_of_hours"]["pages"], oncall["out_of_hours"]["share"]) == (1, 1 / 3)
    tokyo = org.http.get("/api/v2/casem/analytics", params={"time_zone": "Asia/Tokyo"}).json()["data"]["attributes"]
    assert tokyo["on_call"]["out_of_hours"]["pages"] == 3
    assert org.http.get("/api/v2/casem/analytics", params={"time_zone": "Moon/Base"}).status_code == 400


def test_a_routing_rule_posts_to_slack_and_teams_through_the_delivery_flavors(org: OrgClient) -> None:
    team, policy = team_with_policy(org, "edge")
    endpoint = {"kind": "MS_TEAMS_CHANNEL", "name": "edge-room", "url": "https://acme.webhook.office.com/hook"}
    created = org.http.post(
        "/api/v2/casem/notification_endpoints", json={"data": {"type": "notification_endpoint", "attributes": endpoint}}
    )
    assert created.status_code == 201, created.text
    actions = [
        {"type": "send_slack_message", "channel": "#edge", "workspace": "acme"},
        {"type": "send_teams_message", "channel": "edge-room", "team": "Edge", "tenant": "acme"},
    ]
    rules = {
        "data": {"type": "team_routing_rules", "attributes": {"rules": [{"policy_id": policy, "actions": actions}]}}
    }
    assert org.http.put(f"/api/v2/on-call/teams/{team}/routing-rules", json=rules).status_code == 200
    page = paging(org).create_on_call_page(body=page_request("CDN errors", "team_id", team)).data.id
    requested = [e for e in oncall_outbox(org) if e["type"] == "com.casem.notification.delivery_requested.v1"]
    by_channel = {e["data"]["channel"]: e["data"] for e in requested}
    assert set(by_channel) == {"slack", "msteams"} and all(e["caseid"] == page for e in requested)
    assert by_channel["slack"]["target"] == {"channel": "#edge", "workspace": "acme"}
    assert by_channel["msteams"]["target"]["url"] == endpoint["url"]
    assert by_channel["msteams"]["payload"]["@type"] == "MessageCard"

    actions[1]["channel"] = "no-such-room"
    response = org.http.put(f"/api/v2/on-call/teams/{team}/routing-rules", json=rules)
    assert response.status_code == 404
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/rules/0/actions/1/channel"
