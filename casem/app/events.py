"""Domain events as consumers receive them: the CloudEvents envelope the outbox wrote, parsed once.

Every consumer of the domain-events topics (the handler flavors, `casem dlq`) and the use cases they
call take this `Event`; a message that is not one raises `PoisonMessage` (dead-lettered at once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from casem.adapters import fastjson

EVENT_TYPE_PREFIX = "com.casem."


class PoisonMessage(Exception):  # noqa: N818 - reads as "raise PoisonMessage(...)"
    """The message can never be handled (not a CloudEvent, unknown tenant...): dead-letter it now."""


@dataclass(frozen=True)
class Event:
    """A domain event as it arrives from the bus (the CloudEvents envelope written by the outbox)."""

    id: str
    type: str  # short type, e.g. "case.status_changed"
    version: int
    tenant: str
    org_id: str
    case_id: str | None
    actor_id: str | None
    subject: str
    time: datetime
    sequence: int | None
    data: dict[str, Any]
    envelope: dict[str, Any] = field(repr=False)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Event:
        try:
            envelope = fastjson.loads(raw)
            ce_type: str = envelope["type"]
            if not ce_type.startswith(EVENT_TYPE_PREFIX):
                raise PoisonMessage(f"not a casem event type: {ce_type!r}")
            short, _, version = ce_type[len(EVENT_TYPE_PREFIX) :].rpartition(".v")
            return cls(
                id=envelope["id"],
                type=short,
                version=int(version),
                tenant=envelope["tenant"],
                org_id=envelope["orgid"],
                case_id=envelope.get("caseid"),
                actor_id=envelope.get("actorid"),
                subject=envelope["subject"],
                time=datetime.fromisoformat(envelope["time"].replace("Z", "+00:00")),
                sequence=envelope.get("sequence"),
                data=envelope.get("data") or {},
                envelope=envelope,
            )
        except PoisonMessage:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PoisonMessage(f"not a casem CloudEvent: {exc}") from exc

    def changed(self, name: str) -> dict[str, Any] | None:
        """The {old, new} of a field this event changed, if it did."""
        return (self.data.get("changes") or {}).get(name)
