"""Case types: create, list, update and soft-delete an org's types; the built-in STANDARD type is read-only."""

from __future__ import annotations

import unicodedata
import uuid
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import case_types
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.ids import require_uuid
from casem.domain.case_types import CaseType
from casem.domain.cases import STANDARD_TYPE_ID
from casem.domain.errors import InvalidInput
from casem.domain.events import utcnow
from casem.domain.projects import validate_name

DESCRIPTION_MAX = 4096
EMOJI_MAX = 32  # the column's width; real emoji sequences (flags, ZWJ families) stay well below it
# Characters that may appear inside an emoji sequence besides the pictographs themselves:
# zero-width joiner, variation selectors, the keycap mark and tag characters (subdivision flags).
_EMOJI_JOINERS = {"\u200d", "\ufe0e", "\ufe0f", "\u20e3"}


def validate_emoji(emoji: Any, pointer: str = "/data/attributes/emoji") -> str:
    """Empty, or one or more emoji: every character a pictograph, modifier or joiner."""
    if emoji is None or emoji == "":
        return ""
    if not isinstance(emoji, str) or len(emoji) > EMOJI_MAX:
        raise InvalidInput(f"emoji must be a string of at most {EMOJI_MAX} characters", pointer)
    pictographs = 0
    for ch in emoji:
        category = unicodedata.category(ch)
        if category == "So":
            pictographs += 1
        elif not (ch in _EMOJI_JOINERS or category == "Sk" or 0xE0020 <= ord(ch) <= 0xE007F or ch in "#*0123456789"):
            raise InvalidInput(f"emoji {emoji!r} is not an emoji", pointer)
    if not pictographs and "\u20e3" not in emoji:
        raise InvalidInput(f"emoji {emoji!r} is not an emoji", pointer)
    return emoji


def validate_description(description: Any, pointer: str = "/data/attributes/description") -> str:
    if description is None:
        return ""
    if not isinstance(description, str):
        raise InvalidInput("description must be a string", pointer)
    if len(description) > DESCRIPTION_MAX:
        raise InvalidInput(
            f"description is {len(description)} characters long; the limit is {DESCRIPTION_MAX}", pointer
        )
    return description


async def create_case_type(
    uow: UnitOfWork,
    org_id: str,
    actor_id: str | None,
    *,
    name: Any,
    description: Any = None,
    emoji: Any = None,
    type_id: str | None = None,
) -> CaseType:
    case_type = CaseType(
        id=type_id or str(uuid.uuid4()),
        org_id=org_id,
        name=validate_name(name),
        description=validate_description(description),
        emoji=validate_emoji(emoji),
    )
    case_type.event("created", actor_id, org_id, {"description": case_type.description, "emoji": case_type.emoji})
    uow.add(case_type)
    return case_type


async def get_case_type(uow: UnitOfWork, org_id: str, type_id: str) -> CaseType:
    """One of the org's live types, or STANDARD. Another org's id, or a malformed one, is a 404 or 400."""
    type_id = require_uuid(type_id, "case type id")
    return await uow.get(CaseType, org_id, type_id, resource="case type")


async def list_case_types(uow: UnitOfWork, org_id: str) -> list[CaseType]:
    """STANDARD first, then the org's live types in creation order."""
    return await uow.scalars(
        sa.select(CaseType)
        .where(
            sa.or_(case_types.c.id == STANDARD_TYPE_ID, case_types.c.org_id == org_id),
            case_types.c.deleted_at.is_(None),
        )
        .order_by((case_types.c.id != STANDARD_TYPE_ID), case_types.c.created_at, case_types.c.name)
    )


def _writable(case_type: CaseType, verb: str) -> None:
    if case_type.builtin:
        raise InvalidInput(f"the built-in {case_type.name} case type cannot be {verb}")


async def update_case_type(
    uow: UnitOfWork, org_id: str, actor_id: str | None, type_id: str, changes: dict[str, Any]
) -> CaseType:
    case_type = await get_case_type(uow, org_id, type_id)
    _writable(case_type, "changed")
    wanted: dict[str, Any] = {}
    if "name" in changes:
        wanted["name"] = validate_name(changes["name"])
    if "description" in changes:
        wanted["description"] = validate_description(changes["description"])
    if "emoji" in changes:
        wanted["emoji"] = validate_emoji(changes["emoji"])
    effective = {k: {"old": getattr(case_type, k), "new": v} for k, v in wanted.items() if getattr(case_type, k) != v}
    if effective:
        for name, change in effective.items():
            setattr(case_type, name, change["new"])
        case_type.event("updated", actor_id, org_id, {"changes": effective})
    return case_type


async def delete_case_type(uow: UnitOfWork, org_id: str, actor_id: str | None, type_id: str) -> None:
    """Soft delete: cases of the type keep pointing at it, but it is no longer listed or usable."""
    case_type = await get_case_type(uow, org_id, type_id)
    _writable(case_type, "deleted")
    case_type.deleted_at = utcnow()
    case_type.event("deleted", actor_id, org_id)


async def find_case_type(uow: UnitOfWork, type_id: str) -> CaseType | None:
    """Any stored type by id, deleted or of any org (the importer compares what it finds)."""
    return await uow.session.get(CaseType, type_id)
