"""Notification rules, matching, rendering and deliveries: the pure rules, without a database."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casem.domain.case_types import CustomAttributeConfig
from casem.domain.errors import InvalidInput
from casem.domain.events import DomainEvent
from casem.domain.notifications import (
    CHANNELS,
    DELIVERY_REQUESTED,
    RULE_EVENTS,
    CaseView,
    Delivery,
    NotificationRule,
    endpoint_name,
    query_matches,
    render,
    rule_fires,
    summarize,
    trigger_matches,
    validate_query,
    validate_recipients,
    validate_triggers,
)
from casem.domain.timeline import TimelineCell
from tests.domain.support import new_case, only_event

TRIGGERS = "/data/attributes/triggers"
RECIPIENTS = "/data/attributes/recipients"
ATTR = "ATTRIBUTE_VALUE_CHANGED"


def invalid(call: Any, *args: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as raised:
        call(*args)
    return raised.value


# -- validation ----------------------------------------------------------------------------------


def test_valid_triggers_are_cleaned() -> None:
    assert validate_triggers([{"type": "CASE_CREATED"}, {"type": "STATUS_TRANSITIONED", "data": None}]) == [
        {"type": "CASE_CREATED", "data": {}},
        {"type": "STATUS_TRANSITIONED", "data": {}},
    ]
    field = {"type": "ATTRIBUTE_VALUE_CHANGED", "data": {"field": "env", "change_type": "removed"}}
    assert validate_triggers([field]) == [field]


@pytest.mark.parametrize(
    ("triggers", "pointer", "detail"),
    [
        ([], TRIGGERS, "triggers must be a non-empty list"),
        ({"type": "CASE_CREATED"}, TRIGGERS, "triggers must be a non-empty list"),
        (["CASE_CREATED"], f"{TRIGGERS}/0/type", "trigger type must be one of ATTRIBUTE_VALUE_CHANGED, CASE_ASSIGNED"),
        ([{"type": "CASE_CREATED"}, {"type": "DELETED"}], f"{TRIGGERS}/1/type", "trigger type must be one of "),
        ([{"type": "CASE_CREATED", "data": {"when": "now"}}], f"{TRIGGERS}/0/data", "trigger data may only hold "),
        ([{"type": "STATUS_TRANSITIONED", "data": {"to_status": 1}}], f"{TRIGGERS}/0/data", "trigger data values"),
        (
            # automation's vocabulary is not the notification rules' one
            [{"type": "ATTRIBUTE_VALUE_CHANGED", "data": {"field": "env", "change_type": "VALUE_ADDED"}}],
            f"{TRIGGERS}/0/data/change_type",
            "change_type must be added, removed or changed",
        ),
    ],
)
def test_bad_triggers_point_at_the_member(triggers: object, pointer: str, detail: str) -> None:
    err = invalid(validate_triggers, triggers)
    assert err.pointer == pointer and err.detail.startswith(detail)


GOOD_RECIPIENTS: list[dict[str, Any]] = [
    {"type": "EMAIL", "data": {"email": "jane@example.com"}},
    {"type": "SLACK_CHANNEL", "data": {"channel": "#ops"}},
    {"type": "SLACK_CHANNEL", "data": {"channel_id": "C123", "workspace": "acme"}},
    {"type": "MS_TEAMS_CHANNEL", "data": {"connector_name": "ops-connector"}},
    {"type": "MS_TEAMS_CHANNEL", "data": {"channel_name": "ops"}},
    {"type": "HTTP", "data": {"name": "audit-hook"}},
    {"type": "PAGERDUTY_SERVICE", "data": {"service_name": "payments"}},
]


def test_valid_recipients_are_kept() -> None:
    assert validate_recipients(GOOD_RECIPIENTS) == GOOD_RECIPIENTS


@pytest.mark.parametrize(
    ("recipient", "pointer", "detail"),
    [
        ({"type": "SMS", "data": {}}, f"{RECIPIENTS}/0/type", "recipient type must be one of "),
        ({"type": "EMAIL", "data": {"address": "x@y.z"}}, f"{RECIPIENTS}/0/data", "recipient data has unknown"),
        ({"type": "EMAIL", "data": {"email": ["x@y.z"]}}, f"{RECIPIENTS}/0/data", "recipient data values must be"),
        ({"type": "EMAIL"}, f"{RECIPIENTS}/0/data/email", "an EMAIL recipient needs a valid data.email"),
        ({"type": "EMAIL", "data": {"email": "jane"}}, f"{RECIPIENTS}/0/data/email", "an EMAIL recipient"),
        ({"type": "EMAIL", "data": {"email": "jane doe@x.com"}}, f"{RECIPIENTS}/0/data/email", "an EMAIL"),
        ({"type": "SLACK_CHANNEL", "data": {"channel": "  "}}, f"{RECIPIENTS}/0/data", "a SLACK_CHANNEL recipient"),
        ({"type": "PAGERDUTY_SERVICE", "data": {}}, f"{RECIPIENTS}/0/data", "a PAGERDUTY_SERVICE recipient needs"),
        ({"type": "HTTP", "data": {"channel_name": "x"}}, f"{RECIPIENTS}/0/data", "a HTTP recipient needs data.name"),
        (
            {"type": "MS_TEAMS_CHANNEL", "data": {"team_name": "ops"}},
            f"{RECIPIENTS}/0/data",
            "a MS_TEAMS_CHANNEL recipient needs data.connector_name or data.channel_name",
        ),
    ],
)
def test_bad_recipients_point_at_the_member(recipient: dict[str, Any], pointer: str, detail: str) -> None:
    err = invalid(validate_recipients, [recipient])
    assert err.pointer == pointer and err.detail.startswith(detail)


def test_recipients_must_be_a_non_empty_list() -> None:
    for bad in ([], None, {"type": "EMAIL"}):
        err = invalid(validate_recipients, bad)
        assert (err.detail, err.pointer) == ("recipients must be a non-empty list", RECIPIENTS)
    err = invalid(validate_recipients, [GOOD_RECIPIENTS[0], {"type": "HTTP", "data": {}}])
    assert err.pointer == f"{RECIPIENTS}/1/data"


def test_endpoint_names() -> None:
    assert endpoint_name({"type": "HTTP", "data": {"name": " audit "}}) == "audit"
    assert endpoint_name({"type": "HTTP", "data": {"connector_name": "c"}}) is None
    assert endpoint_name({"type": "MS_TEAMS_CHANNEL", "data": {"connector_name": "c", "channel_name": "n"}}) == "c"
    assert endpoint_name({"type": "MS_TEAMS_CHANNEL", "data": {"connector_name": " ", "channel_name": "n"}}) == "n"
    assert endpoint_name({"type": "MS_TEAMS_CHANNEL"}) is None


def test_query_validation_reports_the_syntax_error() -> None:
    assert validate_query("") == ""
    assert validate_query("status:open -service:web") == "status:open -service:web"
    err = invalid(validate_query, "status: open")
    assert err.pointer == "/data/attributes/query"
    assert err.detail == "query syntax error at position 7: expected a value right after 'status:', found ' '"
    err = invalid(validate_query, None, "/q")
    assert (err.detail, err.pointer) == ("query must be a string", "/q")


# -- trigger_matches, on the events cases really record ------------------------------------------


def matches(kind: str, event: DomainEvent, **spec: str) -> bool:
    return trigger_matches({"type": kind, "data": spec}, event.type, event.data)


def test_simple_triggers_fire_on_their_event_only() -> None:
    case = new_case()
    assigned = only_event(case, lambda c: c.assign("u7", "u1"))
    unassigned = only_event(case, lambda c: c.assign(None, "u1"))
    priority = only_event(case, lambda c: c.prioritize("P2", "u1"))
    [comment] = TimelineCell.comment(id="k", org_id="o1", case_id="c1", message="hi", author_id="u1").collect_events()
    events = {"assigned": assigned, "unassigned": unassigned, "priority": priority, "comment": comment}
    fired = {
        kind: {name for name, e in events.items() if matches(kind, e)}
        for kind in ("CASE_ASSIGNED", "PRIORITY_CHANGED", "COMMENT_ADDED", "CASE_CREATED", "STATUS_TRANSITIONED")
    }
    assert fired == {
        "CASE_ASSIGNED": {"assigned"},
        "PRIORITY_CHANGED": {"priority"},
        "COMMENT_ADDED": {"comment"},
        "CASE_CREATED": set(),
        "STATUS_TRANSITIONED": set(),
    }
    assert not matches("EVENT_CORRELATION_SIGNAL_CORRELATED", priority)


def test_status_transitions_by_id_or_name() -> None:
    case = new_case()
    to_progress = only_event(case, lambda c: c.transition("IN_PROGRESS", "u1"))
    to_closed = only_event(case, lambda c: c.transition("CLOSED", "u1"))
    assert matches("STATUS_TRANSITIONED", to_progress)
    assert matches("STATUS_TRANSITIONED", to_progress, from_status="open", to_status_name="In Progress")
    assert matches("STATUS_TRANSITIONED", to_closed, to_status="CLOSED")
    assert not matches("STATUS_TRANSITIONED", to_progress, to_status="closed")
    assert not matches("STATUS_TRANSITIONED", to_closed, from_status_name="Open")
    # The id wins over the name when both are given.
    assert matches("STATUS_TRANSITIONED", to_closed, to_status="closed", to_status_name="Open")


def test_attribute_value_changes_on_case_fields() -> None:
    case = new_case()
    assigned = only_event(case, lambda c: c.assign("u7", "u1"))
    reassigned = only_event(case, lambda c: c.assign("u8", "u1"))
    unassigned = only_event(case, lambda c: c.assign(None, "u1"))
    kinds = {
        change_type: [
            matches("ATTRIBUTE_VALUE_CHANGED", e, field="assignee", change_type=change_type)
            for e in (assigned, reassigned, unassigned)
        ]
        for change_type in ("added", "changed", "removed")
    }
    assert kinds == {"added": [True, False, False], "changed": [False, True, False], "removed": [False, False, True]}
    title = only_event(case, lambda c: c.retitle("Disk full on web-1", "u1"))
    assert matches("ATTRIBUTE_VALUE_CHANGED", title, field="title", change_type="changed")
    assert not matches("ATTRIBUTE_VALUE_CHANGED", title, field="assignee")
    # Without a field, any field change fires; a comment or a creation is not a field change.
    assert matches("ATTRIBUTE_VALUE_CHANGED", title) and matches("ATTRIBUTE_VALUE_CHANGED", unassigned)
    [comment] = TimelineCell.comment(id="k", org_id="o1", case_id="c1", message="hi", author_id="u1").collect_events()
    assert not matches("ATTRIBUTE_VALUE_CHANGED", comment)


def test_attribute_value_changes_on_attributes_and_custom_attributes() -> None:
    case = new_case(attributes={"service": ["web"]})
    added = only_event(case, lambda c: c.set_attributes({"service": ["web"], "env": ["prod"]}, "u1"))
    changed = only_event(case, lambda c: c.set_attributes({"service": ["web"], "env": ["staging"]}, "u1"))
    removed = only_event(case, lambda c: c.set_attributes({"service": ["web"]}, "u1"))
    for event, kind in ((added, "added"), (changed, "changed"), (removed, "removed")):
        assert {ct for ct in ("added", "changed", "removed") if matches(ATTR, event, field="env", change_type=ct)} == {
            kind
        }
        assert matches(ATTR, event, field="env")
        assert not matches(ATTR, event, field="service")  # unchanged key
    impact = CustomAttributeConfig(
        id="a", org_id="o1", case_type_id="t", key="impact", display_name="Impact", type="NUMBER"
    )
    custom = only_event(case, lambda c: c.set_custom_attributes({"impact": impact.coerce(3, "/p")}, "u1"))
    assert matches(ATTR, custom, field="impact", change_type="added")
    assert not matches(ATTR, custom, field="env")


def test_a_rule_fires_when_enabled_and_any_trigger_matches() -> None:
    case = new_case()
    priority = only_event(case, lambda c: c.prioritize("P1", "u1"))
    rule = NotificationRule(
        id="r",
        org_id="o1",
        project_id="p1",
        triggers=[{"type": "CASE_CREATED"}, {"type": "PRIORITY_CHANGED"}],
        recipients=GOOD_RECIPIENTS[:1],
    )
    assert rule_fires(rule, priority.type, priority.data)
    rule.is_enabled = False
    assert not rule_fires(rule, priority.type, priority.data)
    only_created = replace(rule, is_enabled=True, triggers=[{"type": "CASE_CREATED"}])
    assert not rule_fires(only_created, priority.type, priority.data)


def test_rule_events_cover_every_event_a_trigger_can_match() -> None:
    case = new_case()
    changes = [
        lambda c: c.retitle("new", "u1"),
        lambda c: c.describe("words", "u1"),
        lambda c: c.transition("CLOSED", "u1"),
        lambda c: c.prioritize("P1", "u1"),
        lambda c: c.assign("u7", "u1"),
        lambda c: c.assign(None, "u1"),
        lambda c: c.set_attributes({"env": ["prod"]}, "u1"),
        lambda c: c.set_custom_attributes({"x": {"type": "TEXT", "is_multi": False, "value": "y"}}, "u1"),
        lambda c: c.set_resolved_reason("fixed", "u1"),
        lambda c: c.archive("u1"),
    ]
    triggers = [{"type": t, "data": {}} for t in ("CASE_ASSIGNED", "PRIORITY_CHANGED", "STATUS_TRANSITIONED", ATTR)]
    fired = []
    for change in changes:
        event = only_event(case, change)
        if any(trigger_matches(t, event.type, event.data) for t in triggers):
            fired.append(event.type)
    assert set(fired) <= RULE_EVENTS
    assert len(fired) == len(changes) - 1  # all but the archive
    assert "case.archived" not in RULE_EVENTS


# -- queries over a case -------------------------------------------------------------------------

VIEW = CaseView(
    id="c1",
    key="SEC-12",
    title="Disk full on web-1",
    description="The /var partition is at 100%",
    status="IN_PROGRESS",
    priority="P1",
    project_id="p-uuid",
    project_key="SEC",
    type_id="t-uuid",
    type_name="Security",
    assignee_id="u-uuid",
    assignee_email="jane@example.com",
    attributes={"service": ["web", "api"], "env": ["prod"]},
    archived=False,
)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", True),
        ("disk", True),
        ("DISK", True),
        ("partition", True),  # the description
        ("sec-12", True),  # the key, as text
        ("memory", False),
        ('"disk full"', True),
        ('"full disk"', False),
        ("status:in-progress", True),
        ('status:"in progress"', True),
        ("status:open", False),
        ("priority:p1", True),
        ("priority:P2", False),
        ("project:SEC", True),
        ("project:sec", True),
        ("project:p-uuid", True),
        ("project:OPS", False),
        ("assignee:jane@example.com", True),
        ("assignee:u-uuid", True),
        ("assignee:john@example.com", False),
        ("type:security", True),
        ("type:t-uuid", True),
        ("type:bug", False),
        ("key:sec-12", True),
        ("key:SEC-1", False),
        ("archived:false", True),
        ("archived:TRUE", False),
        ("service:api", True),
        ("service:API", True),
        ("service:db", False),
        ("Service:api", False),  # attribute keys are verbatim
        ("team:sre", False),
        ("-service:db", True),
        ("NOT status:in_progress", False),
        ("status:(open OR in_progress)", True),
        ("status:(open OR closed)", False),
        ("service:(web api)", True),
        ("service:(web db)", False),
        ("memory OR priority:p1", True),
        ("priority:p1 memory", False),
        ("memory OR disk env:prod", True),
        ("(memory OR disk) env:staging", False),
    ],
)
def test_query_matches(query: str, expected: bool) -> None:
    assert query_matches(query, VIEW) is expected


def test_a_case_without_assignee_or_type_name() -> None:
    bare = replace(VIEW, assignee_id=None, assignee_email=None, type_name=None, archived=True)
    assert not query_matches("assignee:jane@example.com", bare)
    assert query_matches("-assignee:jane@example.com", bare)
    assert query_matches("type:t-uuid", bare) and not query_matches("type:security", bare)
    assert query_matches("archived:true", bare)


atoms = st.sampled_from(
    ["disk", "memory", "status:in_progress", "status:open", "priority:p1", "service:web", "service:db", "env:prod"]
)
queries = st.recursive(
    atoms,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda ab: f"({ab[0]}) OR ({ab[1]})"),
        st.tuples(inner, inner).map(lambda ab: f"({ab[0]}) AND ({ab[1]})"),
        inner.map(lambda a: f"NOT ({a})"),
    ),
    max_leaves=6,
)


@given(queries, queries)
def test_query_logic_is_boolean_logic(a: str, b: str) -> None:
    ma, mb = query_matches(a, VIEW), query_matches(b, VIEW)
    assert query_matches(f"NOT ({a})", VIEW) is (not ma)
    assert query_matches(f"-({a})", VIEW) is (not ma)
    assert query_matches(f"({a}) OR ({b})", VIEW) is (ma or mb)
    assert query_matches(f"({a}) ({b})", VIEW) is (ma and mb)


# -- rendering -----------------------------------------------------------------------------------


def test_summaries_name_the_change() -> None:
    case = new_case()
    status = only_event(case, lambda c: c.transition("CLOSED", "u1"))
    priority = only_event(case, lambda c: c.prioritize("P1", "u1"))
    title = only_event(case, lambda c: c.retitle("Disk full on web-1", "u1"))
    assert summarize("case.created", {}, "SEC-1", "Disk full") == "SEC-1 created: Disk full"
    assert summarize(status.type, status.data, "SEC-1", "t") == "SEC-1 status changed from OPEN to CLOSED"
    assert summarize(priority.type, priority.data, "SEC-1", "t") == "SEC-1 priority changed from NOT_DEFINED to P1"
    assert summarize(title.type, title.data, "SEC-1", "t") == "SEC-1 was renamed to Disk full on web-1"
    assert summarize("case.assigned", {}, "SEC-1", "t") == "SEC-1 was assigned"
    assert summarize("case.insight_added", {}, "SEC-1", "t") == "SEC-1 changed (case.insight_added)"
    cleared = {"changes": {"due_date": {"old": "2030-01-01", "new": None}}}
    assert summarize("case.due_date_changed", cleared, "SEC-1", "t") == "SEC-1 due date changed to none"


CASE_URL = "https://casem.example.com/cases/c1"


def test_each_channel_gets_its_own_payload() -> None:
    comment = {"cell_id": "k", "message": "Rebooted web-1"}
    email = render("email", "case.comment_added", comment, VIEW, CASE_URL, {})
    assert email == {
        "subject": "[casem] New comment on SEC-12",
        "text": "New comment on SEC-12\nTitle: Disk full on web-1\nStatus: IN_PROGRESS  Priority: P1\n"
        f"Comment: Rebooted web-1\n{CASE_URL}",
    }
    slack = render("slack", "case.comment_added", comment, VIEW, CASE_URL, {})
    assert slack["text"] == "New comment on SEC-12"
    assert slack["blocks"][0]["text"] == {"type": "mrkdwn", "text": f"*<{CASE_URL}|SEC-12>* New comment on SEC-12"}
    assert slack["blocks"][1]["elements"][0]["text"] == "Status: IN_PROGRESS · Priority: P1"
    teams = render("msteams", "case.comment_added", comment, VIEW, CASE_URL, {})
    assert teams["@type"] == "MessageCard" and teams["title"] == "New comment on SEC-12"
    assert teams["sections"][0]["text"] == "Rebooted web-1"
    assert {"name": "Case", "value": "SEC-12"} in teams["sections"][0]["facts"]
    assert teams["potentialAction"][0]["targets"] == [{"os": "default", "uri": CASE_URL}]
    hook = render("webhook", "case.comment_added", comment, VIEW, CASE_URL, {"id": "e1", "time": "t"})
    assert hook["event"] == {"id": "e1", "time": "t", "type": "case.comment_added", "data": comment}
    assert hook["case"] == {
        "id": "c1",
        "key": "SEC-12",
        "title": "Disk full on web-1",
        "status": "IN_PROGRESS",
        "priority": "P1",
        "project_id": "p-uuid",
        "assignee_id": "u-uuid",
        "url": CASE_URL,
    }
    assert hook["summary"] == "New comment on SEC-12"


def test_only_comments_add_a_comment_line() -> None:
    email = render("email", "case.priority_changed", {"message": "not a comment"}, VIEW, CASE_URL, {})
    assert "Comment:" not in email["text"]
    assert email["text"].endswith(CASE_URL)


# -- deliveries ----------------------------------------------------------------------------------


def request_delivery(channel: str = "email") -> Delivery:
    return Delivery.request(
        org_id="o1",
        rule_id="r1",
        source_event_id="e1",
        case_id="c1",
        channel=channel,
        target={"email": "jane@example.com"},
        payload={"subject": "s", "text": "t"},
    )


def test_requesting_a_delivery_records_the_request() -> None:
    delivery = request_delivery()
    assert (delivery.status, delivery.attempts, delivery.last_error, delivery.sent_at) == ("pending", 0, None, None)
    [event] = delivery.collect_events()
    assert event.type == DELIVERY_REQUESTED == "notification.delivery_requested"
    assert (event.org_id, event.actor_id, event.subject_type, event.subject_id, event.case_id) == (
        "o1",
        None,
        "notification_delivery",
        delivery.id,
        "c1",
    )
    assert event.data == {
        "delivery_id": delivery.id,
        "channel": "email",
        "target": {"email": "jane@example.com"},
        "payload": {"subject": "s", "text": "t"},
        "rule_id": "r1",
        "source_event_id": "e1",
    }
    assert request_delivery().id != delivery.id
    assert {request_delivery(c).channel for c in CHANNELS} == set(CHANNELS)


def test_an_unknown_channel_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown channel 'sms'"):
        request_delivery("sms")


def test_failing_then_sending_counts_attempts_and_records_nothing() -> None:
    delivery = request_delivery()
    delivery.collect_events()
    delivery.failed("HTTP 503 " + "x" * 5000)
    assert delivery.status == "failed" and delivery.attempts == 1
    assert delivery.last_error is not None and len(delivery.last_error) == 2000
    assert delivery.last_error.startswith("HTTP 503 ")
    assert delivery.updated_at is not None and delivery.sent_at is None
    delivery.sent()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 2, None)
    assert delivery.sent_at is not None and delivery.sent_at == delivery.updated_at
    assert delivery.collect_events() == []  # outcomes are stored, not published
