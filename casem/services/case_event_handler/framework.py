"""What a case-event-handler flavor is: the event types it declares and an idempotent effect.

A flavor's `apply` runs inside a unit of work on the tenant's database; the runner records the
event id in `handler_processed_events` in the SAME transaction, so a database effect happens
exactly once per flavor however often Kafka redelivers the event. Effects that leave casem
(SMTP, Slack, webhooks) are at-least-once: the runner marks them done right after they succeed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol

from casem.adapters.storage.unit_of_work import UnitOfWork

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
            envelope = json.loads(raw)
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


@dataclass
class HandlerServices:
    """What flavors may reach besides the database: outbound settings and side channels."""

    settings: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


class Flavor(Protocol):
    name: ClassVar[str]
    handles: ClassVar[frozenset[str]]  # short event types; empty means every event

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        """The flavor's effect. Database effects go through `uow` (committed by the runner)."""
        ...


FLAVORS: dict[str, Callable[[], Flavor]] = {}


def flavor(cls: type) -> type:
    """Class decorator registering a flavor under its `name` (must be one of the registry's 17)."""
    from casem.topology.services import EVENT_HANDLER_FLAVORS

    if cls.name not in EVENT_HANDLER_FLAVORS:
        raise ValueError(f"{cls.name!r} is not a case-event-handler flavor of the service registry")
    FLAVORS[cls.name] = cls
    return cls


def handles(flavor_obj: Flavor, event: Event) -> bool:
    return not flavor_obj.handles or event.type in flavor_obj.handles


EffectFn = Callable[[Event, UnitOfWork, HandlerServices], Awaitable[None]]
