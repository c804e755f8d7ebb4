"""Domain events and their CloudEvents envelope.

Every state change records one event; the unit of work writes it to the tenant's
`domain_events` outbox in the same transaction as the change. The envelope follows
CloudEvents 1.0 (structured JSON mode) so any consumer can read it without casem code.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from casem.domain.ids import new_id

_recorded = itertools.count()  # recording order across aggregates within one process

SPEC_VERSION = "1.0"
TRACE_ATTRIBUTES = ("traceparent", "tracestate")
SOURCE = "casem/case-api"
EVENT_VERSION = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class DomainEvent:
    """One change to the domain. `type` is short (`case.created`); the envelope adds the prefix."""

    type: str
    org_id: str
    actor_id: str | None
    subject_id: str
    data: dict[str, Any]
    subject_type: str = "case"
    id: str = field(default_factory=new_id)
    time: datetime = field(default_factory=utcnow)
    version: int = EVENT_VERSION
    case_id: str | None = None
    order: int = field(default_factory=lambda: next(_recorded), compare=False, repr=False)

    @property
    def cloudevent_type(self) -> str:
        return f"com.casem.{self.type}.v{self.version}"

    def envelope(
        self, tenant: str, sequence: int | None = None, trace: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """The CloudEvents structured-mode envelope, with casem's extension attributes, and the trace the
        change was made in (`traceparent`/`tracestate`, CloudEvents' distributed tracing extension) when
        there is one: plain strings, so the domain knows nothing of the tracing library."""
        traced = {k: trace[k] for k in TRACE_ATTRIBUTES if trace and trace.get(k)}
        return {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": f"{SOURCE}/{tenant}",
            "type": self.cloudevent_type,
            "subject": f"{self.subject_type}/{self.subject_id}",
            "time": self.time.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "orgid": self.org_id,
            "caseid": self.case_id,
            "actorid": self.actor_id,
            "sequence": sequence,
            "tenant": tenant,
            **traced,
            "data": self.data,
        }


def with_sequence(envelope: dict[str, Any], sequence: int) -> dict[str, Any]:
    """The stored envelope gets its sequence when read from the outbox (the database assigns it)."""
    return {**envelope, "sequence": sequence}


class EventRecorder:
    """Mixin for aggregates: changes append events that the unit of work collects."""

    def _events(self) -> list[DomainEvent]:
        pending = self.__dict__.get("_pending_events")
        if pending is None:
            pending = []
            self.__dict__["_pending_events"] = pending
        return pending

    def record(self, event: DomainEvent) -> None:
        self._events().append(event)

    def collect_events(self) -> list[DomainEvent]:
        events = list(self._events())
        self._events().clear()
        return events

    def replace_from_import(self, changes: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        """An import told to let its file win (`--on-conflict replace`): set the fields that differ and record
        `<kind>.import_replaced` with their old and new values. Returns the effective changes (none: no event)."""
        effective = {k: (getattr(self, k), v) for k, v in changes.items() if getattr(self, k) != v}
        if not effective:
            return {}
        for name, (_old, new) in effective.items():
            setattr(self, name, new)
        kind = _IMPORT_KINDS.get(type(self).__name__, type(self).__name__.lower())
        ident = str(getattr(self, "id", ""))
        self.record(
            DomainEvent(
                type=f"{kind}.import_replaced",
                org_id=str(getattr(self, "org_id", "")),
                actor_id=None,
                subject_id=ident,
                subject_type=kind,
                case_id=ident if kind == "case" else getattr(self, "case_id", None),
                data={"changes": {k: {"old": _plain(o), "new": _plain(n)} for k, (o, n) in effective.items()}},
            )
        )
        return effective


_IMPORT_KINDS = {
    "CaseType": "case_type",
    "CustomAttributeConfig": "custom_attribute",
    "TimelineCell": "timeline_cell",
    "CaseView": "case_view",
    "CaseLink": "case_link",
}


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
