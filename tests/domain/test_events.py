"""Domain events and their CloudEvents 1.0 envelope; identity keys."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from casem.domain.events import SOURCE, SPEC_VERSION, DomainEvent, with_sequence
from casem.domain.identity import hash_key, new_api_key, new_app_key
from tests.domain.support import new_case, only_event

# CloudEvents 1.0: attribute names are lower-case ASCII letters and digits, at most 20 characters.
ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]{1,20}$")
REQUIRED = {"specversion", "id", "source", "type"}
RFC3339_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def test_the_envelope_is_a_cloudevent() -> None:
    case = new_case()
    event = only_event(case, lambda c: c.prioritize("P1", "u1"))
    envelope = event.envelope("acme")
    assert set(envelope) >= REQUIRED
    assert all(ATTRIBUTE_NAME.match(name) for name in envelope)
    assert envelope["specversion"] == SPEC_VERSION == "1.0"
    assert envelope["id"] == event.id and envelope["source"] == f"{SOURCE}/acme" == "casem/case-api/acme"
    assert envelope["type"] == "com.casem.case.priority_changed.v1"
    assert envelope["subject"] == "case/c1" and envelope["datacontenttype"] == "application/json"
    assert RFC3339_UTC.match(envelope["time"])
    assert datetime.fromisoformat(envelope["time"].replace("Z", "+00:00")) == event.time
    assert (envelope["orgid"], envelope["caseid"], envelope["actorid"], envelope["tenant"]) == (
        "o1",
        "c1",
        "u1",
        "acme",
    )
    assert envelope["sequence"] is None and envelope["data"] is event.data
    assert event.envelope("acme", 7)["sequence"] == 7


def test_the_envelope_carries_the_trace_it_was_made_in() -> None:
    event = only_event(new_case(), lambda c: c.retitle("x", "u1"))
    assert "traceparent" not in event.envelope("acme") and "tracestate" not in event.envelope("acme")
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    traced = event.envelope("acme", trace={"traceparent": parent, "tracestate": "casem=1", "baggage": "no"})
    assert (traced["traceparent"], traced["tracestate"]) == (parent, "casem=1")
    assert "baggage" not in traced and all(ATTRIBUTE_NAME.match(name) for name in traced)
    assert "tracestate" not in event.envelope("acme", trace={"traceparent": parent, "tracestate": ""})


def test_sequence_is_added_to_a_copy() -> None:
    event = only_event(new_case(), lambda c: c.retitle("x", "u1"))
    stored = event.envelope("acme")
    sequenced = with_sequence(stored, 42)
    assert sequenced["sequence"] == 42 and stored["sequence"] is None
    assert {k: v for k, v in sequenced.items() if k != "sequence"} == {
        k: v for k, v in stored.items() if k != "sequence"
    }


def test_event_defaults_and_versioned_type() -> None:
    event = DomainEvent(type="project.created", org_id="o1", actor_id=None, subject_id="p1", data={})
    assert event.subject_type == "case" and event.case_id is None and event.version == 1
    assert event.time.tzinfo is UTC
    later = DomainEvent(type="project.created", org_id="o1", actor_id=None, subject_id="p1", data={}, version=2)
    assert later.cloudevent_type == "com.casem.project.created.v2"
    assert later.id != event.id and later.order > event.order  # recording order across aggregates
    assert later.envelope("t")["subject"] == "case/p1" and later.envelope("t")["actorid"] is None


def test_collecting_events_empties_the_recorder() -> None:
    case = new_case()
    case.retitle("a", "u1")
    case.retitle("b", "u1")
    first = case.collect_events()
    assert [e.data["changes"]["title"]["new"] for e in first] == ["a", "b"]
    assert first[0].order < first[1].order
    assert case.collect_events() == []


def test_keys_are_stored_as_sha256_hex() -> None:
    assert hash_key("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert hash_key("é") == hashlib.sha256("é".encode()).hexdigest()
    assert hash_key("a") != hash_key("A")


def test_new_keys_have_datadogs_shapes() -> None:
    api_keys = {new_api_key() for _ in range(50)}
    app_keys = {new_app_key() for _ in range(50)}
    assert len(api_keys) == 50 and len(app_keys) == 50
    assert all(re.fullmatch(r"[0-9a-f]{32}", k) for k in api_keys)
    assert all(re.fullmatch(r"[0-9a-f]{40}", k) for k in app_keys)


@given(st.text(max_size=64))
def test_hash_key_is_a_64_hex_digest(secret: str) -> None:
    digest = hash_key(secret)
    assert re.fullmatch(r"[0-9a-f]{64}", digest) and digest == hash_key(secret)
