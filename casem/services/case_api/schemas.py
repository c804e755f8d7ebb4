"""Request documents shared by every resource: JSON:API `data` wrappers with strict members."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown members are rejected with a pointer to them, so a typo never silently does nothing."""

    model_config = ConfigDict(extra="forbid", strict=False)


class RelationshipData(Strict):
    id: str
    type: str


class Relationship(Strict):
    data: RelationshipData | None = None


class NullableRelationship(Strict):
    data: RelationshipData | None


def dump_set(model: BaseModel) -> dict[str, Any]:
    """Only the members the client actually sent (PATCH semantics)."""
    return model.model_dump(exclude_unset=True)
