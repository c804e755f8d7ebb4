"""A project's `settings.integration_jira` and `settings.integration_service_now`: validated on update with
Datadog's shapes (IntegrationJira, IntegrationServiceNow of the official client), and read by the sync
flavors and the third-party reader as `SyncRules`.

`sync_type` says which way a property flows. Datadog's client types it as a free string; casem accepts
the spellings below and answers a 400 naming them for anything else:

- both ways: `bidirectional`, `two_way`, `both`
- casem to the remote only: `outbound`, `one_way`, `dd_to_jira`, `datadog_to_jira`, `to_jira`,
  `dd_to_servicenow`, `datadog_to_servicenow`, `to_servicenow`
- the remote to casem only: `inbound`, `jira_to_dd`, `jira_to_datadog`, `from_jira`, `servicenow_to_dd`,
  `servicenow_to_datadog`, `from_servicenow`
- not synced: `none`, `off`, `disabled`

A property that is absent is not synced. `mapping` of `status` and `priority` maps casem's values
(OPEN, IN_PROGRESS, CLOSED; P1..P5, NOT_DEFINED) to the remote's names (Jira status and priority names,
ServiceNow `state` values); a remote value with no entry maps back by its category (Jira's statusCategory,
ServiceNow's state groups). ServiceNow's priority goes out as `impact_mapping` / `urgency_mapping` and
comes back from the incident's computed priority (1..5 is P1..P5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, ValidationError

from casem.adapters.storage.tables import integration_accounts
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.cases import Priority, Status
from casem.domain.errors import InvalidInput
from casem.domain.integrations import JIRA, SERVICENOW

OUT = "outbound"
IN = "inbound"
SYNC_TYPES: dict[str, frozenset[str]] = {
    **dict.fromkeys(("bidirectional", "two_way", "both"), frozenset({OUT, IN})),
    **dict.fromkeys(
        (
            "outbound",
            "one_way",
            "dd_to_jira",
            "datadog_to_jira",
            "to_jira",
            "dd_to_servicenow",
            "datadog_to_servicenow",
            "to_servicenow",
        ),
        frozenset({OUT}),
    ),
    **dict.fromkeys(
        (
            "inbound",
            "jira_to_dd",
            "jira_to_datadog",
            "from_jira",
            "servicenow_to_dd",
            "servicenow_to_datadog",
            "from_servicenow",
        ),
        frozenset({IN}),
    ),
    **dict.fromkeys(("none", "off", "disabled"), frozenset()),
}

# Defaults when a mapping leaves a value out.
JIRA_PRIORITIES = {"P1": "Highest", "P2": "High", "P3": "Medium", "P4": "Low", "P5": "Lowest"}
SERVICENOW_IMPACT = {"P1": "1", "P2": "1", "P3": "2", "P4": "2", "P5": "3"}
SERVICENOW_URGENCY = {"P1": "1", "P2": "2", "P3": "2", "P4": "3", "P5": "3"}
SERVICENOW_STATES = {"OPEN": "1", "IN_PROGRESS": "2", "CLOSED": "6"}
# ServiceNow incident states back to casem: New; In Progress, On Hold; Resolved, Closed, Canceled.
SERVICENOW_STATE_GROUPS = {
    "1": "OPEN",
    "2": "IN_PROGRESS",
    "3": "IN_PROGRESS",
    "6": "CLOSED",
    "7": "CLOSED",
    "8": "CLOSED",
}
JIRA_STATUS_CATEGORIES = {"new": "OPEN", "indeterminate": "IN_PROGRESS", "done": "CLOSED"}


class _Shape(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SyncProperty(_Shape):
    sync_type: str | None = None


class SyncPropertyWithMapping(_Shape):
    sync_type: str | None = None
    mapping: dict[str, str] | None = None
    name_mapping: dict[str, str] | None = None


class JiraDueDate(_Shape):
    sync_type: str | None = None
    jira_field_id: str | None = None


class JiraCustomField(_Shape):
    sync_type: str | None = None
    value: Any = None


class JiraSyncProperties(_Shape):
    title: SyncProperty | None = None
    description: SyncProperty | None = None
    comments: SyncProperty | None = None
    assignee: SyncProperty | None = None
    status: SyncPropertyWithMapping | None = None
    priority: SyncPropertyWithMapping | None = None
    due_date: JiraDueDate | None = None
    custom_fields: dict[str, JiraCustomField] | None = None


class Toggle(_Shape):
    enabled: bool | None = None


class JiraSync(_Shape):
    enabled: bool | None = None
    properties: JiraSyncProperties | None = None


class JiraMetadata(_Shape):
    account_id: str | None = None
    issue_type_id: str | None = None
    project_id: str | None = None


class IntegrationJira(_Shape):
    enabled: bool | None = None
    metadata: JiraMetadata | None = None
    auto_creation: Toggle | None = None
    sync: JiraSync | None = None


class ServiceNowPriority(_Shape):
    sync_type: str | None = None
    impact_mapping: dict[str, str] | None = None
    urgency_mapping: dict[str, str] | None = None


class ServiceNowSyncProperties(_Shape):
    comments: SyncProperty | None = None
    status: SyncPropertyWithMapping | None = None
    priority: ServiceNowPriority | None = None


class ServiceNowSync(_Shape):
    enabled: bool | None = None
    properties: ServiceNowSyncProperties | None = None


class IntegrationServiceNow(_Shape):
    enabled: bool | None = None
    instance_name: str | None = None
    assignment_group: str | None = None
    auto_creation: Toggle | None = None
    sync_config: ServiceNowSync | None = None


SETTING_KEYS = {JIRA: "integration_jira", SERVICENOW: "integration_service_now"}


def _parse(model: type[_Shape], value: Any, pointer: str) -> _Shape:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = pointer + "".join(f"/{p}" for p in first["loc"])
        kind = first.get("type", "")
        detail = f"{where} is not a known setting" if kind == "extra_forbidden" else f"{where}: {first['msg']}"
        raise InvalidInput(detail, where) from None


def _check_sync_type(value: str | None, pointer: str) -> None:
    if value is not None and value not in SYNC_TYPES:
        raise InvalidInput(
            f"sync_type {value!r} is not one of: {', '.join(sorted(SYNC_TYPES))}", f"{pointer}/sync_type"
        )


def _check_mapping(mapping: dict[str, str] | None, allowed: list[str], pointer: str) -> None:
    for key, value in (mapping or {}).items():
        if key not in allowed:
            raise InvalidInput(f"mapping key {key!r} is not one of {', '.join(allowed)}", f"{pointer}/{key}")
        if not value.strip():
            raise InvalidInput(f"mapping of {key} must be a non-empty string", f"{pointer}/{key}")


STATUSES = [s.value for s in Status]
PRIORITIES = [p.value for p in Priority]


async def _account_exists(uow: UnitOfWork, org_id: str, system: str, **match: str) -> bool:
    where = [
        integration_accounts.c.org_id == org_id,
        integration_accounts.c.system == system,
        integration_accounts.c.deleted_at.is_(None),
    ]
    where += [integration_accounts.c[name] == value for name, value in match.items()]
    return bool(await uow.scalar(sa.select(sa.func.count()).select_from(integration_accounts).where(*where)))


async def validate_integration_settings(uow: UnitOfWork, org_id: str, settings: dict[str, Any]) -> None:
    """400 with a pointer for a malformed integration_jira / integration_service_now, or one naming an account
    or instance the org does not have."""
    base = "/data/attributes/settings"
    if "integration_jira" in settings and settings["integration_jira"] is not None:
        pointer = f"{base}/integration_jira"
        jira = _parse(IntegrationJira, settings["integration_jira"], pointer)
        assert isinstance(jira, IntegrationJira)
        props = jira.sync.properties if jira.sync else None
        if props is not None:
            for name in ("title", "description", "comments", "assignee", "status", "priority", "due_date"):
                prop = getattr(props, name)
                if prop is not None:
                    _check_sync_type(prop.sync_type, f"{pointer}/sync/properties/{name}")
            for fid, custom in (props.custom_fields or {}).items():
                _check_sync_type(custom.sync_type, f"{pointer}/sync/properties/custom_fields/{fid}")
            if props.status:
                _check_mapping(props.status.mapping, STATUSES, f"{pointer}/sync/properties/status/mapping")
            if props.priority:
                _check_mapping(props.priority.mapping, PRIORITIES, f"{pointer}/sync/properties/priority/mapping")
        account_id = jira.metadata.account_id if jira.metadata else None
        if account_id and not await _account_exists(uow, org_id, JIRA, id=account_id):
            raise InvalidInput(f"the org has no Jira account {account_id!r}", f"{pointer}/metadata/account_id")
        if jira.enabled and jira.auto_creation and jira.auto_creation.enabled:
            meta = jira.metadata
            if meta is None or not (meta.account_id and meta.project_id and meta.issue_type_id):
                raise InvalidInput(
                    "auto_creation needs metadata.account_id, metadata.project_id and metadata.issue_type_id",
                    f"{pointer}/metadata",
                )
    if "integration_service_now" in settings and settings["integration_service_now"] is not None:
        pointer = f"{base}/integration_service_now"
        snow = _parse(IntegrationServiceNow, settings["integration_service_now"], pointer)
        assert isinstance(snow, IntegrationServiceNow)
        props_sn = snow.sync_config.properties if snow.sync_config else None
        if props_sn is not None:
            for name in ("comments", "status", "priority"):
                prop = getattr(props_sn, name)
                if prop is not None:
                    _check_sync_type(prop.sync_type, f"{pointer}/sync_config/properties/{name}")
            if props_sn.status:
                _check_mapping(props_sn.status.mapping, STATUSES, f"{pointer}/sync_config/properties/status/mapping")
            if props_sn.priority:
                for kind in ("impact_mapping", "urgency_mapping"):
                    mapping = getattr(props_sn.priority, kind)
                    _check_mapping(mapping, PRIORITIES, f"{pointer}/sync_config/properties/priority/{kind}")
                    for key, value in (mapping or {}).items():
                        if value not in ("1", "2", "3"):
                            raise InvalidInput(
                                f"{kind} of {key} must be 1, 2 or 3 (ServiceNow's high, medium, low)",
                                f"{pointer}/sync_config/properties/priority/{kind}/{key}",
                            )
        if snow.instance_name and not await _account_exists(uow, org_id, SERVICENOW, name=snow.instance_name):
            raise InvalidInput(
                f"the org has no ServiceNow instance named {snow.instance_name!r}", f"{pointer}/instance_name"
            )
        if snow.enabled and snow.auto_creation and snow.auto_creation.enabled and not snow.instance_name:
            raise InvalidInput("auto_creation needs instance_name", f"{pointer}/instance_name")


# -- the rules the sync flavors and the reader follow ----------------------------------------------------------


@dataclass(frozen=True)
class SyncRules:
    """One project's sync with one remote system, as its settings say."""

    system: str
    enabled: bool = False  # the integration is on
    sync_enabled: bool = False  # and so is field synchronisation
    auto_creation: bool = False
    account_id: str | None = None  # Jira: metadata.account_id
    instance_name: str | None = None  # ServiceNow
    project_id: str | None = None  # Jira project for auto-created issues
    issue_type_id: str | None = None
    assignment_group: str | None = None
    directions: dict[str, frozenset[str]] = field(default_factory=dict)
    status_mapping: dict[str, str] = field(default_factory=dict)
    priority_mapping: dict[str, str] = field(default_factory=dict)
    impact_mapping: dict[str, str] = field(default_factory=dict)
    urgency_mapping: dict[str, str] = field(default_factory=dict)
    due_date_field: str = "duedate"
    custom_fields: dict[str, str] = field(default_factory=dict)  # remote field id -> casem custom attribute key

    def pushes(self, prop: str) -> bool:
        return self.enabled and self.sync_enabled and OUT in self.directions.get(prop, frozenset())

    def pulls(self, prop: str) -> bool:
        return self.enabled and self.sync_enabled and IN in self.directions.get(prop, frozenset())

    # -- values across the boundary -----------------------------------------------------------------------
    def remote_status(self, status: str) -> str | None:
        if self.system == JIRA:
            return self.status_mapping.get(status)
        return self.status_mapping.get(status, SERVICENOW_STATES.get(status))

    def local_status(self, remote: str | None, category: str | None = None) -> str | None:
        """casem's status for a remote one: the mapping read backwards, else the remote's category."""
        if remote is None:
            return None
        for local, mapped in self.status_mapping.items():
            if mapped.lower() == remote.lower():
                return local
        if self.system == JIRA:
            return JIRA_STATUS_CATEGORIES.get((category or "").lower())
        return SERVICENOW_STATE_GROUPS.get(remote)

    def remote_priority(self, priority: str) -> str | None:
        if priority == Priority.NOT_DEFINED:
            return self.priority_mapping.get(priority)
        return self.priority_mapping.get(priority, JIRA_PRIORITIES.get(priority))

    def local_priority(self, remote: str | None) -> str | None:
        if remote is None:
            return None
        for local, mapped in self.priority_mapping.items():
            if mapped.lower() == remote.lower():
                return local
        if self.system == JIRA:
            for local, mapped in JIRA_PRIORITIES.items():
                if mapped.lower() == remote.lower():
                    return local
            return None
        return {"1": "P1", "2": "P2", "3": "P3", "4": "P4", "5": "P5"}.get(remote)

    def impact_urgency(self, priority: str) -> tuple[str, str] | None:
        if priority not in SERVICENOW_IMPACT and priority not in self.impact_mapping:
            return None
        return (
            self.impact_mapping.get(priority, SERVICENOW_IMPACT.get(priority, "3")),
            self.urgency_mapping.get(priority, SERVICENOW_URGENCY.get(priority, "3")),
        )


def _directions(props: Any, names: tuple[str, ...]) -> dict[str, frozenset[str]]:
    found = {}
    for name in names:
        prop = getattr(props, name, None) if props is not None else None
        if prop is not None and prop.sync_type is not None:
            found[name] = SYNC_TYPES.get(prop.sync_type, frozenset())
    return found


def rules_for(settings: dict[str, Any] | None, system: str) -> SyncRules:
    """The sync rules of a project's (already validated) settings; a project without them syncs nothing."""
    raw = (settings or {}).get(SETTING_KEYS[system])
    if not isinstance(raw, dict):
        return SyncRules(system)
    try:
        if system == JIRA:
            jira = IntegrationJira.model_validate(raw)
            props = jira.sync.properties if jira.sync else None
            custom = {}
            for fid, conf in ((props.custom_fields if props else None) or {}).items():
                if isinstance(conf.value, str) and conf.sync_type in SYNC_TYPES:
                    custom[fid] = conf.value
            return SyncRules(
                JIRA,
                enabled=bool(jira.enabled),
                sync_enabled=bool(jira.sync and jira.sync.enabled),
                auto_creation=bool(jira.auto_creation and jira.auto_creation.enabled),
                account_id=jira.metadata.account_id if jira.metadata else None,
                project_id=jira.metadata.project_id if jira.metadata else None,
                issue_type_id=jira.metadata.issue_type_id if jira.metadata else None,
                directions=_directions(
                    props, ("title", "description", "comments", "assignee", "status", "priority", "due_date")
                )
                | {
                    f"custom_fields.{fid}": SYNC_TYPES[c.sync_type]
                    for fid, c in ((props.custom_fields if props else None) or {}).items()
                    if c.sync_type in SYNC_TYPES
                },
                status_mapping=dict((props.status.mapping if props and props.status else None) or {}),
                priority_mapping=dict((props.priority.mapping if props and props.priority else None) or {}),
                due_date_field=(props.due_date.jira_field_id if props and props.due_date else None) or "duedate",
                custom_fields=custom,
            )
        snow = IntegrationServiceNow.model_validate(raw)
        props_sn = snow.sync_config.properties if snow.sync_config else None
        return SyncRules(
            SERVICENOW,
            enabled=bool(snow.enabled),
            sync_enabled=bool(snow.sync_config and snow.sync_config.enabled),
            auto_creation=bool(snow.auto_creation and snow.auto_creation.enabled),
            instance_name=snow.instance_name,
            assignment_group=snow.assignment_group,
            directions=_directions(props_sn, ("comments", "status", "priority")),
            status_mapping=dict((props_sn.status.mapping if props_sn and props_sn.status else None) or {}),
            impact_mapping=dict((props_sn.priority.impact_mapping if props_sn and props_sn.priority else None) or {}),
            urgency_mapping=dict((props_sn.priority.urgency_mapping if props_sn and props_sn.priority else None) or {}),
        )
    except ValidationError:
        return SyncRules(system)  # stored before validation existed: treated as off until fixed
