"""Custom attribute configs: typed, optionally multi-valued fields that an org adds to the cases of one type."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import custom_attribute_configs
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.case_types.service import get_case_type, validate_description
from casem.app.ids import require_uuid
from casem.domain.case_types import CustomAttributeConfig, CustomAttributeType, validate_attribute_key
from casem.domain.cases import parse_enum
from casem.domain.errors import Conflict, InvalidInput, NotFound
from casem.domain.events import utcnow
from casem.domain.projects import validate_name

OPTION_MAX = 255
OPTIONS_MAX = 500
MAP_FROM_MAX = 255
ATTRS = "/data/attributes"


def validate_options(kind: str, options: list[Any] | None, pointer: str = f"{ATTRS}/type_data/options") -> list[str]:
    """SELECT options: distinct non-empty strings. Other types take none: dropping them silently would hide a typo."""
    if options is None:
        return []
    if kind != CustomAttributeType.SELECT:
        raise InvalidInput(f"type_data.options applies to SELECT attributes only, not {kind}", pointer)
    if len(options) > OPTIONS_MAX:
        raise InvalidInput(f"a SELECT attribute takes at most {OPTIONS_MAX} options", pointer)
    seen: list[str] = []
    for i, value in enumerate(options):
        if not isinstance(value, str) or not value.strip() or len(value) > OPTION_MAX:
            raise InvalidInput(
                f"option values must be non-empty strings of at most {OPTION_MAX} characters", f"{pointer}/{i}/value"
            )
        if value in seen:
            raise InvalidInput(f"option {value!r} is listed twice", f"{pointer}/{i}/value")
        seen.append(value)
    return seen


def validate_map_from(value: Any, pointer: str = f"{ATTRS}/map_from") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAP_FROM_MAX:
        raise InvalidInput(f"map_from must be a string of at most {MAP_FROM_MAX} characters", pointer)
    return value


async def _live_key_taken(uow: UnitOfWork, org_id: str, type_id: str, key: str) -> bool:
    found = await uow.scalar(
        sa.select(custom_attribute_configs.c.id).where(
            custom_attribute_configs.c.org_id == org_id,
            custom_attribute_configs.c.case_type_id == type_id,
            custom_attribute_configs.c.key == key,
            custom_attribute_configs.c.deleted_at.is_(None),
        )
    )
    return found is not None


async def create_config(
    uow: UnitOfWork,
    org_id: str,
    actor_id: str | None,
    case_type_id: str,
    *,
    key: Any,
    display_name: Any,
    type: Any,
    is_multi: bool = False,
    description: Any = None,
    options: list[Any] | None = None,
    map_from: Any = None,
    config_id: str | None = None,
) -> CustomAttributeConfig:
    case_type = await get_case_type(uow, org_id, case_type_id)
    kind = parse_enum(CustomAttributeType, type, f"{ATTRS}/type").value
    config = CustomAttributeConfig(
        id=config_id or str(uuid.uuid4()),
        org_id=org_id,
        case_type_id=case_type.id,
        key=validate_attribute_key(key),
        display_name=validate_name(display_name, f"{ATTRS}/display_name"),
        type=kind,
        is_multi=bool(is_multi),
        description=validate_description(description),
        options=validate_options(kind, options),
        map_from=validate_map_from(map_from),
    )
    if await _live_key_taken(uow, org_id, case_type.id, config.key):
        raise Conflict(f"case type {case_type.name!r} already has a custom attribute with key {config.key!r}")
    config.event("created", actor_id, {"type": config.type, "is_multi": config.is_multi})
    uow.add(config)
    return config


async def get_config(uow: UnitOfWork, org_id: str, case_type_id: str, config_id: str) -> CustomAttributeConfig:
    case_type = await get_case_type(uow, org_id, case_type_id)
    config_id = require_uuid(config_id, "custom attribute id")
    config = await uow.get(CustomAttributeConfig, org_id, config_id, resource="custom attribute")
    if config.case_type_id != case_type.id:
        raise NotFound("custom attribute", config_id)
    return config


async def list_configs(uow: UnitOfWork, org_id: str, case_type_id: str | None = None) -> list[CustomAttributeConfig]:
    """The org's live configs, of one case type or of all, in creation order."""
    if case_type_id is not None:
        case_type_id = (await get_case_type(uow, org_id, case_type_id)).id
    statement = sa.select(CustomAttributeConfig).where(
        custom_attribute_configs.c.org_id == org_id, custom_attribute_configs.c.deleted_at.is_(None)
    )
    if case_type_id is not None:
        statement = statement.where(custom_attribute_configs.c.case_type_id == case_type_id)
    return await uow.scalars(statement.order_by(custom_attribute_configs.c.created_at, custom_attribute_configs.c.key))


async def update_config(
    uow: UnitOfWork, org_id: str, actor_id: str | None, case_type_id: str, config_id: str, changes: dict[str, Any]
) -> CustomAttributeConfig:
    """Only the members sent change. A type change away from SELECT drops its options."""
    config = await get_config(uow, org_id, case_type_id, config_id)
    wanted: dict[str, Any] = {}
    if "display_name" in changes:
        wanted["display_name"] = validate_name(changes["display_name"], f"{ATTRS}/display_name")
    if "description" in changes:
        wanted["description"] = validate_description(changes["description"])
    if "map_from" in changes:
        wanted["map_from"] = validate_map_from(changes["map_from"])
    kind = config.type
    if changes.get("type") is not None:
        kind = wanted["type"] = parse_enum(CustomAttributeType, changes["type"], f"{ATTRS}/type").value
    type_data = changes.get("type_data")
    if type_data is not None and type_data.get("options") is not None:
        wanted["options"] = validate_options(kind, [o["value"] for o in type_data["options"]])
    elif kind != CustomAttributeType.SELECT:
        wanted["options"] = []
    effective = {k: {"old": getattr(config, k), "new": v} for k, v in wanted.items() if getattr(config, k) != v}
    if effective:
        for name, change in effective.items():
            setattr(config, name, change["new"])
        config.event("updated", actor_id, {"changes": effective})
    return config


async def delete_config(uow: UnitOfWork, org_id: str, actor_id: str | None, case_type_id: str, config_id: str) -> None:
    """Soft delete: values already on cases stay as they are; the key becomes free for a new config."""
    config = await get_config(uow, org_id, case_type_id, config_id)
    config.deleted_at = utcnow()
    config.event("deleted", actor_id)
