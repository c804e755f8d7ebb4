"""The starters' side of the caseworker: start and signal its workflows through a Temporal client, by name
(casem/adapters/workflows/contracts.py), and where to find Temporal (CASEM_TEMPORAL_*)."""

from __future__ import annotations

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from casem.adapters.workflows.contracts import (
    ATTACHMENT_DELETED,
    CASE_MERGE,
    CASE_RETENTION,
    CASE_UNARCHIVED,
    FILE_LIFECYCLE,
    PAGE_ESCALATION,
    TASK_QUEUE,
    AttachmentRef,
    CaseRef,
    MergeRequest,
    MergeResult,
    PageOutcome,
    PageRef,
    PurgeResult,
    attachment_workflow_id,
    page_workflow_id,
    retention_workflow_id,
)
from casem.domain.attachments import Attachment
from casem.domain.merges import merge_workflow_id
from casem.topology.config import temporal_settings


def temporal_address(env: dict[str, str] | None = None) -> str | None:
    """CASEM_TEMPORAL_ADDRESS, else the local file's or the datacenter catalog's `temporal.address`."""
    return temporal_settings(env).address


def temporal_namespace(env: dict[str, str] | None = None) -> str:
    return temporal_settings(env).namespace


def task_queue(env: dict[str, str] | None = None) -> str:
    """CASEM_TEMPORAL_TASK_QUEUE (else the file or catalog): workers and the services starting workflows
    must agree on it."""
    return temporal_settings(env).task_queue


async def connect_client(address: str, namespace: str = "default") -> Client:
    """A Temporal client whose workflow starts carry the current trace on, and whose workers (they inherit
    the client's interceptors) run workflows and activities in spans of that trace."""
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return await Client.connect(address, namespace=namespace, interceptors=[TracingInterceptor()])


async def connect(address: str, namespace: str = "default", queue: str | None = None) -> TemporalCaseworker:
    return TemporalCaseworker(await connect_client(address, namespace), queue or task_queue())


class TemporalCaseworker:
    """The application layer's Caseworker port (casem/app/workflows.py) over a Temporal client."""

    def __init__(self, client: Client, task_queue: str = TASK_QUEUE) -> None:
        self.client = client
        self.task_queue = task_queue

    async def attachment_uploaded(self, tenant: str, attachment: Attachment) -> None:
        # USE_EXISTING: a repeated start (retried request, sweep) finds the running workflow, not an error.
        await self.client.start_workflow(
            FILE_LIFECYCLE,
            AttachmentRef(tenant, attachment.org_id, attachment.case_id, attachment.id),
            id=attachment_workflow_id(attachment.id),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )

    async def attachment_deleted(self, tenant: str, attachment: Attachment) -> None:
        await self._signal(attachment_workflow_id(attachment.id), ATTACHMENT_DELETED)

    async def case_archived(self, tenant: str, org_id: str, case_id: str) -> WorkflowHandle:
        # A case archived, unarchived and archived again gets a fresh workflow: the old one has ended.
        return await self.client.start_workflow(
            CASE_RETENTION,
            CaseRef(tenant, org_id, case_id),
            id=retention_workflow_id(case_id),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            result_type=PurgeResult,
        )

    async def case_unarchived(self, tenant: str, org_id: str, case_id: str) -> None:
        await self._signal(retention_workflow_id(case_id), CASE_UNARCHIVED)

    async def ensure_retention(self, tenant: str, org_id: str, case_id: str) -> bool:
        """Start the case's retention workflow unless one is running; True when this call started it."""
        try:
            described = await self.client.get_workflow_handle(retention_workflow_id(case_id)).describe()
            if described.status == WorkflowExecutionStatus.RUNNING:
                return False
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        await self.case_archived(tenant, org_id, case_id)
        return True

    async def start_merge(self, request: MergeRequest) -> WorkflowHandle:
        # A repeated start of the same merge (redelivered suggestion, retried request) joins the running
        # workflow (USE_EXISTING) or finds the finished one (REJECT_DUPLICATE): a merge runs once.
        workflow_id = merge_workflow_id(request.merge_id)
        try:
            return await self.client.start_workflow(
                CASE_MERGE,
                request,
                id=workflow_id,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                result_type=MergeResult,
            )
        except WorkflowAlreadyStartedError:
            return self.client.get_workflow_handle(workflow_id, result_type=MergeResult)

    async def start_page_escalation(self, tenant: str, org_id: str, page_id: str) -> WorkflowHandle:
        # One workflow per page, ever: a repeated start (the API, then the paging flavor's safety net, or a
        # redelivered event) joins the running one or finds the finished one.
        workflow_id = page_workflow_id(page_id)
        try:
            return await self.client.start_workflow(
                PAGE_ESCALATION,
                PageRef(tenant, org_id, page_id),
                id=workflow_id,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                result_type=PageOutcome,
            )
        except WorkflowAlreadyStartedError:
            return self.client.get_workflow_handle(workflow_id, result_type=PageOutcome)

    async def signal_page(self, page_id: str, signal: str) -> None:
        await self._signal(page_workflow_id(page_id), signal)

    async def _signal(self, workflow_id: str, signal: str) -> None:
        try:
            await self.client.get_workflow_handle(workflow_id).signal(signal)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # already finished: nothing to tell it
                raise
