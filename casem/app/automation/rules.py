"""Automation rules of a project (create, list, get, update, delete, enable, disable) and casem's per-project
SLA targets, reminder lead times and duplicate detection settings. Everything lives in a project of the
caller's org: another org's project or rule is a 404."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import automation_rules
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.automation import settings
from casem.app.automation.reminders import reschedule_project
from casem.app.automation.sla import retarget_project
from casem.app.cases.service import check_user
from casem.app.ids import require_uuid
from casem.app.projects.service import get_project
from casem.domain.automation import (
    ASSIGN_USER,
    ENABLED,
    AutomationRule,
    validate_action,
    validate_duplicates,
    validate_name,
    validate_reminders,
    validate_sla,
    validate_state,
    validate_trigger,
)
from casem.domain.errors import InvalidInput, NotFound

ATTRS = "/data/attributes"


async def _validated(uow: UnitOfWork, org_id: str, attrs: dict[str, Any]) -> dict[str, Any]:
    values = {
        "name": validate_name(attrs.get("name")),
        "trigger": validate_trigger(attrs.get("trigger")),
        "action": validate_action(attrs.get("action")),
    }
    if attrs.get("state") is not None:
        values["state"] = validate_state(attrs["state"])
    if values["action"]["type"] == ASSIGN_USER:
        try:
            await check_user(uow, org_id, values["action"]["data"]["assignee_id"], f"{ATTRS}/action/data/assignee_id")
        except NotFound:
            # The rule is valid or not whatever the org holds: a user it cannot assign is bad input.
            raise InvalidInput("assignee_id names no user of this org", f"{ATTRS}/action/data/assignee_id") from None
    return values


async def create_rule(
    uow: UnitOfWork,
    org_id: str,
    actor_id: str | None,
    project_id: str,
    attrs: dict[str, Any],
    rule_id: str | None = None,
) -> AutomationRule:
    project = await get_project(uow, org_id, project_id)
    values = {"state": ENABLED, **await _validated(uow, org_id, attrs)}
    rule = AutomationRule(
        id=rule_id or str(uuid.uuid4()), org_id=org_id, project_id=project.id, created_by_id=actor_id, **values
    )
    await uow.execute(sa.insert(automation_rules).values(**asdict(rule)))
    return rule


async def list_rules(uow: UnitOfWork, org_id: str, project_id: str) -> list[AutomationRule]:
    project = await get_project(uow, org_id, project_id)
    rows = await uow.execute(
        sa.select(automation_rules)
        .where(automation_rules.c.org_id == org_id, automation_rules.c.project_id == project.id)
        .order_by(automation_rules.c.created_at, automation_rules.c.id)
    )
    return [AutomationRule(**row._mapping) for row in rows]


async def get_rule(uow: UnitOfWork, org_id: str, project_id: str, rule_id: str) -> AutomationRule:
    rule_id = require_uuid(rule_id, "rule id")
    project = await get_project(uow, org_id, project_id)
    row = (
        await uow.execute(
            sa.select(automation_rules).where(
                automation_rules.c.id == rule_id,
                automation_rules.c.org_id == org_id,
                automation_rules.c.project_id == project.id,
            )
        )
    ).first()
    if row is None:
        raise NotFound("rule", rule_id)
    return AutomationRule(**row._mapping)


async def _save(uow: UnitOfWork, rule: AutomationRule, actor_id: str | None, values: dict[str, Any]) -> AutomationRule:
    values = {**values, "modified_by_id": actor_id, "modified_at": datetime.now(UTC)}
    await uow.execute(sa.update(automation_rules).where(automation_rules.c.id == rule.id).values(**values))
    for name, value in values.items():
        setattr(rule, name, value)
    return rule


async def update_rule(
    uow: UnitOfWork, org_id: str, actor_id: str | None, project_id: str, rule_id: str, attrs: dict[str, Any] | None
) -> AutomationRule:
    """PUT: name, trigger and action are replaced; state only when sent."""
    rule = await get_rule(uow, org_id, project_id, rule_id)
    if not attrs:
        raise InvalidInput("data.attributes is required", ATTRS)
    return await _save(uow, rule, actor_id, await _validated(uow, org_id, attrs))


async def set_state(
    uow: UnitOfWork, org_id: str, actor_id: str | None, project_id: str, rule_id: str, state: str
) -> AutomationRule:
    rule = await get_rule(uow, org_id, project_id, rule_id)
    if rule.state == state:
        return rule
    return await _save(uow, rule, actor_id, {"state": state})


async def delete_rule(uow: UnitOfWork, org_id: str, project_id: str, rule_id: str) -> None:
    rule = await get_rule(uow, org_id, project_id, rule_id)
    await uow.execute(sa.delete(automation_rules).where(automation_rules.c.id == rule.id))


# -- casem's per-project settings ---------------------------------------------------------------------------


async def get_settings(uow: UnitOfWork, org_id: str, project_id: str) -> settings.ProjectSettings:
    project = await get_project(uow, org_id, project_id)
    return await settings.project_settings(uow, org_id, project.id)


async def put_sla(
    uow: UnitOfWork, org_id: str, actor_id: str | None, project_id: str, targets: Any
) -> settings.ProjectSettings:
    project = await get_project(uow, org_id, project_id)
    await settings.store(uow, org_id, actor_id, project.id, sla=validate_sla(targets))
    await retarget_project(uow, org_id, project.id)  # open clocks follow the new targets
    return await settings.project_settings(uow, org_id, project.id)


async def put_reminders(
    uow: UnitOfWork, org_id: str, actor_id: str | None, project_id: str, lead_seconds: Any
) -> settings.ProjectSettings:
    project = await get_project(uow, org_id, project_id)
    await settings.store(uow, org_id, actor_id, project.id, reminders=validate_reminders(lead_seconds))
    await reschedule_project(uow, org_id, project.id, datetime.now(UTC))  # pending reminders follow
    return await settings.project_settings(uow, org_id, project.id)


async def put_duplicates(
    uow: UnitOfWork, org_id: str, actor_id: str | None, project_id: str, values: dict[str, Any]
) -> settings.ProjectSettings:
    """PUT: the members sent replace the current ones; those not sent are kept."""
    project = await get_project(uow, org_id, project_id)
    current = asdict((await settings.project_settings(uow, org_id, project.id)).duplicates)
    await settings.store(uow, org_id, actor_id, project.id, duplicates={**current, **validate_duplicates(values)})
    return await settings.project_settings(uow, org_id, project.id)
