"""The caseworker as the use cases see it: the long-running work they hand over (a port).

Implemented over Temporal by casem/adapters/workflows/client.py (TemporalCaseworker); the inputs are the
plain dataclasses of casem/adapters/workflows/contracts.py. Whoever runs a service connects it (or not:
without CASEM_TEMPORAL_ADDRESS, uploads wait for the caseworker's sweep and merges are refused).
"""

from __future__ import annotations

from typing import Any, Protocol

from casem.adapters.workflows.contracts import MergeRequest
from casem.domain.attachments import Attachment


class Caseworker(Protocol):
    async def attachment_uploaded(self, tenant: str, attachment: Attachment) -> None: ...

    async def attachment_deleted(self, tenant: str, attachment: Attachment) -> None: ...

    async def case_archived(self, tenant: str, org_id: str, case_id: str) -> Any: ...

    async def case_unarchived(self, tenant: str, org_id: str, case_id: str) -> None: ...

    async def ensure_retention(self, tenant: str, org_id: str, case_id: str) -> bool: ...

    async def start_merge(self, request: MergeRequest) -> Any: ...

    async def start_page_escalation(self, tenant: str, org_id: str, page_id: str) -> Any:
        """Start the page's escalation workflow unless it exists (a repeated start finds it)."""
        ...

    async def signal_page(self, page_id: str, signal: str) -> None:
        """Tell a page's workflow it was acknowledged, escalated or resolved (a finished one needs nothing)."""
        ...
