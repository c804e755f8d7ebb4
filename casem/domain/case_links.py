"""Case links: a directional relationship between two entities, at least one of them a case.

The other end may be an entity casem does not hold (an incident, a page, an agent conversation): it is
kept by its id, as the client sent it. A case end is always a case of the link's org.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from casem.domain.cases import parse_enum
from casem.domain.errors import Conflict, InvalidInput
from casem.domain.events import DomainEvent, EventRecorder, utcnow

ENTITY_ID_MAX = 255


class EntityType(StrEnum):
    CASE = "CASE"
    INCIDENT = "INCIDENT"
    PAGE = "PAGE"
    AGENT_CONVERSATION = "AGENT_CONVERSATION"


class Relationship(StrEnum):
    RELATES_TO = "RELATES_TO"  # the one symmetric kind: A relates to B is B relates to A
    CAUSES = "CAUSES"
    BLOCKS = "BLOCKS"
    DUPLICATES = "DUPLICATES"
    PARENT_OF = "PARENT_OF"
    SUCCESSOR_OF = "SUCCESSOR_OF"
    ESCALATES_TO = "ESCALATES_TO"


def parse_entity_type(value: Any, pointer: str) -> EntityType:
    return parse_enum(EntityType, value, pointer)


def parse_relationship(value: Any, pointer: str = "/data/attributes/relationship") -> Relationship:
    return parse_enum(Relationship, value, pointer)


def validate_entity_id(value: Any, pointer: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > ENTITY_ID_MAX:
        raise InvalidInput(f"entity ids are non-empty strings of at most {ENTITY_ID_MAX} characters", pointer)
    return value


@dataclass(eq=False)
class CaseLink(EventRecorder):
    id: str
    org_id: str
    parent_entity_type: str
    parent_entity_id: str
    child_entity_type: str
    child_entity_id: str
    relationship: str
    created_by_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    merge_id: str | None = None  # set on the link a merge made (duplicate DUPLICATES primary)

    @classmethod
    def merged(cls, *, id: str, org_id: str, duplicate_id: str, primary_id: str, merge_id: str) -> CaseLink:
        """The link a merge leaves: the duplicate DUPLICATES the primary (the merge's `case.merged` says so on
        the bus; this link records no event of its own)."""
        return cls(
            id=id,
            org_id=org_id,
            parent_entity_type=EntityType.CASE.value,
            parent_entity_id=duplicate_id,
            child_entity_type=EntityType.CASE.value,
            child_entity_id=primary_id,
            relationship=Relationship.DUPLICATES.value,
            merge_id=merge_id,
        )

    @property
    def case_ids(self) -> list[str]:
        ends = [(self.parent_entity_type, self.parent_entity_id), (self.child_entity_type, self.child_entity_id)]
        return [ident for kind, ident in ends if kind == EntityType.CASE]

    def _event(self, kind: str, actor_id: str | None) -> None:
        self.record(
            DomainEvent(
                type=f"case.link_{kind}",
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.id,
                subject_type="case_link",
                # Ordered with the changes of the (first) case it links, which the relay keeps in sequence.
                case_id=self.case_ids[0],
                data={
                    "parent_entity_type": self.parent_entity_type,
                    "parent_entity_id": self.parent_entity_id,
                    "child_entity_type": self.child_entity_type,
                    "child_entity_id": self.child_entity_id,
                    "relationship": self.relationship,
                },
            )
        )

    @classmethod
    def create(cls, *, actor_id: str | None, **fields: Any) -> CaseLink:
        link = cls(created_by_id=actor_id, **fields)
        if not link.case_ids:
            raise InvalidInput("at least one end of a link must be a case", "/data/attributes")
        if (link.parent_entity_type, link.parent_entity_id) == (link.child_entity_type, link.child_entity_id):
            raise InvalidInput("an entity cannot be linked to itself", "/data/attributes/child_entity_id")
        link._event("created", actor_id)
        return link

    def same_as(self, other: CaseLink) -> bool:
        """Whether `other` states the same relationship (either direction, for the symmetric kind)."""
        if self.relationship != other.relationship:
            return False
        mine = ((self.parent_entity_type, self.parent_entity_id), (self.child_entity_type, self.child_entity_id))
        theirs = ((other.parent_entity_type, other.parent_entity_id), (other.child_entity_type, other.child_entity_id))
        if self.relationship == Relationship.RELATES_TO:
            return set(mine) == set(theirs)
        return mine == theirs

    def delete(self, actor_id: str | None) -> None:
        if self.merge_id is not None:
            raise Conflict(f"this link records merge {self.merge_id}: a merge is not undone by removing its link")
        self._event("deleted", actor_id)
