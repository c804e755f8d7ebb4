"""Maintenance windows of an org: create, list, update, delete."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import maintenance_windows
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.ids import require_uuid
from casem.domain.errors import InvalidInput
from casem.domain.maintenance_windows import MaintenanceWindow, validate_name, validate_query

ATTRS = "/data/attributes"


async def create_window(
    uow: UnitOfWork, org_id: str, actor_id: str | None, *, name: str, query: str, start_at: datetime, end_at: datetime
) -> MaintenanceWindow:
    window = MaintenanceWindow.create(
        actor_id=actor_id,
        id=str(uuid.uuid4()),
        org_id=org_id,
        name=validate_name(name, f"{ATTRS}/name"),
        query=validate_query(query, f"{ATTRS}/query"),
        start_at=start_at,
        end_at=end_at,
    )
    uow.add(window)
    return window


async def get_window(uow: UnitOfWork, org_id: str, window_id: str) -> MaintenanceWindow:
    ident = require_uuid(window_id, "maintenance_window_id")
    return await uow.get(MaintenanceWindow, org_id, ident, resource="maintenance_window")


async def list_windows(uow: UnitOfWork, org_id: str) -> list[MaintenanceWindow]:
    return await uow.scalars(
        sa.select(MaintenanceWindow)
        .where(maintenance_windows.c.org_id == org_id)
        .order_by(maintenance_windows.c.start_at, maintenance_windows.c.id)
    )


async def update_window(
    uow: UnitOfWork, org_id: str, actor_id: str | None, window_id: str, changes: dict[str, Any]
) -> MaintenanceWindow:
    """PUT: the members sent replace the window's; the others are kept."""
    window = await get_window(uow, org_id, window_id)
    fields: dict[str, Any] = {}
    if "name" in changes:
        fields["name"] = validate_name(changes["name"], f"{ATTRS}/name")
    if "query" in changes:
        fields["query"] = validate_query(changes["query"], f"{ATTRS}/query")
    for name in ("start_at", "end_at"):
        if name in changes:
            if changes[name] is None:
                raise InvalidInput(f"{name} must be a date-time", f"{ATTRS}/{name}")
            fields[name] = changes[name]
    window.update(actor_id, **fields)
    return window


async def delete_window(uow: UnitOfWork, org_id: str, actor_id: str | None, window_id: str) -> None:
    window = await get_window(uow, org_id, window_id)
    window.delete(actor_id)
    await uow.session.delete(window)
