"""Jira and ServiceNow: the org's accounts and instances, their issue templates, and the link between a
case and the issue or ticket that mirrors it elsewhere.

A case has at most one link per remote system. The link's status follows Datadog's
Case3rdPartyTicketStatus (IN_PROGRESS while casem creates the remote issue, COMPLETED once it exists,
FAILED when the remote refused it). Every step of a link and every change casem pushes to the remote is
an event on the case, so the timeline shows each sync. Changes that come *from* a remote carry an
`origin` (see `Case.changes_from`) so the sync flavors never send them back where they came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from casem.domain.cases import Case
from casem.domain.errors import InvalidInput
from casem.domain.events import utcnow

JIRA = "jira"
SERVICENOW = "servicenow"
SYSTEMS = (JIRA, SERVICENOW)
LABELS = {JIRA: "Jira", SERVICENOW: "ServiceNow"}

# Case events of the integrations, each with its timeline cell (casem/domain/timeline.py).
LINKED = "case.integration_linked"
LINK_FAILED = "case.integration_link_failed"
UNLINKED = "case.integration_unlinked"
SYNCED = "case.integration_synced"
SYNC_FAILED = "case.integration_sync_failed"
INCIDENT_LINKED = "case.incident_linked"

NAME_MAX = 255
INCIDENT_ID_MAX = 255
JIRA_KEY = re.compile(r"^[A-Z][A-Z0-9_]+-[1-9][0-9]*$")
# An attempt to create a remote issue older than this was interrupted (its holder died): another may take it.
CLAIM_TTL_S = 120


class LinkStatus(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class JiraAuth(StrEnum):
    API_TOKEN = "api_token"  # Atlassian account e-mail + API token (HTTP basic)
    OAUTH2 = "oauth2"  # OAuth 2.0 (3LO) with the operator's registered app: access and refresh tokens


class ServiceNowAuth(StrEnum):
    BASIC = "basic"  # user name + password
    OAUTH_CLIENT_CREDENTIALS = "oauth_client_credentials"  # OAuth client id + secret, token from /oauth_token.do


AUTH_TYPES: dict[str, type[StrEnum]] = {JIRA: JiraAuth, SERVICENOW: ServiceNowAuth}


def validate_base_url(value: Any, pointer: str) -> str:
    """An instance's base URL: absolute http(s), no query or fragment; normalised without a trailing slash.

    Where it may point (public addresses, or the operator's allow-list) is the outbound guard's decision.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("the instance URL must be a non-empty string", pointer)
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{value!r} is not an absolute http(s) URL", pointer)
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidInput("the instance URL takes no query, fragment or credentials", pointer)
    return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")


def validate_name(value: Any, pointer: str, what: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} must be a non-empty string", pointer)
    if len(value) > NAME_MAX:
        raise InvalidInput(f"{what} is {len(value)} characters long; the limit is {NAME_MAX}", pointer)
    return value.strip()


def validate_incident_id(value: Any, pointer: str = "/data/id") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > INCIDENT_ID_MAX:
        raise InvalidInput(f"an incident id is a non-empty string of at most {INCIDENT_ID_MAX} characters", pointer)
    return value.strip()


@dataclass(eq=False)
class IntegrationAccount:
    """A Jira Cloud site or a ServiceNow instance an org connected, with its credentials sealed.

    `sealed_credentials` and `sealed_webhook_secret` hold Fernet tokens (casem/adapters/secrets.py): only
    the code that calls the remote or verifies a webhook opens them; no read of the API returns them.
    `remote_user_id`/`remote_user_name` identify the integration's own user on the remote, learnt when
    the credentials were checked: remote changes made by that user are casem's own, never applied back.
    """

    id: str
    org_id: str
    system: str
    name: str  # Jira: the site's host; ServiceNow: the instance name (`acme` of acme.service-now.com)
    base_url: str
    auth_type: str
    principal: str  # not secret: the e-mail, user name or OAuth client id the credentials belong to
    sealed_credentials: str
    sealed_webhook_secret: str
    remote_user_id: str | None = None
    remote_user_name: str | None = None
    created_by_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None
    last_webhook_at: datetime | None = None
    deleted_at: datetime | None = None

    @property
    def label(self) -> str:
        return f"{LABELS[self.system]} {self.name}"

    def is_own_user(self, remote_user: str | None) -> bool:
        """Whether a remote change was made by casem itself (through this account's credentials)."""
        return bool(remote_user) and remote_user in (self.remote_user_id, self.remote_user_name)


@dataclass(eq=False)
class JiraIssueTemplate:
    id: str
    org_id: str
    account_id: str
    name: str
    project_id: str
    issue_type_id: str
    fields: dict[str, Any] = field(default_factory=dict)
    created_by_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None


@dataclass(eq=False)
class ServiceNowTemplate:
    """Datadog's ServiceNow "handle": where and how tickets of a kind are created."""

    id: str
    org_id: str
    instance_id: str
    handle_name: str
    table_name: str
    assignment_group_id: str | None = None
    business_service_id: str | None = None
    user_id: str | None = None
    fields_mapping: dict[str, str] = field(default_factory=dict)
    created_by_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None


@dataclass(eq=False)
class RemoteLink:
    """A case's link to its Jira issue or ServiceNow ticket, and the sync's bookkeeping.

    `claimed_at` marks an attempt to create the remote issue in progress (so two callers never both
    create one); `last_remote_change_at` is the time of the newest remote field change applied, so a
    late copy of an older change (a reconciliation poll after a webhook) never rolls a field back.
    """

    id: str
    org_id: str
    case_id: str
    system: str
    account_id: str
    status: str = LinkStatus.IN_PROGRESS.value
    remote_id: str | None = None
    remote_key: str | None = None
    remote_url: str | None = None
    project_key: str | None = None
    error: str | None = None
    request: dict[str, Any] | None = None
    claimed_at: datetime | None = None
    last_remote_change_at: datetime | None = None
    created_by_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None

    @property
    def completed(self) -> bool:
        return self.status == LinkStatus.COMPLETED

    def display(self) -> dict[str, Any]:
        """The case attribute Datadog serves for it (`jira_issue` / `service_now_ticket`)."""
        if self.system == JIRA:
            result = {
                "issue_id": self.remote_id,
                "issue_key": self.remote_key,
                "issue_url": self.remote_url,
                "project_key": self.project_key,
            }
        else:
            result = {"sys_target_link": self.remote_url}
        shown: dict[str, Any] = {"status": self.status}
        if self.status == LinkStatus.COMPLETED:
            shown["result"] = {k: v for k, v in result.items() if v is not None}
        if self.error and self.status == LinkStatus.FAILED:
            shown["error"] = self.error
        return shown

    @property
    def holder(self) -> str | None:
        """Who holds the creation attempt in progress (an API request or a flavor's event)."""
        return (self.request or {}).get("claimed_by") if self.claimed_at is not None else None

    @property
    def attempts(self) -> int:
        return int((self.request or {}).get("attempts", 0))

    def claim_is_fresh(self, now: datetime) -> bool:
        return self.claimed_at is not None and (now - self.claimed_at).total_seconds() < CLAIM_TTL_S

    def claim(self, holder: str, now: datetime, request: dict[str, Any] | None = None) -> None:
        """Take the creation attempt: IN_PROGRESS, held by `holder`. `request` replaces what was asked for."""
        asked = dict(request if request is not None else (self.request or {}))
        asked["attempts"] = self.attempts + 1
        asked["claimed_by"] = holder
        self.request = asked
        self.status = LinkStatus.IN_PROGRESS.value
        self.error = None
        self.claimed_at = now
        self.modified_at = now

    def release(self, now: datetime) -> None:
        """The attempt ended without an answer (the remote was unavailable): IN_PROGRESS, held by nobody."""
        self.claimed_at = None
        self.modified_at = now

    def applied_remote_change(self, occurred_at: datetime) -> None:
        if self.last_remote_change_at is None or occurred_at > self.last_remote_change_at:
            self.last_remote_change_at = occurred_at

    def is_stale(self, occurred_at: datetime) -> bool:
        """A remote field change older than one already applied (a late copy) must not apply."""
        return self.last_remote_change_at is not None and occurred_at < self.last_remote_change_at


# -- what the case records: each one a timeline cell -------------------------------------------------------


def _show(case: Case, link: RemoteLink) -> None:
    if link.system == JIRA:
        case.jira_issue = link.display()
    else:
        case.service_now_ticket = link.display()


def record_requested(case: Case, link: RemoteLink) -> None:
    """The remote issue is being created: the case shows IN_PROGRESS (no timeline cell until it settles)."""
    _show(case, link)


def record_linked(
    case: Case,
    link: RemoteLink,
    actor_id: str | None,
    *,
    remote_id: str,
    remote_key: str,
    remote_url: str,
    project_key: str | None,
    how: str,
) -> None:
    """The case now mirrors `remote_key` (`how`: "created" by casem, or "linked" to an existing one)."""
    now = utcnow()
    link.status = LinkStatus.COMPLETED.value
    link.remote_id, link.remote_key, link.remote_url, link.project_key = remote_id, remote_key, remote_url, project_key
    link.error = None
    link.claimed_at = None
    link.modified_at = now
    _show(case, link)
    verb = "created" if how == "created" else "linked"
    case.record_fact(
        LINKED,
        actor_id,
        {
            "message": f"{LABELS[link.system]} {remote_key} {verb}",
            "system": link.system,
            "how": how,
            "remote_id": remote_id,
            "remote_key": remote_key,
            "remote_url": remote_url,
            "account_id": link.account_id,
        },
    )


def record_link_failed(case: Case, link: RemoteLink, actor_id: str | None, reason: str) -> None:
    link.status = LinkStatus.FAILED.value
    link.error = reason
    link.claimed_at = None
    link.modified_at = utcnow()
    _show(case, link)
    case.record_fact(
        LINK_FAILED,
        actor_id,
        {
            "message": f"{LABELS[link.system]} issue not created: {reason}",
            "system": link.system,
            "reason": reason,
            "account_id": link.account_id,
        },
    )


def record_unlinked(case: Case, link: RemoteLink, actor_id: str | None, reason: str | None = None) -> None:
    if link.system == JIRA:
        case.jira_issue = None
    else:
        case.service_now_ticket = None
    message = f"{LABELS[link.system]} {link.remote_key or 'issue'} unlinked"
    case.record_fact(
        UNLINKED,
        actor_id,
        {
            "message": message + (f": {reason}" if reason else ""),
            "system": link.system,
            "remote_key": link.remote_key,
            "reason": reason,
        },
    )


def record_synced(case: Case, link: RemoteLink, properties: dict[str, Any]) -> None:
    """casem pushed these properties of the case to the remote issue (one cell per push)."""
    names = ", ".join(sorted(properties))
    case.record_fact(
        SYNCED,
        None,
        {
            "message": f"{names} sent to {LABELS[link.system]} {link.remote_key}",
            "system": link.system,
            "remote_key": link.remote_key,
            "properties": properties,
        },
    )


def record_sync_failed(case: Case, link: RemoteLink, properties: list[str], reason: str) -> None:
    case.record_fact(
        SYNC_FAILED,
        None,
        {
            "message": f"{', '.join(sorted(properties))} not sent to {LABELS[link.system]} {link.remote_key}: {reason}",
            "system": link.system,
            "remote_key": link.remote_key,
            "properties": sorted(properties),
            "reason": reason,
        },
    )


def record_incident_linked(case: Case, incident_id: str, actor_id: str | None) -> None:
    case.record_fact(
        INCIDENT_LINKED, actor_id, {"message": f"linked to incident {incident_id}", "incident_id": incident_id}
    )


def remote_origin(system: str, remote_key: str, event_id: str, actor: dict[str, Any] | None) -> dict[str, Any]:
    """The `origin` carried by the events of a change that came from a remote issue."""
    origin: dict[str, Any] = {"system": system, "remote_key": remote_key, "event_id": event_id}
    if actor:
        origin["actor"] = {k: v for k, v in actor.items() if v}
    return origin


def came_from(data: dict[str, Any], system: str) -> bool:
    """Whether an event's change came from `system` (its sync flavor must not send it back)."""
    origin = data.get("origin")
    return isinstance(origin, dict) and origin.get("system") == system
