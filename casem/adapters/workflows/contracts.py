"""The contract between whoever starts caseworker workflows (case-api, handler flavors) and the caseworker that
runs them: task queue, workflow and signal names, workflow ids and inputs.

Plain dataclasses and strings (no Temporal workflow code, no SQLAlchemy), so a starter needs nothing of the
caseworker's implementation and the caseworker needs nothing of its starters.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

TASK_QUEUE = "caseworker"

# Workflow types, as the caseworker registers them.
FILE_LIFECYCLE = "FileLifecycleWorkflow"
ATTACHMENT_SWEEP = "AttachmentSweepWorkflow"
CASE_RETENTION = "CaseRetentionWorkflow"
RETENTION_SWEEP = "RetentionSweepWorkflow"
RETENTION_PURGE_BATCH = "RetentionPurgeBatchWorkflow"
CASE_MERGE = "CaseMergeWorkflow"
AUTO_CLOSE_SWEEP = "AutoCloseSweepWorkflow"
PENDING_MERGE_SWEEP = "PendingMergeSweepWorkflow"

# Signals.
ATTACHMENT_DELETED = "deleted"  # FileLifecycleWorkflow: the user deleted the attachment
CASE_UNARCHIVED = "unarchived"  # CaseRetentionWorkflow: the case is live again


def attachment_workflow_id(attachment_id: str) -> str:
    return f"attachment-{attachment_id}"


def retention_workflow_id(case_id: str) -> str:
    return f"case-retention-{case_id}"


@dataclass
class AttachmentRef:
    tenant: str
    org_id: str
    case_id: str
    attachment_id: str


@dataclass
class CaseRef:
    tenant: str
    org_id: str
    case_id: str


def retention_batch_workflow_id(tenant: str, case_ids: list[str]) -> str:
    """One id per set of cases: the same batch started twice (a retried sweep) is the same workflow."""
    digest = hashlib.sha256("\n".join([tenant, *sorted(case_ids)]).encode()).hexdigest()[:32]
    return f"retention-purge-{tenant}-{digest}"


@dataclass
class MergeRequest:
    tenant: str
    org_id: str
    merge_id: str
    primary_case_id: str
    duplicate_ids: list[str]
    requested_by_id: str | None = None  # the actor of the merge's events; None for automation
    source: str = "api"


PURGE_PER_ACTIVITY = 500  # cases one purge activity removes in one transaction
PURGE_PER_WORKFLOW = 2000  # cases one batch workflow purges (a few activities): its input stays small


@dataclass
class RetentionSweepInput:
    tenants: list[str]
    purge_per_activity: int = PURGE_PER_ACTIVITY
    purge_per_workflow: int = PURGE_PER_WORKFLOW


@dataclass
class RetentionBatch:
    """Cases the sweep found due at `as_of` (ISO 8601, the sweep's workflow clock), purged by one workflow."""

    tenant: str
    case_ids: list[str]
    as_of: str
    per_activity: int = PURGE_PER_ACTIVITY


@dataclass
class RetentionBatchResult:
    purged: list[str] = field(default_factory=list)
    already_purged: list[str] = field(default_factory=list)
    not_eligible: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # rows and blobs removed, summed over the batch


@dataclass
class AutoCloseSweepInput:
    tenants: list[str]


@dataclass
class AutoCloseTenantInput:
    tenant: str
    as_of: str  # ISO 8601, the workflow's clock: inactivity is measured against it


@dataclass
class AutoCloseTenantReport:
    tenant: str
    projects: int = 0
    candidates: int = 0
    closed: int = 0
    spared: int = 0


@dataclass
class PendingMergeSweepInput:
    tenants: list[str]
    grace_seconds: int = 120  # a merge younger than this may still be starting normally: left alone


@dataclass
class PendingMergeTenantInput:
    tenant: str
    grace_seconds: int = 120


@dataclass
class PendingMergeReport:
    tenant: str
    started: list[str] = field(default_factory=list)  # merge ids whose workflow the sweep started
    failed: list[str] = field(default_factory=list)  # merge ids marked FAILED: their workflow cannot start


@dataclass
class PurgeResult:
    outcome: str  # "purged" | "not-eligible" | "already-purged" | "cancelled"
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class StepResult:
    duplicate_id: str
    outcome: str
    cells_copied: int = 0
    watchers_added: int = 0
    replayed: bool = False  # the step had committed before: this run only reported it


@dataclass
class MergeResult:
    merge_id: str
    status: str
    steps: list[StepResult] = field(default_factory=list)
    detail: str | None = None


# -- on-call: one escalation workflow per page --------------------------------------------------------------------
PAGE_ESCALATION = "PageEscalationWorkflow"
PAGE_ACKNOWLEDGED = "page_acknowledged"  # stop: someone has it
PAGE_ESCALATE = "page_escalate"  # move on to the next step now
PAGE_RESOLVED = "page_resolved"  # stop: it is over
PAGE_SIGNALS = (PAGE_ACKNOWLEDGED, PAGE_ESCALATE, PAGE_RESOLVED)


def page_workflow_id(page_id: str) -> str:
    return f"page-{page_id}"


@dataclass
class PageRef:
    tenant: str
    org_id: str
    page_id: str


@dataclass
class PageOutcome:
    page_id: str
    status: str  # acknowledged | resolved | exhausted (the policy ran out, nobody acknowledged) | not-open
    steps: int = 0  # steps reached, over all rounds
    notifications: int = 0  # notifications sent by this run
