"""What a case-event-handler flavor is: the event types it declares and an idempotent effect.

A flavor's `apply` runs inside a unit of work on the tenant's database; the runner records the
event id in `handler_processed_events` in the SAME transaction, so a database effect happens
exactly once per flavor however often Kafka redelivers the event. Effects that leave casem
(SMTP, Slack, webhooks) are at-least-once: the runner marks them done right after they succeed.

The exception is a flavor that declares `converges = True`: its effect brings something outside the database up
to the database's current state (search-indexing re-reads each case's revision and writes only documents stored
at an older one), so applying an event again is a no-op by construction and needs no record. The runner then keeps
no ledger for it and applies it in a read-only unit of work on the primary (never a lagging replica, whose stale
state would be converged on for good): it writes nothing to the database, so on SQLite it never takes the file's
write lock (which case-api's writes wait on) and on PostgreSQL it is autocommit reads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.events import EVENT_TYPE_PREFIX, Event, PoisonMessage


@dataclass
class HandlerServices:
    """What flavors may reach besides the database: outbound settings and side channels."""

    settings: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


class Flavor(Protocol):
    name: ClassVar[str]
    handles: ClassVar[frozenset[str]]  # short event types; empty means every event
    # Optional (see `converges`): True when the effect converges on current state, so the runner keeps no
    # processed-events record and gives the effect a read-only unit of work on the primary.

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        """The flavor's effect. Database effects go through `uow` (committed by the runner)."""
        ...


# A flavor may also define `apply_batch(events, uow, services)`: the effect of several events of one tenant at once
# (none processed yet, each once), in one unit of work. The runner then hands it polled batches, several in flight:
# only for effects that do not depend on the order of events across batches (search-indexing writes each case's
# current, versioned state). Whatever fails in it is applied again event by event with `apply`, so `apply` stays.


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


def converges(flavor_obj: Flavor) -> bool:
    """Whether the flavor's effect converges on the database's current state (a redelivery is a no-op by
    construction): it then writes nothing to the database and the runner keeps no processed-events record."""
    return bool(getattr(flavor_obj, "converges", False))


__all__ = [
    "EVENT_TYPE_PREFIX",
    "FLAVORS",
    "Event",
    "Flavor",
    "HandlerServices",
    "PoisonMessage",
    "converges",
    "flavor",
    "handles",
]

EffectFn = Callable[[Event, UnitOfWork, HandlerServices], Awaitable[None]]
