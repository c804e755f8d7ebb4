"""The on-call domain's rules beside schedules: when a case pages, how a responder is notified, routing, tags."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from casem.domain.notifications import CaseView
from casem.domain.oncall import (
    NotificationChannel,
    OnCallNotificationRule,
    Page,
    RoutingRule,
    TeamRouting,
    TimeRestrictions,
    notification_key,
    out_of_hours,
    page_view,
    plan_notifications,
    should_page,
    tag_attributes,
    view_before,
)
from casem.domain.oncall_schedules import Restriction, zone

CASE = CaseView(
    id="c1", key="SEC-1", title="Root shell", description="", status="OPEN", priority="P1", project_id="p",
    project_key="SEC", type_id="t", type_name=None, assignee_id=None, assignee_email=None, attributes={},
    archived=False,
)  # fmt: skip


def test_a_case_pages_when_it_comes_to_match_and_not_again_while_it_stays() -> None:
    assert should_page("priority:P1", "case.created", CASE, None)
    assert not should_page("priority:P1", "case.created", replace(CASE, priority="P3"), None)
    raised = view_before(CASE, {"priority": {"old": "P3", "new": "P1"}})
    assert raised.priority == "P3" and should_page("priority:P1", "case.priority_changed", CASE, raised)
    retitled = view_before(CASE, {"title": {"old": "Root", "new": "Root shell"}})
    assert not should_page("priority:P1", "case.title_changed", CASE, retitled)  # it already matched
    assert not should_page("priority:P1", "case.comment_added", CASE, CASE)  # not a trigger
    assert not should_page("priority:P1", "case.created", replace(CASE, archived=True), None)


def rule(ident: str, channel: str, category: str, delay: int, method: str | None = None) -> OnCallNotificationRule:
    return OnCallNotificationRule(ident, "o", "u", channel, category, method, delay)


def test_a_responder_is_notified_by_their_rules_of_the_urgency_or_by_their_account_email() -> None:
    channels = {
        "phone": NotificationChannel("phone", "o", "u", "phone", {"number": "+14155550100"}),
        "mail": NotificationChannel("mail", "o", "u", "email", {"address": "u@example.com"}),
        "off": NotificationChannel("off", "o", "u", "push", {}, active=False),
    }
    rules = [
        rule("r1", "phone", "high_urgency", 5, "voice"),
        rule("r2", "mail", "high_urgency", 0),
        rule("r3", "phone", "low_urgency", 0, "sms"),
        rule("r4", "off", "high_urgency", 0),
    ]
    high = plan_notifications("u", "high", rules, channels)
    assert [(p.medium, p.delay_minutes, p.rule_id) for p in high] == [("email", 0, "r2"), ("voice", 5, "r1")]
    low = plan_notifications("u", "low", rules, channels)
    assert [(p.medium, p.rule_id) for p in low] == [("sms", "r3")]
    nothing = plan_notifications("u", "high", [], channels)
    assert [(p.medium, p.channel_id, p.rule_id) for p in nothing] == [("email", None, None)]
    assert notification_key("pg", 1, 0, high[0]) == "pg/1/0/u/r2"
    assert notification_key("pg", 0, 2, nothing[0]) == "pg/0/2/u/account-email"


def test_routing_takes_the_first_rule_that_applies_now() -> None:
    page = Page(id="p", org_id="o", key="PAGE-1", title="Checkout down", urgency="high", target_type="team_id",
                target_id="t", tags=["service:checkout", "env:prod", "flaky"])  # fmt: skip
    assert tag_attributes(page.tags) == {
        "service": ["checkout"], "tags.service": ["checkout"], "env": ["prod"], "tags.env": ["prod"], "tags": ["flaky"],
    }  # fmt: skip
    office = TimeRestrictions("Europe/Paris", (Restriction(0, 9 * 3600, 4, 18 * 3600),))
    routing = TeamRouting("o", "t", [
        RoutingRule("office", "tags.service:checkout", "high", "pol-1", time_restriction=office),
        RoutingRule("any", "env:prod", None, "pol-2"),
        RoutingRule("never", "env:staging", None, "pol-3"),
    ])  # fmt: skip
    tuesday_noon = datetime(2025, 3, 4, 11, 0, tzinfo=UTC)
    saturday = datetime(2025, 3, 8, 11, 0, tzinfo=UTC)
    view = page_view(page, "payments")
    assert routing.route(view, tuesday_noon).id == "office"  # type: ignore[union-attr]
    assert routing.route(view, saturday).id == "any"  # type: ignore[union-attr]
    assert routing.route(page_view(replace(page, tags=[])), saturday) is None


def test_out_of_hours_is_read_on_the_local_wall_clock() -> None:
    paris = zone("Europe/Paris")
    assert not out_of_hours(datetime(2025, 3, 4, 8, 30, tzinfo=UTC), paris)  # 09:30 on a Tuesday in Paris
    assert out_of_hours(datetime(2025, 3, 4, 17, 30, tzinfo=UTC), paris)  # 18:30
    assert out_of_hours(datetime(2025, 3, 8, 12, 0, tzinfo=UTC), paris)  # Saturday


def test_a_page_acknowledged_once_and_resolved_once() -> None:
    page = Page.trigger(actor_id="a", id="p", org_id="o", key="PAGE-1", title="t", urgency="high",
                        target_type="user_id", target_id="u")  # fmt: skip
    assert [e.type for e in page.collect_events()] == ["page.triggered"]
    assert page.acknowledge("u") and not page.acknowledge("u") and not page.escalate("u")
    assert page.resolve("u") and not page.resolve("u")
    events = page.collect_events()
    assert [e.type for e in events] == ["page.acknowledged", "page.resolved"]
    assert all(e.case_id == "p" for e in events)  # on the page's own case timeline
