"""Answer documents of casem's activity routes (the audit log in views.py)."""

from __future__ import annotations

from typing import Any, Literal

from casem.services.case_api.schemas import Answer


class AuditAttributes(Answer):
    event_type: str
    subject: str | None
    case_id: str | None
    actor_id: str | None
    time: str
    changes: Any


class AuditEntry(Answer):
    id: str
    type: Literal["audit_entry"]
    attributes: AuditAttributes


class AuditPage(Answer):
    size: int
    number: int
    total: int


class AuditMeta(Answer):
    page: AuditPage


class AuditResponse(Answer):
    """The answer of GET /api/v2/casem/audit."""

    data: list[AuditEntry]
    meta: AuditMeta
