"""Automation rules, SLA targets, reminders and duplicate detection: the pure rules, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casem.domain.automation import (
    ACTION_REQUIRES,
    DEFAULT_LEAD_SECONDS,
    MAX_LEADS,
    NAME_MAX,
    SLA_TARGET_MAX_SECONDS,
    AutomationRule,
    DuplicateSettings,
    Similarity,
    due_instant,
    is_possible_duplicate,
    jaccard,
    notification_request,
    record_with_notice,
    similarity,
    sla_deadlines,
    status_of,
    title_tokens,
    trigger_fires,
    validate_action,
    validate_duplicates,
    validate_name,
    validate_reminders,
    validate_sla,
    validate_state,
    validate_trigger,
)
from casem.domain.case_types import CustomAttributeConfig
from casem.domain.cases import Case
from casem.domain.errors import InvalidInput
from casem.domain.timeline import TimelineCell
from tests.domain.support import ASSIGNEE, new_case, only_event

TRIGGER = "/data/attributes/trigger"
ACTION = "/data/attributes/action"


def invalid(call: Any, *args: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as raised:
        call(*args)
    return raised.value


# -- rule fields ---------------------------------------------------------------------------------


def test_rule_name_and_state() -> None:
    assert validate_name("Page the on-call") == "Page the on-call"
    assert validate_name("x" * NAME_MAX) == "x" * NAME_MAX
    for bad in ("", "   ", None, 7):
        err = invalid(validate_name, bad)
        assert (err.detail, err.pointer) == ("name must be a non-empty string", "/data/attributes/name")
    err = invalid(validate_name, "x" * (NAME_MAX + 1))
    assert err.detail == "name is 256 characters long; the limit is 255"
    assert validate_state("ENABLED") == "ENABLED" and validate_state("DISABLED") == "DISABLED"
    err = invalid(validate_state, "enabled")
    assert (err.detail, err.pointer) == ("state must be ENABLED or DISABLED", "/data/attributes/state")
    rule = AutomationRule(id="r", org_id="o", project_id="p", name="n", state="DISABLED", trigger={}, action={})
    assert not rule.enabled


@pytest.mark.parametrize(
    ("name", "status"),
    [("OPEN", "OPEN"), ("open", "OPEN"), ("In Progress", "IN_PROGRESS"), ("in-progress", "IN_PROGRESS")]
    + [(" closed ", "CLOSED"), ("IN_PROGRESS", "IN_PROGRESS")],
)
def test_status_names_as_the_ui_writes_them(name: str, status: str) -> None:
    assert status_of(name, "/p") == status


@pytest.mark.parametrize("name", ["Done", "", "OPENED", 3, None])
def test_unknown_status_names_the_allowed_ones(name: object) -> None:
    err = invalid(status_of, name, "/p/x")
    assert err.pointer == "/p/x"
    assert err.detail == f"unknown status {name!r}: must be one of OPEN, IN_PROGRESS, CLOSED"


# -- triggers ------------------------------------------------------------------------------------


def test_valid_triggers_are_returned_with_their_data() -> None:
    assert validate_trigger({"type": "CASE_CREATED"}) == {"type": "CASE_CREATED", "data": {}}
    assert validate_trigger({"type": "COMMENT_ADDED", "data": None}) == {"type": "COMMENT_ADDED", "data": {}}
    status = {"type": "STATUS_TRANSITIONED", "data": {"from_status_name": "Open", "to_status_name": "In Progress"}}
    assert validate_trigger(status) == status  # names are kept as written; matching normalizes them
    field = {"type": "ATTRIBUTE_VALUE_CHANGED", "data": {"field": "env", "change_type": "VALUE_DELETED"}}
    assert validate_trigger(field) == field
    # Datadog's kinds that casem never records are accepted (they never fire).
    review = {"type": "CASE_REVIEW_APPROVED", "data": {"approval_type": "security"}}
    assert validate_trigger(review) == review


@pytest.mark.parametrize(
    ("trigger", "pointer", "detail"),
    [
        (None, f"{TRIGGER}/type", "trigger type must be one of "),
        ({"type": "case.created"}, f"{TRIGGER}/type", "trigger type must be one of "),
        ({"type": "CASE_CREATED", "data": {"colour": "red"}}, f"{TRIGGER}/data", "trigger data may only hold "),
        ({"type": "CASE_CREATED", "data": ["field"]}, f"{TRIGGER}/data", "trigger data may only hold "),
        ({"type": "ATTRIBUTE_VALUE_CHANGED", "data": {"field": 3}}, f"{TRIGGER}/data", "trigger data values must"),
        (
            {"type": "STATUS_TRANSITIONED", "data": {"to_status_name": "Done"}},
            f"{TRIGGER}/data/to_status_name",
            "unknown status 'Done'",
        ),
        (
            {"type": "STATUS_TRANSITIONED", "data": {"from_status_name": "shut"}},
            f"{TRIGGER}/data/from_status_name",
            "unknown status 'shut'",
        ),
        (
            {"type": "ATTRIBUTE_VALUE_CHANGED", "data": {"field": "env", "change_type": "added"}},
            f"{TRIGGER}/data/change_type",
            "change_type must be one of ANY_CHANGES, VALUE_ADDED, VALUE_DELETED",
        ),
        ({"type": "ATTRIBUTE_VALUE_CHANGED"}, f"{TRIGGER}/data/field", "an ATTRIBUTE_VALUE_CHANGED trigger needs"),
        (
            {"type": "ATTRIBUTE_VALUE_CHANGED", "data": {"field": "  "}},
            f"{TRIGGER}/data/field",
            "an ATTRIBUTE_VALUE_CHANGED trigger needs data.field",
        ),
    ],
)
def test_bad_triggers_point_at_the_member(trigger: object, pointer: str, detail: str) -> None:
    err = invalid(validate_trigger, trigger)
    assert err.pointer == pointer
    assert err.detail.startswith(detail)


def test_the_trigger_type_error_lists_every_accepted_type() -> None:
    err = invalid(validate_trigger, {"type": "NOPE"}, "/rule/trigger")
    assert err.pointer == "/rule/trigger/type"
    assert err.detail == (
        "trigger type must be one of ATTRIBUTE_VALUE_CHANGED, CASE_CREATED, CASE_REVIEW_APPROVED, CHAT_ACTION, "
        "CHAT_EXCERPT_ADDED, COMMENT_ADDED, EVENT_CORRELATION_SIGNAL_CORRELATED, PRIORITY_CHANGED, STATUS_TRANSITIONED"
    )


# -- actions -------------------------------------------------------------------------------------

GOOD_ACTION_DATA: dict[str, dict[str, str]] = {
    "EXECUTE_WORKFLOW": {"handle": "triage"},
    "ASSIGN_AGENT": {"agent_type": "bits", "assigned_agent_id": "agent-1"},
    "ASSIGN_USER": {"assignee_id": ASSIGNEE},
    "SET_PRIORITY": {"priority": "P2"},
    "SET_STATUS": {"status_name": "CLOSED"},
    "ADD_COMMENT": {"comment": "Looking into it"},
}


def test_every_action_type_has_a_valid_example() -> None:
    assert set(GOOD_ACTION_DATA) == set(ACTION_REQUIRES)
    for kind, data in GOOD_ACTION_DATA.items():
        assert validate_action({"type": kind, "data": data}) == {"type": kind, "data": data}


@pytest.mark.parametrize(("kind", "missing"), [(kind, key) for kind, keys in ACTION_REQUIRES.items() for key in keys])
@pytest.mark.parametrize("blank", [None, "", "   ", 5])
def test_each_action_needs_its_data(kind: str, missing: str, blank: object) -> None:
    data: dict[str, object] = {**GOOD_ACTION_DATA[kind], missing: blank}
    if blank is None:
        del data[missing]
    err = invalid(validate_action, {"type": kind, "data": data})
    assert (err.detail, err.pointer) == (f"a {kind} action needs data.{missing}", f"{ACTION}/data/{missing}")


@pytest.mark.parametrize(
    ("action", "pointer", "detail"),
    [
        (
            {"type": "SEND_EMAIL"},
            f"{ACTION}/type",
            "action type must be one of ADD_COMMENT, ASSIGN_AGENT, ASSIGN_USER, EXECUTE_WORKFLOW, SET_PRIORITY, "
            "SET_STATUS",
        ),
        ("ASSIGN_USER", f"{ACTION}/type", "action type must be one of "),
        (
            {"type": "SET_PRIORITY", "data": {"priority": "P1", "urgent": "yes"}},
            f"{ACTION}/data",
            "action data may only hold ",
        ),
        (
            {"type": "ASSIGN_USER", "data": {"assignee_id": "jane"}},
            f"{ACTION}/data/assignee_id",
            "assignee_id 'jane' is not a valid UUID",
        ),
        (
            {"type": "SET_PRIORITY", "data": {"priority": "p1"}},
            f"{ACTION}/data/priority",
            "priority must be one of NOT_DEFINED, P1, P2, P3, P4, P5",
        ),
        (
            {"type": "SET_STATUS", "data": {"status_name": "Resolved"}},
            f"{ACTION}/data/status_name",
            "unknown status 'Resolved': must be one of OPEN, IN_PROGRESS, CLOSED",
        ),
        (
            {"type": "ADD_COMMENT", "data": {"comment": "x" * 30_001}},
            f"{ACTION}/data/comment",
            "comment is 30001 characters long; the limit is 30000",
        ),
    ],
)
def test_bad_actions_point_at_the_member(action: object, pointer: str, detail: str) -> None:
    err = invalid(validate_action, action)
    assert err.pointer == pointer
    assert err.detail.startswith(detail)


def test_actions_are_normalized() -> None:
    status = validate_action({"type": "SET_STATUS", "data": {"status_name": "In Progress"}})
    assert status == {"type": "SET_STATUS", "data": {"status_name": "IN_PROGRESS"}}
    user = validate_action({"type": "ASSIGN_USER", "data": {"assignee_id": ASSIGNEE.upper()}})
    assert user["data"]["assignee_id"] == ASSIGNEE


# -- trigger_fires, on the events cases really record ---------------------------------------------


def fires(trigger_type: str, event: Any, **spec: str) -> bool:
    return trigger_fires({"type": trigger_type, "data": spec}, event.type, event.data)


def test_simple_triggers_fire_on_their_event_only() -> None:
    opened = Case.open(
        actor_id="u1", id="c", org_id="o", project_id="p", number=1, key="K-1", title="t", type_id="t"
    ).collect_events()[0]
    case = new_case()
    priority = only_event(case, lambda c: c.prioritize("P1", "u1"))
    title = only_event(case, lambda c: c.retitle("Disk full on web-1", "u1"))
    [comment_added] = TimelineCell.comment(
        id="k", org_id="o", case_id="c", message="hi", author_id="u"
    ).collect_events()
    assert trigger_fires({"type": "CASE_CREATED"}, opened.type, opened.data)
    assert not fires("CASE_CREATED", priority)
    assert fires("PRIORITY_CHANGED", priority) and not fires("PRIORITY_CHANGED", title)
    assert fires("COMMENT_ADDED", comment_added) and not fires("CASE_CREATED", comment_added)
    assert not fires("COMMENT_ADDED", title)
    for never in ("CASE_REVIEW_APPROVED", "EVENT_CORRELATION_SIGNAL_CORRELATED", "UNKNOWN"):
        assert not fires(never, opened) and not fires(never, priority)


def test_status_transitions_narrowed_by_from_and_to() -> None:
    case = new_case()
    to_progress = only_event(case, lambda c: c.transition("IN_PROGRESS", "u1"))
    to_closed = only_event(case, lambda c: c.transition("CLOSED", "u1"))
    assert fires("STATUS_TRANSITIONED", to_progress) and fires("STATUS_TRANSITIONED", to_closed)
    assert fires("STATUS_TRANSITIONED", to_closed, to_status_name="Closed")
    assert not fires("STATUS_TRANSITIONED", to_progress, to_status_name="Closed")
    assert fires("STATUS_TRANSITIONED", to_progress, from_status_name="open", to_status_name="in progress")
    assert not fires("STATUS_TRANSITIONED", to_closed, from_status_name="Open", to_status_name="Closed")
    assert fires("STATUS_TRANSITIONED", to_closed, from_status_name="In Progress")
    priority = only_event(case, lambda c: c.prioritize("P2", "u1"))
    assert not fires("STATUS_TRANSITIONED", priority)


def test_case_field_changes_by_change_type() -> None:
    case = new_case()
    assigned = only_event(case, lambda c: c.assign("u7", "u1"))
    reassigned = only_event(case, lambda c: c.assign("u8", "u1"))
    unassigned = only_event(case, lambda c: c.assign(None, "u1"))
    assert unassigned.type == "case.unassigned"
    table = {
        "VALUE_ADDED": (True, True, False),
        "VALUE_DELETED": (False, True, True),
        "ANY_CHANGES": (True, True, True),
    }
    for change_type, expected in table.items():
        got = tuple(
            fires("ATTRIBUTE_VALUE_CHANGED", e, field="assignee", change_type=change_type)
            for e in (assigned, reassigned, unassigned)
        )
        assert got == expected, change_type
    # Without a change type, any change counts.
    assert fires("ATTRIBUTE_VALUE_CHANGED", unassigned, field="assignee")
    # A field's trigger does not fire on another field's event.
    priority = only_event(case, lambda c: c.prioritize("P3", "u1"))
    assert fires("ATTRIBUTE_VALUE_CHANGED", priority, field="priority")
    assert not fires("ATTRIBUTE_VALUE_CHANGED", priority, field="status")
    assert not fires("ATTRIBUTE_VALUE_CHANGED", assigned, field="priority")
    due = only_event(case, lambda c: c.set_due_date(date(2030, 1, 2), "u1"))
    assert fires("ATTRIBUTE_VALUE_CHANGED", due, field="due_date", change_type="VALUE_ADDED")
    assert not fires("ATTRIBUTE_VALUE_CHANGED", due, field="due_date", change_type="VALUE_DELETED")
    cleared = only_event(case, lambda c: c.set_due_date(None, "u1"))
    assert fires("ATTRIBUTE_VALUE_CHANGED", cleared, field="due_date", change_type="VALUE_DELETED")


def test_case_attribute_changes_by_change_type() -> None:
    case = new_case(attributes={"env": ["prod"], "service": ["web"]})
    added = only_event(case, lambda c: c.set_attributes({"env": ["prod", "staging"], "service": ["web"]}, "u1"))
    removed = only_event(case, lambda c: c.set_attributes({"env": ["staging"], "service": ["web"]}, "u1"))
    dropped = only_event(case, lambda c: c.set_attributes({"service": ["web"]}, "u1"))

    def env(event: Any, change_type: str) -> bool:
        return fires("ATTRIBUTE_VALUE_CHANGED", event, field="env", change_type=change_type)

    assert (env(added, "VALUE_ADDED"), env(added, "VALUE_DELETED"), env(added, "ANY_CHANGES")) == (True, False, True)
    assert (env(removed, "VALUE_ADDED"), env(removed, "VALUE_DELETED")) == (False, True)
    assert (env(dropped, "VALUE_ADDED"), env(dropped, "VALUE_DELETED"), env(dropped, "ANY_CHANGES")) == (
        False,
        True,
        True,
    )
    # The event changed `env` only: a trigger on `service` stays quiet, and so does a case-field trigger.
    assert not fires("ATTRIBUTE_VALUE_CHANGED", added, field="service")
    assert not fires("ATTRIBUTE_VALUE_CHANGED", added, field="status")


def test_custom_attribute_changes_compare_the_values_not_their_wrapper() -> None:
    tags = CustomAttributeConfig(
        id="a", org_id="o1", case_type_id="t", key="tags", display_name="Tags", type="TEXT", is_multi=True
    )
    case = new_case(custom_attributes={"tags": tags.coerce(["a", "b"], "/p")})
    shrunk = only_event(case, lambda c: c.set_custom_attributes({"tags": tags.coerce(["a"], "/p")}, "u1"))
    grown = only_event(case, lambda c: c.set_custom_attributes({"tags": tags.coerce(["a", "c"], "/p")}, "u1"))
    emptied = only_event(case, lambda c: c.set_custom_attributes({"tags": tags.coerce([], "/p")}, "u1"))

    def tag(event: Any, change_type: str) -> bool:
        return fires("ATTRIBUTE_VALUE_CHANGED", event, field="tags", change_type=change_type)

    assert (tag(shrunk, "VALUE_ADDED"), tag(shrunk, "VALUE_DELETED")) == (False, True)
    assert (tag(grown, "VALUE_ADDED"), tag(grown, "VALUE_DELETED")) == (True, False)
    assert (tag(emptied, "VALUE_ADDED"), tag(emptied, "VALUE_DELETED"), tag(emptied, "ANY_CHANGES")) == (
        False,
        True,
        True,
    )


# -- SLA targets ---------------------------------------------------------------------------------


def test_sla_targets_are_cleaned_per_priority() -> None:
    cleaned = validate_sla({"P1": {"acknowledge_seconds": 900, "close_seconds": 14_400}, "P3": {}})
    assert cleaned == {
        "P1": {"acknowledge_seconds": 900, "close_seconds": 14_400},
        "P3": {"acknowledge_seconds": None, "close_seconds": None},
    }
    assert validate_sla({"P2": {"close_seconds": SLA_TARGET_MAX_SECONDS}}) == {
        "P2": {"acknowledge_seconds": None, "close_seconds": SLA_TARGET_MAX_SECONDS}
    }


@pytest.mark.parametrize(
    ("targets", "pointer", "detail"),
    [
        ([], "/data/attributes/targets", "targets must be an object keyed by priority"),
        ({"P9": {}}, "/data/attributes/targets/P9", "priority must be one of NOT_DEFINED, P1, P2, P3, P4, P5"),
        ({"P1": 60}, "/data/attributes/targets/P1", "a target holds acknowledge_seconds and close_seconds"),
        ({"P1": {"respond_seconds": 60}}, "/data/attributes/targets/P1", "a target holds "),
        ({"P1": {"acknowledge_seconds": 0}}, "/data/attributes/targets/P1/acknowledge_seconds", "must be a whole"),
        ({"P1": {"close_seconds": 1.5}}, "/data/attributes/targets/P1/close_seconds", "must be a whole"),
        ({"P1": {"close_seconds": True}}, "/data/attributes/targets/P1/close_seconds", "must be a whole"),
        ({"P1": {"close_seconds": "60"}}, "/data/attributes/targets/P1/close_seconds", "must be a whole"),
        (
            {"P1": {"close_seconds": SLA_TARGET_MAX_SECONDS + 1}},
            "/data/attributes/targets/P1/close_seconds",
            "must be a whole number of seconds from 1 to 31536000, or null",
        ),
    ],
)
def test_bad_sla_targets(targets: object, pointer: str, detail: str) -> None:
    err = invalid(validate_sla, targets)
    assert err.pointer == pointer and err.detail.startswith(detail)


def test_sla_deadlines_count_from_the_start() -> None:
    start = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    targets = {"P1": {"acknowledge_seconds": 900, "close_seconds": None}}
    assert sla_deadlines(targets, "P1", start) == {"acknowledge": start + timedelta(minutes=15), "close": None}
    assert sla_deadlines(targets, "P2", start) == {"acknowledge": None, "close": None}
    assert sla_deadlines(None, "P1", start) == {"acknowledge": None, "close": None}


# -- reminders -----------------------------------------------------------------------------------


def test_reminder_lead_times_are_distinct_and_largest_first() -> None:
    assert validate_reminders([0, 86_400, 0, 3_600]) == [86_400, 3_600, 0]
    assert validate_reminders([]) == []
    assert validate_reminders(list(DEFAULT_LEAD_SECONDS)) == [86_400, 0]
    assert len(validate_reminders(list(range(MAX_LEADS)))) == MAX_LEADS


@pytest.mark.parametrize(
    ("leads", "pointer"),
    [
        ("86400", "/data/attributes/lead_times_seconds"),
        (list(range(MAX_LEADS + 1)), "/data/attributes/lead_times_seconds"),
        ([3600, -1], "/data/attributes/lead_times_seconds/1"),
        ([True], "/data/attributes/lead_times_seconds/0"),
        ([0, 1.5], "/data/attributes/lead_times_seconds/1"),
        ([SLA_TARGET_MAX_SECONDS + 1], "/data/attributes/lead_times_seconds/0"),
    ],
)
def test_bad_reminder_lead_times(leads: object, pointer: str) -> None:
    assert invalid(validate_reminders, leads).pointer == pointer


def test_a_case_is_due_at_midnight_utc_of_its_due_date() -> None:
    assert due_instant(date(2030, 2, 28)) == datetime(2030, 2, 28, 0, 0, tzinfo=UTC)
    assert due_instant(date(2030, 2, 28)).utcoffset() == timedelta(0)


# -- duplicate detection settings ----------------------------------------------------------------


def test_duplicate_settings_validation() -> None:
    assert validate_duplicates({}) == {}
    assert validate_duplicates({"enabled": False, "auto_merge": True, "threshold": 1, "window_seconds": 60}) == {
        "enabled": False,
        "auto_merge": True,
        "threshold": 1.0,
        "window_seconds": 60,
    }
    assert isinstance(validate_duplicates({"threshold": 1})["threshold"], float)
    defaults = DuplicateSettings()
    assert (defaults.enabled, defaults.threshold, defaults.window_seconds, defaults.auto_merge) == (
        True,
        0.6,
        7 * 24 * 3600,
        False,
    )


@pytest.mark.parametrize(
    ("values", "member", "detail"),
    [
        ({"enabled": "yes"}, "enabled", "enabled must be a boolean"),
        ({"auto_merge": 1}, "auto_merge", "auto_merge must be a boolean"),
        ({"threshold": 0}, "threshold", "threshold must be a number in (0, 1]"),
        ({"threshold": 1.01}, "threshold", "threshold must be a number in (0, 1]"),
        ({"threshold": True}, "threshold", "threshold must be a number in (0, 1]"),
        ({"threshold": "0.5"}, "threshold", "threshold must be a number in (0, 1]"),
        ({"window_seconds": 59}, "window_seconds", "window_seconds must be from 60 to 31536000"),
        ({"window_seconds": 3600.0}, "window_seconds", "window_seconds must be from 60 to 31536000"),
        ({"window_seconds": SLA_TARGET_MAX_SECONDS + 1}, "window_seconds", "window_seconds must be from 60 to"),
    ],
)
def test_bad_duplicate_settings(values: dict[str, Any], member: str, detail: str) -> None:
    err = invalid(validate_duplicates, values, "/settings")
    assert err.pointer == f"/settings/{member}" and err.detail.startswith(detail)


# -- similarity ----------------------------------------------------------------------------------


def test_title_tokens_drop_case_punctuation_and_stop_words() -> None:
    assert title_tokens("The disk is FULL on web-1!") == {"disk", "full", "web", "1"}
    assert title_tokens("a an the") == frozenset()
    assert title_tokens("") == frozenset()


def test_jaccard() -> None:
    assert jaccard(frozenset({"a", "b"}), frozenset({"b", "c"})) == pytest.approx(1 / 3)
    assert jaccard(frozenset(), frozenset()) == 0.0
    assert jaccard(frozenset({"a"}), frozenset()) == 0.0


words = st.frozensets(st.sampled_from(["disk", "full", "web", "db", "cpu", "high", "1", "2"]), max_size=6)


@given(words, words)
def test_jaccard_is_symmetric_and_bounded(a: frozenset[str], b: frozenset[str]) -> None:
    value = jaccard(a, b)
    assert value == jaccard(b, a)
    assert 0.0 <= value <= 1.0
    assert (value == 1.0) == (a == b and bool(a))
    assert (value == 0.0) == (not a & b)


def test_similarity_scores_titles_plus_an_attribute_bonus() -> None:
    sim = similarity(
        "Disk full on web-1", {"service": ["web"], "env": ["prod"]}, "web-1 disk FULL", {"service": ["web"]}
    )
    assert sim.title == 1.0 and sim.attributes == 0.5
    assert sim.shared == (("service", "web"),) and not sim.conflicting
    assert sim.score == 1.0  # capped
    half = similarity("disk full web", {"service": ["web"]}, "disk full db", {"service": ["web"]})
    assert half.title == 0.5 and half.attributes == 1.0 and half.score == 0.7
    plain = similarity("disk full", {}, "disk", {})
    assert (plain.title, plain.attributes, plain.shared, plain.score) == (0.5, 0.0, (), 0.5)


def test_contradicting_attributes_rule_out_a_duplicate() -> None:
    sim = similarity("Disk full", {"env": ["prod"]}, "Disk full", {"env": ["staging"]})
    assert sim.title == 1.0 and sim.conflicting
    assert not is_possible_duplicate(sim, 0.6)
    overlapping = similarity("Disk full", {"env": ["prod", "eu"]}, "Disk full", {"env": ["staging", "eu"]})
    assert not overlapping.conflicting and is_possible_duplicate(overlapping, 0.6)
    # A key only one case sets says nothing either way.
    one_sided = similarity("Disk full", {"env": ["prod"]}, "Disk full", {"team": ["sre"]})
    assert not one_sided.conflicting


def test_an_attribute_without_values_contradicts_nothing() -> None:
    # An empty list is no value for that key: it cannot disagree with the other case.
    assert not similarity("Disk full", {"env": []}, "Disk full", {"env": ["prod"]}).conflicting
    assert not similarity("Disk full", {"env": []}, "Disk full", {"env": []}).conflicting
    assert is_possible_duplicate(similarity("Disk full", {"env": []}, "Disk full", {"env": ["prod"]}), 0.6)


def test_the_threshold_applies_to_the_title_similarity() -> None:
    sim = Similarity(title=0.6, attributes=1.0, shared=(), conflicting=False)
    assert is_possible_duplicate(sim, 0.6)
    assert not is_possible_duplicate(Similarity(title=0.59, attributes=1.0, shared=(), conflicting=False), 0.6)


attribute_maps = st.dictionaries(
    st.sampled_from(["env", "service", "team"]), st.lists(st.sampled_from(["a", "b", "c"]), max_size=3), max_size=3
)
titles = st.lists(st.sampled_from(["disk", "full", "on", "web-1", "DB", "the", "cpu"]), max_size=5).map(" ".join)


@given(titles, attribute_maps, titles, attribute_maps)
def test_similarity_is_symmetric_and_bounded(ta: str, aa: dict, tb: str, ab: dict) -> None:
    forward, backward = similarity(ta, aa, tb, ab), similarity(tb, ab, ta, aa)
    assert forward == backward
    assert 0.0 <= forward.title <= 1.0 and 0.0 <= forward.attributes <= 1.0 and 0.0 <= forward.score <= 1.0
    assert forward.score >= round(forward.title, 3)


@given(titles, attribute_maps)
def test_a_case_is_a_duplicate_of_its_own_copy(title: str, attributes: dict) -> None:
    sim = similarity(title, attributes, title, attributes)
    assert not sim.conflicting
    assert is_possible_duplicate(sim, 0.6) == bool(title_tokens(title))


# -- notices -------------------------------------------------------------------------------------


def test_notification_request_shape() -> None:
    event = notification_request(
        org_id="o1",
        case_id="c1",
        key="SEC-1",
        reason="sla_breached",
        summary="late",
        recipients=["u"],
        source_event_id="e",
    )
    assert (event.type, event.org_id, event.actor_id, event.subject_id, event.case_id) == (
        "notification.requested",
        "o1",
        None,
        "c1",
        "c1",
    )
    assert event.subject_type == "case"
    assert event.data == {
        "reason": "sla_breached",
        "summary": "late",
        "key": "SEC-1",
        "recipients": ["u"],
        "source_event_id": "e",
    }


def test_record_with_notice_tells_the_assignee() -> None:
    case = new_case(assignee_id="u9")
    system_change = only_event(case, lambda c: c.set_due_date(date(2030, 1, 1), None))
    record_with_notice(case, system_change, "due_date_reminder", "SEC-1 is due today")
    recorded, notice = case.collect_events()
    assert recorded is system_change
    assert notice.type == "notification.requested" and notice.case_id == "c1" and notice.org_id == "o1"
    assert notice.data["recipients"] == ["u9"] and notice.data["source_event_id"] == system_change.id
    assert (notice.data["reason"], notice.data["summary"], notice.data["key"]) == (
        "due_date_reminder",
        "SEC-1 is due today",
        "SEC-1",
    )


def test_record_with_notice_on_an_unassigned_case_has_no_recipients() -> None:
    case = new_case()
    change = only_event(case, lambda c: c.set_due_date(date(2030, 1, 1), None))
    record_with_notice(case, change, "due_date_reminder", "due")
    _, notice = case.collect_events()
    assert notice.data["recipients"] == []
