"""jira-sync: pushes case changes to the case's Jira issue, and creates issues when the project auto-creates them.

The effect is `casem.app.integrations.sync.sync_case_event`: the project's `settings.integration_jira` decides
what goes out; changes that came from Jira are never sent back; every push is a cell on the case's timeline.
"""

from __future__ import annotations

from typing import ClassVar

from prometheus_client import Counter

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.integrations.remotes import RemoteSystems, remote_systems_from_env
from casem.app.integrations.sync import HANDLED, sync_case_event
from casem.domain.integrations import JIRA
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor

OUTCOMES = Counter("casem_integration_sync_total", "Case events seen by the sync flavors", ["system", "outcome"])


def remote_systems(services: HandlerServices) -> RemoteSystems:
    """The runner's RemoteSystems (tests and `casem up` pass one); else one built from the environment, once."""
    found = services.extras.get("integrations")
    if found is None:
        found = services.extras["integrations"] = remote_systems_from_env()
    return found


class SyncFlavor:
    name: ClassVar[str]
    system: ClassVar[str]
    handles: ClassVar[frozenset[str]] = HANDLED

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        outcome = await sync_case_event(uow, remote_systems(services), event, self.system)
        OUTCOMES.labels(self.system, outcome).inc()


@flavor
class JiraSync(SyncFlavor):
    name: ClassVar[str] = "jira-sync"
    system: ClassVar[str] = JIRA


__all__ = ["JiraSync", "SyncFlavor", "remote_systems"]
