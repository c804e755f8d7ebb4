"""Case links: which ends may be linked, duplicates in either direction, and the events recorded."""

from __future__ import annotations

import pytest

from casem.domain.case_links import (
    ENTITY_ID_MAX,
    CaseLink,
    EntityType,
    Relationship,
    parse_entity_type,
    parse_relationship,
    validate_entity_id,
)
from casem.domain.errors import InvalidInput


def link(parent: tuple[str, str], child: tuple[str, str], relationship: str = "BLOCKS") -> CaseLink:
    return CaseLink.create(
        actor_id="u1",
        id="l1",
        org_id="o1",
        parent_entity_type=parent[0],
        parent_entity_id=parent[1],
        child_entity_type=child[0],
        child_entity_id=child[1],
        relationship=relationship,
    )


def test_creating_a_link_records_it_on_its_first_case() -> None:
    created = link(("INCIDENT", "inc-9"), ("CASE", "c2"), "CAUSES")
    assert created.case_ids == ["c2"]
    [event] = created.collect_events()
    assert (event.type, event.subject_type, event.subject_id, event.case_id, event.actor_id) == (
        "case.link_created",
        "case_link",
        "l1",
        "c2",
        "u1",
    )
    assert event.data == {
        "parent_entity_type": "INCIDENT",
        "parent_entity_id": "inc-9",
        "child_entity_type": "CASE",
        "child_entity_id": "c2",
        "relationship": "CAUSES",
    }
    both = link(("CASE", "c1"), ("CASE", "c2"))
    assert both.case_ids == ["c1", "c2"] and both.collect_events()[0].case_id == "c1"
    both.delete("u2")
    [deleted] = both.collect_events()
    assert (deleted.type, deleted.actor_id, deleted.case_id) == ("case.link_deleted", "u2", "c1")


def test_a_link_needs_a_case_and_two_different_ends() -> None:
    with pytest.raises(InvalidInput) as raised:
        link(("INCIDENT", "i1"), ("PAGE", "p1"))
    assert (raised.value.detail, raised.value.pointer) == (
        "at least one end of a link must be a case",
        "/data/attributes",
    )
    with pytest.raises(InvalidInput) as raised:
        link(("CASE", "c1"), ("CASE", "c1"))
    assert raised.value.pointer == "/data/attributes/child_entity_id"
    # The same id under another type is another entity.
    assert link(("CASE", "x"), ("INCIDENT", "x")).case_ids == ["x"]


def test_same_as_is_symmetric_only_for_relates_to() -> None:
    a_blocks_b = link(("CASE", "a"), ("CASE", "b"), "BLOCKS")
    b_blocks_a = link(("CASE", "b"), ("CASE", "a"), "BLOCKS")
    assert a_blocks_b.same_as(link(("CASE", "a"), ("CASE", "b"), "BLOCKS"))
    assert not a_blocks_b.same_as(b_blocks_a)
    assert not a_blocks_b.same_as(link(("CASE", "a"), ("CASE", "b"), "CAUSES"))
    relates = link(("CASE", "a"), ("CASE", "b"), "RELATES_TO")
    assert relates.same_as(link(("CASE", "b"), ("CASE", "a"), "RELATES_TO"))
    assert not relates.same_as(link(("CASE", "a"), ("INCIDENT", "b"), "RELATES_TO"))


def test_parsing_names_the_allowed_values() -> None:
    assert parse_entity_type("PAGE", "/p") is EntityType.PAGE
    assert parse_relationship("PARENT_OF") is Relationship.PARENT_OF
    with pytest.raises(InvalidInput) as raised:
        parse_relationship("relates_to")
    assert raised.value.pointer == "/data/attributes/relationship"
    assert raised.value.detail == (
        "invalid value 'relates_to': must be one of RELATES_TO, CAUSES, BLOCKS, DUPLICATES, PARENT_OF, "
        "SUCCESSOR_OF, ESCALATES_TO"
    )
    with pytest.raises(InvalidInput) as raised:
        parse_entity_type("TICKET", "/data/attributes/child_entity_type")
    assert raised.value.pointer == "/data/attributes/child_entity_type"
    assert raised.value.detail.endswith("must be one of CASE, INCIDENT, PAGE, AGENT_CONVERSATION")


@pytest.mark.parametrize("ident", ["", "  ", None, 7, "x" * (ENTITY_ID_MAX + 1)])
def test_bad_entity_ids(ident: object) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_entity_id(ident, "/p")
    assert raised.value.pointer == "/p"


def test_good_entity_ids() -> None:
    assert validate_entity_id("x" * ENTITY_ID_MAX, "/p") == "x" * ENTITY_ID_MAX
