"""servicenow-sync: pushes case changes to the case's ServiceNow incident, and opens incidents when the project
auto-creates them (`settings.integration_service_now`). Same effect as jira-sync, for the other remote."""

from __future__ import annotations

from typing import ClassVar

from casem.domain.integrations import SERVICENOW
from casem.services.case_event_handler.flavors.jira_sync import SyncFlavor
from casem.services.case_event_handler.framework import flavor


@flavor
class ServiceNowSync(SyncFlavor):
    name: ClassVar[str] = "servicenow-sync"
    system: ClassVar[str] = SERVICENOW
