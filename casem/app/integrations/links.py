"""A case's Jira issue and ServiceNow ticket: create one, link an existing one, unlink; link an incident.

Creating a remote issue is three steps, so no transaction is open while the remote is called:

1. claim (committed): the case's link row is IN_PROGRESS and held by the caller (an API request or a
   flavor's event); a second caller gets a 409 (API) or leaves it to the holder (flavor);
2. the remote call: the issue is created with a label (Jira) or correlation id (ServiceNow) naming the
   case, and an attempt that resumes an interrupted one looks for that first, so no second issue appears;
3. settle: COMPLETED with the issue's key and URL, or FAILED with the remote's reason (a timeline cell
   each), or, when the remote was unavailable, released for the jira-sync / servicenow-sync flavor to
   retry (`case.integration_link_requested`).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from casem.adapters.integrations import JiraClient, RemoteError, ServiceNowClient, text_to_adf
from casem.adapters.storage.tables import case_entity_links, integration_accounts, remote_links
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases.service import get_case
from casem.app.integrations.accounts import account_by_name, get_account
from casem.app.integrations.errors import RemoteFailure
from casem.app.integrations.remotes import RemoteSystems
from casem.app.integrations.settings import SyncRules, rules_for
from casem.domain.case_links import CaseLink, EntityType, Relationship
from casem.domain.cases import Case
from casem.domain.errors import Conflict, InvalidInput, NotFound
from casem.domain.events import utcnow
from casem.domain.integrations import (
    JIRA,
    JIRA_KEY,
    LABELS,
    SERVICENOW,
    IntegrationAccount,
    LinkStatus,
    RemoteLink,
    record_incident_linked,
    record_link_failed,
    record_linked,
    record_requested,
    record_unlinked,
    validate_incident_id,
)
from casem.domain.projects import Project

LINK_REQUESTED = "case.integration_link_requested"
SERVICENOW_TABLE = "incident"
ATTRS = "/data/attributes"
SYS_ID = re.compile(r"^[0-9a-f]{32}$")


def case_label(case_id: str) -> str:
    """The Jira label naming the case an issue was created for (found again after an interruption)."""
    return f"casem-case-{case_id}"


def correlation_id(case_id: str) -> str:
    """ServiceNow's correlation id of a ticket casem created for the case."""
    return f"casem:{case_id}"


async def find_link(uow: UnitOfWork, case_id: str, system: str) -> RemoteLink | None:
    return await uow.scalar(
        sa.select(RemoteLink).where(remote_links.c.case_id == case_id, remote_links.c.system == system)
    )


async def link_by_remote(uow: UnitOfWork, account_id: str, remote_id: str) -> RemoteLink | None:
    return await uow.scalar(
        sa.select(RemoteLink).where(
            remote_links.c.account_id == account_id,
            remote_links.c.remote_id == remote_id,
            remote_links.c.status == LinkStatus.COMPLETED.value,
        )
    )


async def project_rules(uow: UnitOfWork, case: Case, system: str) -> SyncRules:
    project = await uow.session.get(Project, case.project_id)
    return rules_for(project.settings if project else None, system)


# -- creation --------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What one creation attempt needs once its claim is committed (objects detached from any session)."""

    link: RemoteLink
    case: Case
    account: IntegrationAccount
    rules: SyncRules
    holder: str
    claimed_at: datetime


@dataclass
class Created:
    remote_id: str
    remote_key: str
    remote_url: str
    project_key: str | None


@dataclass
class CreationResult:
    case: Case | None
    link: RemoteLink | None
    error: RemoteError | None = None
    skipped: str | None = None  # why nothing was attempted (another holder, already linked)

    @property
    def completed(self) -> bool:
        return self.link is not None and self.link.completed


async def _creation_account(uow: UnitOfWork, org_id: str, system: str, request: dict[str, Any]) -> IntegrationAccount:
    if system == JIRA:
        return await get_account(uow, org_id, JIRA, str(request["account_id"]))
    return await account_by_name(uow, org_id, SERVICENOW, str(request["instance_name"]), f"{ATTRS}/instance_name")


async def claim_creation(
    uow: UnitOfWork,
    org_id: str,
    actor_id: str | None,
    case_ref: str,
    system: str,
    request: dict[str, Any] | None,
    holder: str,
    *,
    api: bool,
) -> Plan | None:
    """Step 1. `request` None resumes the link's stored request (a flavor retrying). API callers get a 409 when
    the case already has its issue or another attempt is running; flavors get None (nothing to do)."""
    case = await get_case(uow, org_id, case_ref)
    now = utcnow()
    link = await find_link(uow, case.id, system)
    if link is not None:
        if link.completed:
            if api:
                raise Conflict(f"case {case.key} is already linked to {LABELS[system]} {link.remote_key}")
            return None
        if link.holder is not None and link.holder != holder and link.claim_is_fresh(now):
            if api:
                raise Conflict(f"a {LABELS[system]} issue is being created for case {case.key}; try again shortly")
            return None
        if link.status == LinkStatus.FAILED and not api and request is None:
            return None  # refused for good; only a new request (the API) tries again
    asked = request if request is not None else (link.request if link is not None else None)
    if asked is None:
        return None
    account = await _creation_account(uow, org_id, system, asked)
    if link is None:
        link = RemoteLink(
            id=str(uuid.uuid4()),
            org_id=org_id,
            case_id=case.id,
            system=system,
            account_id=account.id,
            created_by_id=actor_id,
        )
        uow.add(link)
    link.account_id = account.id
    link.claim(holder, now, asked)
    record_requested(case, link)
    return Plan(link, case, account, await project_rules(uow, case, system), holder, now)


def _jira_fields(plan: Plan) -> dict[str, Any]:
    case, request, rules = plan.case, plan.link.request or {}, plan.rules
    project = str(request.get("project_id"))
    fields: dict[str, Any] = {
        "project": {"id": project} if project.isdigit() else {"key": project},
        "issuetype": {"id": str(request.get("issue_type_id"))},
        "summary": case.title,
        "description": text_to_adf(case.description or f"Opened from casem case {case.key}."),
    }
    priority = rules.remote_priority(case.priority) if rules.pushes("priority") else None
    if priority:
        fields["priority"] = {"name": priority}
    if case.due_date and rules.pushes("due_date"):
        fields[rules.due_date_field] = case.due_date.isoformat()
    fields.update(request.get("fields") or {})
    labels = fields.get("labels") if isinstance(fields.get("labels"), list) else []
    fields["labels"] = [*labels, case_label(case.id)]
    return fields


async def _create_in_jira(client: JiraClient, plan: Plan) -> Created:
    issue: dict[str, Any] | None = None
    if plan.link.attempts > 1:  # an earlier attempt may have created it before it was interrupted
        async for found in client.search(f'labels = "{case_label(plan.case.id)}"', ["project"], page_size=1):
            issue = found
            break
    if issue is None:
        issue = await client.create_issue(_jira_fields(plan))
    key = str(issue["key"])
    return Created(str(issue["id"]), key, client.browse_url(key), key.rsplit("-", 1)[0])


async def _assignment_group(client: ServiceNowClient, value: str | None) -> str | None:
    if not value:
        return None
    if SYS_ID.match(value):
        return value
    async for group in client.query("sys_user_group", f"name={value}", ["sys_id"], page_size=1):
        return str(group["sys_id"])
    raise RemoteError(
        f"the instance has no assignment group named {value!r}", status=400, transient=False, system=SERVICENOW
    )


async def _create_in_servicenow(client: ServiceNowClient, plan: Plan) -> Created:
    case, request, rules = plan.case, plan.link.request or {}, plan.rules
    record: dict[str, Any] | None = None
    if plan.link.attempts > 1:
        async for found in client.query(
            SERVICENOW_TABLE, f"correlation_id={correlation_id(case.id)}", ["sys_id", "number"], page_size=1
        ):
            record = found
            break
    if record is None:
        values: dict[str, Any] = {
            "short_description": case.title,
            "description": case.description or f"Opened from casem case {case.key}.",
            "correlation_id": correlation_id(case.id),
            "correlation_display": "casem",
        }
        levels = rules.impact_urgency(case.priority)
        if levels:
            values["impact"], values["urgency"] = levels
        group = await _assignment_group(client, request.get("assignment_group") or rules.assignment_group)
        if group:
            values["assignment_group"] = group
        values.update(request.get("fields") or {})
        record = await client.create(SERVICENOW_TABLE, values)
    sys_id = str(record["sys_id"])
    return Created(sys_id, str(record.get("number") or sys_id), client.record_url(SERVICENOW_TABLE, sys_id), None)


async def attempt_creation(remotes: RemoteSystems, plan: Plan) -> Created | RemoteError:
    """Step 2, outside any transaction."""
    try:
        if plan.link.system == JIRA:
            async with remotes.jira(plan.account) as client:
                return await _create_in_jira(client, plan)
        async with remotes.servicenow(plan.account) as client:
            return await _create_in_servicenow(client, plan)
    except RemoteError as exc:
        return exc


async def settle_creation(
    uow: UnitOfWork, plan: Plan, outcome: Created | RemoteError, actor_id: str | None
) -> CreationResult:
    """Step 3: record what the attempt came to, unless another holder took the link over meanwhile."""
    case = await get_case(uow, plan.case.org_id, plan.case.id)
    link = await find_link(uow, case.id, plan.link.system)
    if link is None or link.holder != plan.holder or link.claimed_at != plan.claimed_at:
        return CreationResult(case, link, skipped="another attempt took over")
    if isinstance(outcome, Created):
        record_linked(
            case,
            link,
            actor_id,
            remote_id=outcome.remote_id,
            remote_key=outcome.remote_key,
            remote_url=outcome.remote_url,
            project_key=outcome.project_key,
            how="created",
        )
        return CreationResult(case, link)
    if outcome.transient:
        link.release(utcnow())
        record_requested(case, link)
        case.record_fact(
            LINK_REQUESTED, actor_id, {"system": link.system, "link_id": link.id, "reason": outcome.reason}
        )
        return CreationResult(case, link, error=outcome)
    record_link_failed(case, link, actor_id, outcome.explanation)
    return CreationResult(case, link, error=outcome)


async def create_remote_issue(
    uow: UnitOfWork,
    remotes: RemoteSystems,
    org_id: str,
    actor_id: str | None,
    case_ref: str,
    system: str,
    request: dict[str, Any] | None,
    holder: str,
    *,
    api: bool,
) -> CreationResult:
    """The three steps; the claim is committed here, the settlement is left for the caller to commit."""
    plan = await claim_creation(uow, org_id, actor_id, case_ref, system, request, holder, api=api)
    if plan is None:
        return CreationResult(None, None, skipped="nothing to create")
    await uow.commit()
    outcome = await attempt_creation(remotes, plan)
    return await settle_creation(uow, plan, outcome, actor_id)


def jira_request(attrs: dict[str, Any]) -> dict[str, Any]:
    """Datadog's JiraIssueCreateAttributes, checked."""
    for name in ("jira_account_id", "project_id", "issue_type_id"):
        value = attrs.get(name)
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{name} is required", f"{ATTRS}/{name}")
    fields = attrs.get("fields")
    if fields is not None and not isinstance(fields, dict):
        raise InvalidInput("fields must be an object of Jira field ids to values", f"{ATTRS}/fields")
    return {
        "account_id": attrs["jira_account_id"].strip(),
        "project_id": attrs["project_id"].strip(),
        "issue_type_id": attrs["issue_type_id"].strip(),
        "fields": fields or {},
    }


def servicenow_request(attrs: dict[str, Any]) -> dict[str, Any]:
    """Datadog's ServiceNowTicketCreateAttributes, checked."""
    name = attrs.get("instance_name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("instance_name is required", f"{ATTRS}/instance_name")
    group = attrs.get("assignment_group")
    if group is not None and not isinstance(group, str):
        raise InvalidInput("assignment_group must be a string", f"{ATTRS}/assignment_group")
    return {"instance_name": name.strip().lower(), "assignment_group": group}


# -- linking an existing Jira issue, unlinking ----------------------------------------------------------------


async def _account_for_url(uow: UnitOfWork, org_id: str, url: str) -> tuple[IntegrationAccount, str]:
    pointer = f"{ATTRS}/jira_issue_url"
    parts = urlsplit(url.strip()) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            "jira_issue_url must be an issue's URL such as https://acme.atlassian.net/browse/OPS-12", pointer
        )
    match = re.search(r"/browse/([^/?#]+)", parts.path)
    key = match.group(1).upper() if match else None
    if key is None or not JIRA_KEY.match(key):
        raise InvalidInput("jira_issue_url does not name an issue (…/browse/KEY-123)", pointer)
    base = f"{parts.scheme}://{parts.netloc}{parts.path[: match.start()]}".rstrip("/") if match else ""
    account = await uow.scalar(
        sa.select(IntegrationAccount).where(
            integration_accounts.c.org_id == org_id,
            integration_accounts.c.system == JIRA,
            integration_accounts.c.base_url == base,
            integration_accounts.c.deleted_at.is_(None),
        )
    )
    if account is None:
        raise InvalidInput(f"the org has no Jira account for {base}; connect it first", pointer)
    return account, key


async def link_jira_issue(
    uow: UnitOfWork, remotes: RemoteSystems, org_id: str, actor_id: str | None, case_ref: str, url: Any
) -> Case:
    """PATCH .../relationships/jira_issues: the case mirrors an existing issue (replacing a previous link)."""
    case = await get_case(uow, org_id, case_ref)
    account, key = await _account_for_url(uow, org_id, url)
    try:
        async with remotes.jira(account) as client:
            issue = await client.get_issue(key, fields=["project"])
            browse = client.browse_url(str(issue["key"]))
    except RemoteError as exc:
        raise RemoteFailure(JIRA, f"did not show issue {key}", exc) from None
    taken = await link_by_remote(uow, account.id, str(issue["id"]))
    if taken is not None and taken.case_id != case.id:
        raise Conflict(f"Jira {issue['key']} is already linked to another case")
    link = await find_link(uow, case.id, JIRA)
    if link is not None and link.completed and link.remote_id != str(issue["id"]):
        record_unlinked(case, link, actor_id, reason=f"replaced by {issue['key']}")
    if link is None:
        link = RemoteLink(
            id=str(uuid.uuid4()),
            org_id=org_id,
            case_id=case.id,
            system=JIRA,
            account_id=account.id,
            created_by_id=actor_id,
        )
        uow.add(link)
    link.account_id = account.id
    project = (issue.get("fields") or {}).get("project") or {}
    record_linked(
        case,
        link,
        actor_id,
        remote_id=str(issue["id"]),
        remote_key=str(issue["key"]),
        remote_url=browse,
        project_key=project.get("key") or str(issue["key"]).rsplit("-", 1)[0],
        how="linked",
    )
    return case


async def unlink(uow: UnitOfWork, org_id: str, actor_id: str | None, case_ref: str, system: str) -> Case:
    case = await get_case(uow, org_id, case_ref)
    link = await find_link(uow, case.id, system)
    if link is None:
        raise NotFound(f"{LABELS[system]} issue of case", case.key)
    record_unlinked(case, link, actor_id)
    await uow.session.delete(link)
    return case


# -- incidents ------------------------------------------------------------------------------------------------


async def link_incident(
    uow: UnitOfWork, org_id: str, actor_id: str | None, case_ref: str, incident_id: Any
) -> tuple[Case, list[str]]:
    """The case relates to an incident (kept by id: casem has no incident product); answers its incidents."""
    case = await get_case(uow, org_id, case_ref)
    incident = validate_incident_id(incident_id)
    linked = await incidents_of(uow, org_id, case.id)
    if incident not in linked:
        link = CaseLink.create(
            actor_id=actor_id,
            id=str(uuid.uuid4()),
            org_id=org_id,
            parent_entity_type=EntityType.CASE.value,
            parent_entity_id=case.id,
            child_entity_type=EntityType.INCIDENT.value,
            child_entity_id=incident,
            relationship=Relationship.RELATES_TO.value,
        )
        uow.add(link)
        record_incident_linked(case, incident, actor_id)
        linked.append(incident)
    return case, linked


async def incidents_of(uow: UnitOfWork, org_id: str, case_id: str) -> list[str]:
    rows = await uow.execute(
        sa.select(case_entity_links.c.child_entity_id)
        .where(
            case_entity_links.c.org_id == org_id,
            case_entity_links.c.parent_entity_type == EntityType.CASE.value,
            case_entity_links.c.parent_entity_id == case_id,
            case_entity_links.c.child_entity_type == EntityType.INCIDENT.value,
        )
        .order_by(case_entity_links.c.created_at)
    )
    return [r.child_entity_id for r in rows]
