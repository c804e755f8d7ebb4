"""Jira accounts and ServiceNow instances of an org, their templates, and what the instances offer.

Adding one checks its URL with the outbound guard, then its credentials against the remote (Jira's
`/myself`, ServiceNow's own user record), which also tells casem who the integration is over there. The
credentials and the webhook secret are sealed before they reach the database; reads never return them.
The remote is called outside any transaction: `prepare_*` talk to the remote, `save_account` stores.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from casem.adapters.integrations import RemoteError
from casem.adapters.storage.tables import integration_accounts, jira_issue_templates, servicenow_templates
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.ids import require_uuid
from casem.app.integrations.errors import RemoteFailure
from casem.app.integrations.oauth import exchange_jira_code
from casem.app.integrations.remotes import RemoteSystems, remote_uuid
from casem.domain.errors import Conflict, InvalidInput, NotFound
from casem.domain.events import utcnow
from casem.domain.integrations import (
    JIRA,
    LABELS,
    SERVICENOW,
    IntegrationAccount,
    JiraAuth,
    JiraIssueTemplate,
    ServiceNowAuth,
    ServiceNowTemplate,
    validate_base_url,
    validate_name,
)

ATTRS = "/data/attributes"
SECRET_MIN = 16
WEBHOOK_SECRET_BYTES = 32
INSTANCE_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")
TABLE_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True)
class NewAccount:
    """An account ready to store, and the webhook secret to show once when casem generated it."""

    account: IntegrationAccount
    generated_webhook_secret: str | None


def _string(auth: dict[str, Any], name: str, pointer: str) -> str:
    value = auth.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{name} is required", f"{pointer}/{name}")
    return value.strip()


def _webhook_secret(value: Any) -> tuple[str, str | None]:
    """The webhook secret to seal, and itself again when casem made it up (shown once)."""
    if value is None:
        made = secrets.token_urlsafe(WEBHOOK_SECRET_BYTES)
        return made, made
    if not isinstance(value, str) or len(value) < SECRET_MIN:
        raise InvalidInput(
            f"webhook_secret must be a string of at least {SECRET_MIN} characters", f"{ATTRS}/webhook_secret"
        )
    return value, None


def _refused(system: str, exc: RemoteError, pointer: str) -> InvalidInput:
    if exc.status in (401, 403):
        what = f"{LABELS[system]} refused the credentials"
    elif exc.status is None:
        what = f"{LABELS[system]} could not be reached"
    else:
        what = f"{LABELS[system]} did not accept the check of the credentials"
    return InvalidInput(f"{what}: {exc.explanation}", pointer)


async def prepare_jira_account(
    remotes: RemoteSystems, org_id: str, actor_id: str | None, attrs: dict[str, Any]
) -> NewAccount:
    url = validate_base_url(attrs.get("instance_url"), f"{ATTRS}/instance_url")
    auth = attrs.get("auth")
    if not isinstance(auth, dict):
        raise InvalidInput(
            "auth is required: {type: api_token, email, api_token} or {type: oauth2, code, redirect_uri}",
            f"{ATTRS}/auth",
        )
    kind = auth.get("type")
    if kind not in {a.value for a in JiraAuth}:
        raise InvalidInput(f"auth.type must be one of: {', '.join(a.value for a in JiraAuth)}", f"{ATTRS}/auth/type")
    secret, generated = _webhook_secret(attrs.get("webhook_secret"))
    principal = ""
    if kind == JiraAuth.API_TOKEN:
        principal = _string(auth, "email", f"{ATTRS}/auth")
        credentials: dict[str, Any] = {"api_token": _string(auth, "api_token", f"{ATTRS}/auth")}
    else:
        _string(auth, "code", f"{ATTRS}/auth")
        _string(auth, "redirect_uri", f"{ATTRS}/auth")
    await remotes.check_destination(url, f"{ATTRS}/instance_url")
    account = IntegrationAccount(
        id=str(uuid.uuid4()),
        org_id=org_id,
        system=JIRA,
        name=urlsplit(url).hostname or url,
        base_url=url,
        auth_type=kind,
        principal=principal,
        sealed_credentials="",
        sealed_webhook_secret=remotes.box.seal(secret),
        created_by_id=actor_id,
    )
    if kind == JiraAuth.OAUTH2:
        credentials = await exchange_jira_code(remotes, account, auth)
    try:
        async with remotes.jira(account, credentials) as client:
            me = await client.myself()
    except RemoteError as exc:
        raise _refused(JIRA, exc, f"{ATTRS}/auth") from None
    account.remote_user_id = me.get("accountId")
    account.remote_user_name = me.get("emailAddress") or me.get("displayName")
    account.sealed_credentials = remotes.seal_credentials(credentials)
    return NewAccount(account, generated)


async def prepare_servicenow_instance(
    remotes: RemoteSystems, org_id: str, actor_id: str | None, attrs: dict[str, Any]
) -> NewAccount:
    name = validate_name(attrs.get("instance_name"), f"{ATTRS}/instance_name", "instance_name").lower()
    if not set(name) <= INSTANCE_NAME_CHARS:
        raise InvalidInput(
            "instance_name is the instance's host label: letters, digits and '-'", f"{ATTRS}/instance_name"
        )
    raw_url = attrs.get("instance_url")
    url = (
        validate_base_url(raw_url, f"{ATTRS}/instance_url")
        if raw_url is not None
        else f"https://{name}.service-now.com"
    )
    auth = attrs.get("auth")
    if not isinstance(auth, dict):
        raise InvalidInput(
            "auth is required: {type: basic, username, password} or "
            "{type: oauth_client_credentials, client_id, client_secret}",
            f"{ATTRS}/auth",
        )
    kind = auth.get("type")
    if kind not in {a.value for a in ServiceNowAuth}:
        raise InvalidInput(
            f"auth.type must be one of: {', '.join(a.value for a in ServiceNowAuth)}", f"{ATTRS}/auth/type"
        )
    secret, generated = _webhook_secret(attrs.get("webhook_secret"))
    if kind == ServiceNowAuth.BASIC:
        principal = _string(auth, "username", f"{ATTRS}/auth")
        credentials: dict[str, Any] = {"password": _string(auth, "password", f"{ATTRS}/auth")}
    else:
        principal = _string(auth, "client_id", f"{ATTRS}/auth")
        credentials = {"client_secret": _string(auth, "client_secret", f"{ATTRS}/auth")}
    await remotes.check_destination(url, f"{ATTRS}/instance_url")
    account = IntegrationAccount(
        id=str(uuid.uuid4()),
        org_id=org_id,
        system=SERVICENOW,
        name=name,
        base_url=url,
        auth_type=kind,
        principal=principal,
        sealed_credentials=remotes.seal_credentials(credentials),
        sealed_webhook_secret=remotes.box.seal(secret),
        created_by_id=actor_id,
    )
    # Which sys_user casem acts as: basic auth names it; with client credentials, the integration user
    # is whoever the OAuth app runs as, which the instance states in `integration_user` when given.
    user_name = principal if kind == ServiceNowAuth.BASIC else auth.get("integration_user")
    try:
        async with remotes.servicenow(account, credentials) as client:
            if user_name:
                async for user in client.query(
                    "sys_user", f"user_name={user_name}", ["sys_id", "user_name"], page_size=1
                ):
                    account.remote_user_id = user.get("sys_id")
                    account.remote_user_name = user.get("user_name")
            else:
                async for _ in client.query("incident", "", ["sys_id"], page_size=1):
                    break
    except RemoteError as exc:
        raise _refused(SERVICENOW, exc, f"{ATTRS}/auth") from None
    if user_name and account.remote_user_name is None:
        account.remote_user_name = user_name
    return NewAccount(account, generated)


async def save_account(uow: UnitOfWork, account: IntegrationAccount) -> IntegrationAccount:
    taken = await uow.scalar(
        sa.select(integration_accounts.c.id).where(
            integration_accounts.c.org_id == account.org_id,
            integration_accounts.c.system == account.system,
            sa.or_(integration_accounts.c.base_url == account.base_url, integration_accounts.c.name == account.name),
            integration_accounts.c.deleted_at.is_(None),
        )
    )
    if taken:
        raise Conflict(f"the org already has the {LABELS[account.system]} {account.name} connected ({taken})")
    uow.add(account)
    return account


async def list_accounts(uow: UnitOfWork, org_id: str, system: str) -> list[IntegrationAccount]:
    return await uow.scalars(
        sa.select(IntegrationAccount)
        .where(
            integration_accounts.c.org_id == org_id,
            integration_accounts.c.system == system,
            integration_accounts.c.deleted_at.is_(None),
        )
        .order_by(integration_accounts.c.created_at, integration_accounts.c.id)
    )


def _resource(system: str) -> str:
    return "Jira account" if system == JIRA else "ServiceNow instance"


async def get_account(uow: UnitOfWork, org_id: str, system: str, account_id: str) -> IntegrationAccount:
    account_id = require_uuid(account_id, f"{_resource(system)} id")
    account = await uow.get(IntegrationAccount, org_id, account_id, resource=_resource(system))
    if account.system != system:
        raise NotFound(_resource(system), account_id)
    return account


async def account_by_name(uow: UnitOfWork, org_id: str, system: str, name: str, pointer: str) -> IntegrationAccount:
    found = await uow.scalar(
        sa.select(IntegrationAccount).where(
            integration_accounts.c.org_id == org_id,
            integration_accounts.c.system == system,
            integration_accounts.c.name == name.lower(),
            integration_accounts.c.deleted_at.is_(None),
        )
    )
    if found is None:
        raise InvalidInput(f"the org has no {_resource(system)} named {name!r}", pointer)
    return found


async def delete_account(uow: UnitOfWork, org_id: str, system: str, account_id: str) -> None:
    """Disconnect: the credentials are wiped; links stay on their cases (history) but sync stops."""
    account = await get_account(uow, org_id, system, account_id)
    account.deleted_at = utcnow()
    account.sealed_credentials = ""
    account.sealed_webhook_secret = ""


async def update_credentials(
    uow: UnitOfWork, remotes: RemoteSystems, org_id: str, system: str, account_id: str, attrs: dict[str, Any]
) -> tuple[IntegrationAccount, str | None]:
    """Rotate the credentials (checked against the remote first) and/or the webhook secret."""
    account = await get_account(uow, org_id, system, account_id)
    generated = None
    if attrs.get("auth") is not None:
        # Checked like a new account; of that account only the credentials and the remote user are kept (its
        # placeholder webhook secret is discarded: the secret changes only when `webhook_secret` is given).
        check = dict(attrs)
        if system == JIRA:
            check.setdefault("instance_url", account.base_url)
            fresh = await prepare_jira_account(remotes, org_id, None, {**check, "webhook_secret": "x" * SECRET_MIN})
        else:
            check.setdefault("instance_name", account.name)
            check.setdefault("instance_url", account.base_url)
            fresh = await prepare_servicenow_instance(
                remotes, org_id, None, {**check, "webhook_secret": "x" * SECRET_MIN}
            )
        account.auth_type = fresh.account.auth_type
        account.principal = fresh.account.principal
        account.sealed_credentials = fresh.account.sealed_credentials
        account.remote_user_id = fresh.account.remote_user_id
        account.remote_user_name = fresh.account.remote_user_name
    if "webhook_secret" in attrs:
        secret, generated = _webhook_secret(attrs.get("webhook_secret"))
        account.sealed_webhook_secret = remotes.box.seal(secret)
    account.modified_at = utcnow()
    return account, generated


# -- Jira issue templates --------------------------------------------------------------------------------------


def _fields(value: Any, pointer: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("fields must be an object of Jira field ids to values", pointer)
    return value


async def create_issue_template(
    uow: UnitOfWork, org_id: str, actor_id: str | None, attrs: dict[str, Any]
) -> JiraIssueTemplate:
    account_ref = attrs.get("jira-account") or {}
    account_id = account_ref.get("id") if isinstance(account_ref, dict) else None
    if not isinstance(account_id, str):
        raise InvalidInput("jira-account.id is required", f"{ATTRS}/jira-account/id")
    account = await get_account(uow, org_id, JIRA, account_id)
    template = JiraIssueTemplate(
        id=str(uuid.uuid4()),
        org_id=org_id,
        account_id=account.id,
        name=validate_name(attrs.get("name"), f"{ATTRS}/name"),
        project_id=validate_name(attrs.get("project_id"), f"{ATTRS}/project_id", "project_id"),
        issue_type_id=validate_name(attrs.get("issue_type_id"), f"{ATTRS}/issue_type_id", "issue_type_id"),
        fields=_fields(attrs.get("fields"), f"{ATTRS}/fields"),
        created_by_id=actor_id,
    )
    uow.add(template)
    return template


async def list_issue_templates(uow: UnitOfWork, org_id: str) -> list[JiraIssueTemplate]:
    return await uow.scalars(
        sa.select(JiraIssueTemplate)
        .where(jira_issue_templates.c.org_id == org_id)
        .order_by(jira_issue_templates.c.created_at, jira_issue_templates.c.id)
    )


async def get_issue_template(uow: UnitOfWork, org_id: str, template_id: str) -> JiraIssueTemplate:
    template_id = require_uuid(template_id, "issue template id")
    return await uow.get(JiraIssueTemplate, org_id, template_id, resource="Jira issue template")


async def update_issue_template(
    uow: UnitOfWork, org_id: str, template_id: str, attrs: dict[str, Any]
) -> JiraIssueTemplate:
    template = await get_issue_template(uow, org_id, template_id)
    if attrs.get("name") is not None:
        template.name = validate_name(attrs["name"], f"{ATTRS}/name")
    if attrs.get("fields") is not None:
        template.fields = _fields(attrs["fields"], f"{ATTRS}/fields")
    template.modified_at = utcnow()
    return template


async def delete_issue_template(uow: UnitOfWork, org_id: str, template_id: str) -> None:
    template = await get_issue_template(uow, org_id, template_id)
    await uow.session.delete(template)


# -- ServiceNow templates ("handles") ------------------------------------------------------------------------


def _optional_uuid(value: Any, pointer: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("must be a UUID string", pointer)
    return require_uuid(value, pointer.rsplit("/", 1)[-1], pointer)


def _fields_mapping(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidInput("fields_mapping must map ServiceNow field names to strings", f"{ATTRS}/fields_mapping")
    return value


def _table_name(value: Any) -> str:
    name = validate_name(value, f"{ATTRS}/servicenow_tablename", "servicenow_tablename")
    if not set(name) <= TABLE_NAME_CHARS:
        raise InvalidInput("servicenow_tablename is a table name such as incident", f"{ATTRS}/servicenow_tablename")
    return name


async def _apply_template(uow: UnitOfWork, org_id: str, template: ServiceNowTemplate, attrs: dict[str, Any]) -> None:
    instance_id = attrs.get("instance_id")
    if not isinstance(instance_id, str):
        raise InvalidInput("instance_id is required", f"{ATTRS}/instance_id")
    template.instance_id = (await get_account(uow, org_id, SERVICENOW, instance_id)).id
    template.handle_name = validate_name(attrs.get("handle_name"), f"{ATTRS}/handle_name", "handle_name")
    template.table_name = _table_name(attrs.get("servicenow_tablename"))
    template.assignment_group_id = _optional_uuid(attrs.get("assignment_group_id"), f"{ATTRS}/assignment_group_id")
    template.business_service_id = _optional_uuid(attrs.get("business_service_id"), f"{ATTRS}/business_service_id")
    template.user_id = _optional_uuid(attrs.get("user_id"), f"{ATTRS}/user_id")
    template.fields_mapping = _fields_mapping(attrs.get("fields_mapping"))
    taken = await uow.scalar(
        sa.select(servicenow_templates.c.id).where(
            servicenow_templates.c.org_id == org_id,
            servicenow_templates.c.handle_name == template.handle_name,
            servicenow_templates.c.id != template.id,
        )
    )
    if taken:
        raise Conflict(f"a ServiceNow template named {template.handle_name!r} already exists")


async def create_servicenow_template(
    uow: UnitOfWork, org_id: str, actor_id: str | None, attrs: dict[str, Any]
) -> ServiceNowTemplate:
    template = ServiceNowTemplate(
        id=str(uuid.uuid4()), org_id=org_id, instance_id="", handle_name="", table_name="", created_by_id=actor_id
    )
    await _apply_template(uow, org_id, template, attrs)
    uow.add(template)
    return template


async def list_servicenow_templates(uow: UnitOfWork, org_id: str) -> list[ServiceNowTemplate]:
    return await uow.scalars(
        sa.select(ServiceNowTemplate)
        .where(servicenow_templates.c.org_id == org_id)
        .order_by(servicenow_templates.c.created_at, servicenow_templates.c.id)
    )


async def get_servicenow_template(uow: UnitOfWork, org_id: str, template_id: str) -> ServiceNowTemplate:
    template_id = require_uuid(template_id, "template id")
    return await uow.get(ServiceNowTemplate, org_id, template_id, resource="ServiceNow template")


async def update_servicenow_template(
    uow: UnitOfWork, org_id: str, template_id: str, attrs: dict[str, Any]
) -> ServiceNowTemplate:
    template = await get_servicenow_template(uow, org_id, template_id)
    await _apply_template(uow, org_id, template, attrs)
    template.modified_at = utcnow()
    return template


async def delete_servicenow_template(uow: UnitOfWork, org_id: str, template_id: str) -> None:
    template = await get_servicenow_template(uow, org_id, template_id)
    await uow.session.delete(template)


# -- what an instance offers (read live through the Table API) ---------------------------------------------


@dataclass(frozen=True)
class InstanceRecord:
    id: str  # a stable UUID for the API
    sys_id: str
    values: dict[str, Any]


LISTINGS = {
    "assignment_groups": ("sys_user_group", ["sys_id", "name"]),
    "business_services": ("cmdb_ci_service", ["sys_id", "name"]),
    "users": ("sys_user", ["sys_id", "user_name", "email", "name"]),
}
LISTING_LIMIT = 1000


async def list_instance_records(remotes: RemoteSystems, account: IntegrationAccount, kind: str) -> list[InstanceRecord]:
    """The instance's assignment groups, business services or users (active ones, up to 1,000)."""
    table, fields = LISTINGS[kind]
    found = []
    try:
        async with remotes.servicenow(account) as client:
            async for record in client.query(table, "active=true^ORDERBYname", fields, page_size=200):
                sys_id = record.get("sys_id")
                if isinstance(sys_id, str):
                    found.append(InstanceRecord(remote_uuid(account.id, sys_id), sys_id, record))
                if len(found) >= LISTING_LIMIT:
                    break
    except RemoteError as exc:
        raise RemoteFailure(SERVICENOW, f"{account.name} did not list its {kind.replace('_', ' ')}", exc) from None
    return found
