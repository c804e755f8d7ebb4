"""watcher-notifications (the in-app inbox and its API) and notification-rules (rules → delivery rows and
`notification.delivery_requested` events through the outbox); rule matching in the domain."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import sqlalchemy as sa

from casem.adapters.http import AllowList
from casem.adapters.storage.tables import domain_events, domain_events_pending, notification_deliveries, notifications
from casem.app.cases.service import NewCase, create_case, get_case
from casem.app.context import AppContext
from casem.app.identity.service import BootstrapCredentials, bootstrap_org, create_user, issue_key
from casem.app.notification_rules.service import create_endpoint, create_rule
from casem.app.projects.service import create_project
from casem.app.timeline.service import add_comment
from casem.app.watchers.service import watch
from casem.domain.identity import APP_KEY
from casem.domain.notifications import (
    DELIVERY_REQUESTED,
    CaseView,
    NotificationRule,
    query_matches,
    rule_fires,
    trigger_matches,
)
from casem.services.case_api.http.app import create_app
from casem.services.case_event_handler.framework import Event, HandlerServices
from casem.services.case_event_handler.runner import FlavorRunner
from casem.services.case_event_handler.service import load_flavor
from tests.handlers.test_runner import count, publish_outbox, run_until
from tests.support.bus_harness import Harness


@dataclass
class Org:
    creds: BootstrapCredentials
    project_id: str
    bob: str
    bob_app_key: str

    @property
    def alice(self) -> str:
        return self.creds.user_id


async def make_org(ctx: AppContext, key: str = "NOT") -> Org:
    async with ctx.uow() as uow:
        creds = await bootstrap_org(uow, f"org-{key}", "alice@example.com")
        bob = await create_user(uow, creds.org_id, "bob@example.com", name="Bob")
        project = await create_project(uow, creds.org_id, creds.user_id, key=key, name="Notifications")
        bob_key = issue_key(uow, creds.org_id, APP_KEY, "bob", user_id=bob.id)
        await uow.commit()
    return Org(creds, project.id, bob.id, bob_key.secret)


async def new_case(ctx: AppContext, org: Org, title: str, priority: str = "P3") -> str:
    async with ctx.uow() as uow:
        case = await create_case(uow, org.creds.org_id, org.alice, NewCase(org.project_id, title, priority=priority))
        await uow.commit()
    return case.id


async def test_watchers_hear_of_changes_by_others_and_read_their_inbox(context: AppContext, harness: Harness) -> None:
    org = await make_org(context)
    case_id = await new_case(context, org, "Disk full on web-1")
    async with context.uow() as uow:
        await watch(uow, org.creds.org_id, org.alice, case_id, org.alice)  # her own doing: no entry
        await watch(uow, org.creds.org_id, org.alice, case_id, org.bob)  # bob is told alice added him
        await uow.commit()
    async with context.uow() as uow:
        (await get_case(uow, org.creds.org_id, case_id)).prioritize("P1", org.alice)  # bob hears of it
        await uow.commit()
    async with context.uow() as uow:
        await add_comment(uow, org.creds.org_id, org.bob, case_id, "on it")  # alice hears of it
        await uow.commit()

    bus = harness.bus()
    topic, _ = await publish_outbox(context, harness, bus)
    runner = FlavorRunner(load_flavor("watcher-notifications"), context, harness.producer(bus))

    async def three() -> bool:
        return await count(context, notifications) == 3

    await run_until(runner, harness, bus, topic, harness.name("watchers"), three)
    async with context.uow(read_only=True) as uow:
        rows = (await uow.execute(sa.select(notifications).order_by(notifications.c.created_at))).all()
    assert sorted((r.user_id, r.event_type) for r in rows) == sorted(
        [
            (org.bob, "case.watcher_added"),
            (org.bob, "case.priority_changed"),
            (org.alice, "case.comment_added"),
        ]
    )
    assert all(r.actor_id != r.user_id for r in rows)
    assert {r.case_key for r in rows} == {"NOT-1"}
    [priority] = [r for r in rows if r.event_type == "case.priority_changed"]
    assert priority.summary == "NOT-1 priority changed from P3 to P1"

    # The inbox API: bob sees his two, newest first; marking read is per user.
    app = create_app(context)
    bob_headers = {"DD-API-KEY": org.creds.api_key, "DD-APPLICATION-KEY": org.bob_app_key}
    alice_headers = {"DD-API-KEY": org.creds.api_key, "DD-APPLICATION-KEY": org.creds.app_key}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://casem") as http:
        inbox = (await http.get("/api/v2/casem/notifications", headers=bob_headers)).json()
        assert inbox["meta"]["unread_count"] == 2
        assert [n["attributes"]["event_type"] for n in inbox["data"]] == ["case.priority_changed", "case.watcher_added"]
        first = inbox["data"][0]["id"]
        assert (await http.post(f"/api/v2/casem/notifications/{first}/read", headers=alice_headers)).status_code == 404
        assert (await http.post(f"/api/v2/casem/notifications/{first}/read", headers=bob_headers)).status_code == 204
        unread = (await http.get("/api/v2/casem/notifications?filter[unread]=true", headers=bob_headers)).json()
        assert [n["attributes"]["event_type"] for n in unread["data"]] == ["case.watcher_added"]
        assert unread["meta"]["unread_count"] == 1
        assert (await http.post("/api/v2/casem/notifications/read", headers=bob_headers)).status_code == 204
        assert (await http.get("/api/v2/casem/notifications", headers=bob_headers)).json()["meta"]["unread_count"] == 0
        alice_inbox = (await http.get("/api/v2/casem/notifications", headers=alice_headers)).json()
        assert alice_inbox["meta"]["unread_count"] == 1 and alice_inbox["data"][0]["attributes"]["read_at"] is None


async def test_rules_request_one_delivery_per_matching_recipient(context: AppContext, harness: Harness) -> None:
    org = await make_org(context, "RUL")
    oid = org.creds.org_id
    async with context.uow() as uow:
        # A loopback receiver needs an allow-list entry (the outbound guard checks the URL when saved).
        loopback = context.outbound.policy(AllowList.parse(["127.0.0.1/32"]))
        await create_endpoint(
            uow, oid, "HTTP", "hooks", "http://127.0.0.1:9/hook", "s" * 32, policy=loopback, box=context.secret_box()
        )
        created = await create_rule(
            uow,
            oid,
            org.alice,
            org.project_id,
            {
                "triggers": [{"type": "CASE_CREATED"}],
                "recipients": [
                    {"type": "EMAIL", "data": {"email": "ops@example.com"}},
                    {"type": "HTTP", "data": {"name": "hooks"}},
                    {"type": "HTTP", "data": {"name": "nowhere"}},  # no such endpoint: a failed row, no event
                    {"type": "PAGERDUTY_SERVICE", "data": {"service_name": "db"}},  # the paging flavor's
                ],
            },
        )
        await create_rule(  # same email again: still one message per target and event
            uow,
            oid,
            org.alice,
            org.project_id,
            {
                "triggers": [{"type": "CASE_CREATED"}],
                "recipients": [{"type": "EMAIL", "data": {"email": "ops@example.com"}}],
            },
        )
        await create_rule(
            uow,
            oid,
            org.alice,
            org.project_id,
            {
                "triggers": [{"type": "STATUS_TRANSITIONED", "data": {"to_status": "CLOSED"}}],
                "query": "priority:P1",
                "recipients": [{"type": "SLACK_CHANNEL", "data": {"channel_id": "C042", "workspace": "acme"}}],
            },
        )
        await create_rule(
            uow,
            oid,
            org.alice,
            org.project_id,
            {
                "is_enabled": False,
                "triggers": [{"type": "CASE_CREATED"}],
                "recipients": [{"type": "EMAIL", "data": {"email": "never@example.com"}}],
            },
        )
        await uow.commit()
    urgent = await new_case(context, org, "Database down", priority="P1")
    minor = await new_case(context, org, "Typo on the status page", priority="P4")
    for case_id in (urgent, minor):
        async with context.uow() as uow:
            (await get_case(uow, oid, case_id)).transition("CLOSED", org.alice)
            await uow.commit()

    bus = harness.bus()
    topic, _ = await publish_outbox(context, harness, bus)
    runner = FlavorRunner(load_flavor("notification-rules"), context, harness.producer(bus))

    async def requested() -> bool:  # per case: email, webhook, failed webhook; and slack for the P1 close
        return await count(context, notification_deliveries) == 7

    await run_until(runner, harness, bus, topic, harness.name("rules"), requested)
    async with context.uow(read_only=True) as uow:
        rows = (await uow.execute(sa.select(notification_deliveries))).all()
        unpublished = domain_events.join(domain_events_pending, domain_events_pending.c.seq == domain_events.c.seq)
        events = [r.envelope for r in await uow.execute(sa.select(domain_events).select_from(unpublished))]
    by_case = {
        case_id: sorted((r.channel, r.status) for r in rows if r.case_id == case_id) for case_id in (urgent, minor)
    }
    assert by_case[minor] == [("email", "pending"), ("webhook", "failed"), ("webhook", "pending")]
    assert by_case[urgent] == sorted([*by_case[minor], ("slack", "pending")])
    [missing] = [r for r in rows if r.status == "failed"][:1]
    assert "no HTTP endpoint named 'nowhere'" in missing.last_error
    pending = {r.id: r for r in rows if r.status == "pending"}
    assert all(e["type"] == f"com.casem.{DELIVERY_REQUESTED}.v1" for e in events)
    assert sorted(e["data"]["delivery_id"] for e in events) == sorted(pending)
    for e in events:
        row = pending[e["data"]["delivery_id"]]
        assert e["data"]["channel"] == row.channel and e["data"]["target"] == row.target
        assert e["data"]["payload"] == row.payload and e["caseid"] == row.case_id
    [slack] = [e["data"] for e in events if e["data"]["channel"] == "slack"]
    assert slack["target"] == {"channel": "C042", "workspace": "acme"}
    assert slack["payload"]["text"] == "RUL-1 status changed from OPEN to CLOSED"
    [hook] = [e["data"] for e in events if e["data"]["channel"] == "webhook" and e["caseid"] == urgent]
    assert hook["target"] == {"name": "hooks", "url": "http://127.0.0.1:9/hook"} and hook["rule_id"] == created.id
    assert "secret" not in str(hook) and hook["payload"]["case"]["key"] == "RUL-1"
    assert hook["payload"]["event"]["type"] == "case.created"


# -- rule matching (pure) ----------------------------------------------------------------------------------


def _view(**overrides: object) -> CaseView:
    fields: dict = dict(
        id="c1",
        key="OPS-7",
        title="Disk full on web-1",
        description="",
        status="OPEN",
        priority="P2",
        project_id="p1",
        project_key="OPS",
        type_id="t1",
        type_name="STANDARD",
        assignee_id=None,
        assignee_email=None,
        attributes={"service": ["web-store"]},
        archived=False,
    )
    fields.update(overrides)
    return CaseView(**fields)  # type: ignore[arg-type]


def _changed(name: str, old: object, new: object) -> dict:
    return {"changes": {name: {"old": old, "new": new}}}


def test_triggers_match_their_events_only() -> None:
    status = _changed("status", "OPEN", "CLOSED")
    assert trigger_matches({"type": "STATUS_TRANSITIONED", "data": {}}, "case.status_changed", status)
    assert trigger_matches(
        {"type": "STATUS_TRANSITIONED", "data": {"to_status_name": "closed"}}, "case.status_changed", status
    )
    assert not trigger_matches(
        {"type": "STATUS_TRANSITIONED", "data": {"from_status": "IN_PROGRESS"}}, "case.status_changed", status
    )
    assert not trigger_matches(
        {"type": "STATUS_TRANSITIONED"}, "case.priority_changed", _changed("priority", "P1", "P2")
    )
    attrs = _changed("attributes", {"service": ["a"]}, {"service": ["a"], "env": ["prod"]})
    assert trigger_matches(
        {"type": "ATTRIBUTE_VALUE_CHANGED", "data": {"field": "env"}}, "case.attributes_changed", attrs
    )
    assert trigger_matches(
        {"type": "ATTRIBUTE_VALUE_CHANGED", "data": {"field": "env", "change_type": "added"}},
        "case.attributes_changed",
        attrs,
    )
    assert not trigger_matches(
        {"type": "ATTRIBUTE_VALUE_CHANGED", "data": {"field": "env", "change_type": "removed"}},
        "case.attributes_changed",
        attrs,
    )
    assert not trigger_matches(
        {"type": "ATTRIBUTE_VALUE_CHANGED", "data": {"field": "service"}}, "case.attributes_changed", attrs
    )
    assignee = _changed("assignee_id", None, "u1")
    assert trigger_matches(
        {"type": "ATTRIBUTE_VALUE_CHANGED", "data": {"field": "assignee"}}, "case.assigned", assignee
    )
    assert trigger_matches({"type": "CASE_ASSIGNED"}, "case.assigned", assignee)
    assert trigger_matches({"type": "PRIORITY_CHANGED"}, "case.priority_changed", _changed("priority", "P1", "P2"))
    assert trigger_matches({"type": "COMMENT_ADDED"}, "case.comment_added", {"message": "hi"})
    assert not trigger_matches({"type": "CASE_CREATED"}, "case.comment_added", {"message": "hi"})
    rule = NotificationRule("r", "o", "p", [{"type": "CASE_CREATED"}], [], is_enabled=False)
    assert not rule_fires(rule, "case.created", {})


def test_rule_queries_use_the_search_language() -> None:
    case = _view()
    assert query_matches("", case)
    assert query_matches("priority:p2 service:web-store", case)
    assert query_matches("status:(closed OR open) disk", case)
    assert not query_matches("priority:P1", case)
    assert not query_matches("-service:web-store", case)
    assert query_matches("project:OPS key:ops-7", case)
    assert not query_matches("archived:true", case)


async def test_apply_ignores_events_about_no_case(context: AppContext) -> None:
    flavor = load_flavor("notification-rules")
    event = Event.from_bytes(
        b'{"id":"e","type":"com.casem.case.created.v1","tenant":"case-management","orgid":"o","subject":"case/x",'
        b'"time":"2026-01-01T00:00:00Z","caseid":"00000000-0000-0000-0000-00000000abcd","data":{}}'
    )
    async with context.uow() as uow:
        await flavor.apply(event, uow, HandlerServices())  # a case that does not exist: nothing, no error
        assert list(uow.session.new) == []
