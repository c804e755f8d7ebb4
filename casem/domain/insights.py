"""Case insights: references to outside resources (a monitor, a security signal, an incident...) that give
a case investigative context. One insight per (case, type, resource id); its `ref` is the resource's link."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from casem.domain.cases import parse_enum
from casem.domain.errors import InvalidInput
from casem.domain.events import DomainEvent, EventRecorder, utcnow

REF_MAX = 2048
RESOURCE_ID_MAX = 255
MAX_PER_REQUEST = 100  # the client model's bound on one request's insights


class InsightType(StrEnum):
    SECURITY_SIGNAL = "SECURITY_SIGNAL"
    MONITOR = "MONITOR"
    EVENT_CORRELATION = "EVENT_CORRELATION"
    ERROR_TRACKING = "ERROR_TRACKING"
    CLOUD_COST_RECOMMENDATION = "CLOUD_COST_RECOMMENDATION"
    INCIDENT = "INCIDENT"
    SENSITIVE_DATA_SCANNER_ISSUE = "SENSITIVE_DATA_SCANNER_ISSUE"
    EVENT = "EVENT"
    WATCHDOG_STORY = "WATCHDOG_STORY"
    WIDGET = "WIDGET"
    SECURITY_FINDING = "SECURITY_FINDING"
    INSIGHT_SCORECARD_CAMPAIGN = "INSIGHT_SCORECARD_CAMPAIGN"
    RESOURCE_POLICY = "RESOURCE_POLICY"
    APM_RECOMMENDATION = "APM_RECOMMENDATION"
    SCM_URL = "SCM_URL"
    PROFILING_DOWNSIZING_EXPERIMENT = "PROFILING_DOWNSIZING_EXPERIMENT"


@dataclass(frozen=True)
class InsightRef:
    """One insight as a request names it."""

    type: str
    resource_id: str
    ref: str


def validate_insights(items: Any, pointer: str = "/data/attributes/insights") -> list[InsightRef]:
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_PER_REQUEST:
        raise InvalidInput(f"insights must be a list of 1 to {MAX_PER_REQUEST} insights", pointer)
    cleaned: dict[tuple[str, str], InsightRef] = {}
    for i, item in enumerate(items):
        where = f"{pointer}/{i}"
        if not isinstance(item, dict):
            raise InvalidInput("an insight is an object with type, resource_id and ref", where)
        kind = parse_enum(InsightType, item.get("type"), f"{where}/type").value
        resource_id, ref = item.get("resource_id"), item.get("ref")
        if not isinstance(resource_id, str) or not resource_id.strip() or len(resource_id) > RESOURCE_ID_MAX:
            raise InvalidInput(
                f"resource_id must be a non-empty string of at most {RESOURCE_ID_MAX} characters",
                f"{where}/resource_id",
            )
        if not isinstance(ref, str) or not ref.strip() or len(ref) > REF_MAX:
            raise InvalidInput(f"ref must be a non-empty string of at most {REF_MAX} characters", f"{where}/ref")
        cleaned[(kind, resource_id)] = InsightRef(kind, resource_id, ref)  # a repeated one: the last wins
    return list(cleaned.values())


@dataclass(eq=False)
class CaseInsight(EventRecorder):
    case_id: str
    type: str
    resource_id: str
    org_id: str
    ref: str
    created_by_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)

    def _event(self, kind: str, actor_id: str | None, data: dict[str, Any]) -> None:
        self.record(
            DomainEvent(
                type=f"case.insight_{kind}",
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.case_id,
                case_id=self.case_id,
                data={"type": self.type, "resource_id": self.resource_id, **data},
            )
        )

    @classmethod
    def add(cls, *, actor_id: str | None, **fields: Any) -> CaseInsight:
        insight = cls(created_by_id=actor_id, **fields)
        insight._event("added", actor_id, {"ref": insight.ref})
        return insight

    def point_to(self, ref: str, actor_id: str | None) -> bool:
        """Re-adding an insight with a new ref updates its ref; False when it is unchanged."""
        if ref == self.ref:
            return False
        old, self.ref = self.ref, ref
        self._event("updated", actor_id, {"old_ref": old, "ref": ref})
        return True

    def remove(self, actor_id: str | None) -> None:
        self._event("removed", actor_id, {"ref": self.ref})
