from __future__ import annotations

from datetime import datetime
from typing import Literal

from casem.services.case_api.schemas import Answer, Strict


class MaintenanceWindowCreateAttributes(Strict):
    name: str
    query: str
    start_at: datetime
    end_at: datetime


class MaintenanceWindowCreate(Strict):
    type: Literal["maintenance_window"]
    attributes: MaintenanceWindowCreateAttributes


class MaintenanceWindowCreateRequest(Strict):
    data: MaintenanceWindowCreate


class MaintenanceWindowUpdateAttributes(Strict):
    name: str | None = None
    query: str | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None


class MaintenanceWindowUpdate(Strict):
    type: Literal["maintenance_window"]
    attributes: MaintenanceWindowUpdateAttributes | None = None


class MaintenanceWindowUpdateRequest(Strict):
    data: MaintenanceWindowUpdate


# -- answers (serialize_window in views.py) --------------------------------------------------------------------


class MaintenanceWindowAnswerAttributes(Answer):
    name: str
    query: str
    start_at: str
    end_at: str
    created_by: str | None = None
    updated_by: str | None = None


class MaintenanceWindowResource(Answer):
    id: str
    type: Literal["maintenance_window"]
    attributes: MaintenanceWindowAnswerAttributes


class MaintenanceWindowResponse(Answer):
    data: MaintenanceWindowResource


class MaintenanceWindowsResponse(Answer):
    data: list[MaintenanceWindowResource]
