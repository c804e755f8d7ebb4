"""Answer documents of casem's activity routes (the audit log and the analytics in views.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

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


# -- GET /api/v2/casem/analytics (casem.app.analytics.service.summary, casem.app.oncall.analytics.summary) --------


class TeamPageFigures(Answer):
    team_id: str | None
    pages: int
    acknowledged: int
    resolved: int
    mean_time_to_acknowledge_seconds: float | None
    mean_time_to_resolve_seconds: float | None


class ResponderPageFigures(Answer):
    user_id: str
    pages_notified: int
    pages_acknowledged: int


class OutOfHoursPages(Answer):
    time_zone: str
    business_hours: str
    pages: int
    share: float | None


class OnCallAnalytics(Answer):
    pages: int
    teams: list[TeamPageFigures]
    responders: list[ResponderPageFigures]
    out_of_hours: OutOfHoursPages


class AnalyticsAttributes(Answer):
    org_id: str
    project_id: str | None
    cases_created: int
    cases_closed: int
    open_by_priority: dict[str, int] = Field(description="Open cases by priority.")
    mean_time_to_first_response_seconds: float | None
    mean_time_to_close_seconds: float | None
    on_call: OnCallAnalytics | None = Field(None, description="When the on-call tenant runs: its pages' figures.")


class AnalyticsResource(Answer):
    id: str = Field(description="The project asked about, or the org.")
    type: Literal["case_analytics"]
    attributes: AnalyticsAttributes


class AnalyticsResponse(Answer):
    data: AnalyticsResource
