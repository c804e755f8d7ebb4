"""Changes to existing cases: one application service per Datadog update operation, plus bulk updates.

Every function loads the case in the caller's unit of work and calls one change method of the Case
aggregate; the aggregate records the event (or nothing, for a no-op) and the unit of work writes the
outbox row and the timeline cell on commit. Nothing here touches events or the timeline directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases import service
from casem.app.ids import UUID_RE
from casem.domain.cases import STANDARD_TYPE_ID, Case, Priority, Status, parse_enum
from casem.domain.errors import InvalidInput, NotFound
from casem.domain.project_settings import auto_transition_on_self_assign
from casem.domain.projects import Project

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RESOLVED_REASON_MAX = 255
BULK_MAX = 100  # case ids per bulk request: keeps one all-or-nothing transaction short

ATTRS = "/data/attributes"


def _string(value: Any, name: str, pointer: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", pointer)
    return value


async def retitle(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str, title: Any) -> Case:
    case = await service.get_case(uow, org_id, case_id)
    case.retitle(title, actor_id)
    return case


async def describe(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str, description: Any) -> Case:
    case = await service.get_case(uow, org_id, case_id)
    case.describe(description, actor_id)
    return case


def resolve_status(status: Any, status_name: Any) -> str:
    """`status` or `status_name` (Datadog accepts either); both given must agree."""
    if status is None and status_name is None:
        raise InvalidInput("status or status_name is required", f"{ATTRS}/status")
    chosen = [
        parse_enum(Status, value, f"{ATTRS}/{name}").value
        for name, value in (("status", status), ("status_name", status_name))
        if value is not None
    ]
    if len(set(chosen)) > 1:
        raise InvalidInput("status and status_name name different statuses", f"{ATTRS}/status_name")
    return chosen[0]


async def transition(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str, status: str) -> Case:
    case = await service.get_case(uow, org_id, case_id)
    case.transition(status, actor_id)
    return case


async def prioritize(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str, priority: Any) -> Case:
    parse_enum(Priority, priority, f"{ATTRS}/priority")  # before the lookup: a bad value is a 400 either way
    case = await service.get_case(uow, org_id, case_id)
    case.prioritize(priority, actor_id)
    return case


async def set_attributes(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str, attributes: Any) -> Case:
    case = await service.get_case(uow, org_id, case_id)
    case.set_attributes(attributes, actor_id)
    return case


async def _config(uow: UnitOfWork, org_id: str, case: Case, key: str) -> Any:
    configs = await service.attribute_configs(uow, org_id, case.type_id)
    if key not in configs:
        # Datadog answers 404 for a key the case's type does not define.
        raise NotFound("custom attribute", key)
    return configs[key]


async def set_custom_attribute(
    uow: UnitOfWork, org_id: str, actor_id: str, case_id: str, key: str, value: dict[str, Any]
) -> Case:
    case = await service.get_case(uow, org_id, case_id)
    config = await _config(uow, org_id, case, key)
    # The body restates the attribute's type and cardinality: a mismatch means the caller has the wrong idea.
    if value["type"] != config.type:
        raise InvalidInput(f"custom attribute {key!r} is of type {config.type}, not {value['type']!r}", f"{ATTRS}/type")
    if not isinstance(value["is_multi"], bool) or value["is_multi"] != config.is_multi:
        raise InvalidInput(f"custom attribute {key!r} has is_multi={str(config.is_multi).lower()}", f"{ATTRS}/is_multi")
    # The config's own check (what service.coerce_custom_attributes applies per key), pointing at `value`.
    coerced = config.coerce(value["value"], f"{ATTRS}/value")
    case.set_custom_attributes({**case.custom_attributes, key: coerced}, actor_id)
    return case


async def delete_custom_attribute(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str, key: str) -> Case:
    case = await service.get_case(uow, org_id, case_id)
    await _config(uow, org_id, case, key)
    remaining = {k: v for k, v in case.custom_attributes.items() if k != key}
    case.set_custom_attributes(remaining, actor_id)
    return case


def parse_due_date(value: Any) -> date | None:
    """A calendar date (YYYY-MM-DD); null or an empty string clears it."""
    pointer = f"{ATTRS}/due_date"
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not DATE.match(value):
        raise InvalidInput(f"due_date must be a date like 2026-12-31, got {value!r}", pointer)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"due_date {value!r} is not a calendar date", pointer) from None


async def set_due_date(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str, due: Any) -> Case:
    parsed = parse_due_date(due)
    case = await service.get_case(uow, org_id, case_id)
    case.set_due_date(parsed, actor_id)
    return case


async def set_resolved_reason(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str, reason: Any) -> Case:
    pointer = f"{ATTRS}/security_resolved_reason"
    reason = _string(reason, "security_resolved_reason", pointer)
    if not reason.strip():
        raise InvalidInput("security_resolved_reason must be a non-empty string", pointer)
    if len(reason) > RESOLVED_REASON_MAX:
        raise InvalidInput(f"security_resolved_reason is longer than {RESOLVED_REASON_MAX} characters", pointer)
    case = await service.get_case(uow, org_id, case_id)
    case.set_resolved_reason(reason, actor_id)
    return case


async def assign(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str, assignee_id: Any) -> Case:
    pointer = f"{ATTRS}/assignee_id"
    user_id = _string(assignee_id, "assignee_id", pointer)
    if not UUID_RE.match(user_id):
        raise InvalidInput(f"assignee_id {user_id!r} is not a valid UUID", pointer)
    case = await service.get_case(uow, org_id, case_id)
    await service.check_user(uow, org_id, user_id.lower(), pointer)
    if case.assign(user_id.lower(), actor_id) and case.assignee_id == actor_id and case.status == Status.OPEN:
        # The project's auto-transition: taking a case yourself means you are working on it.
        project = await uow.get(Project, org_id, case.project_id, resource="project")
        if auto_transition_on_self_assign(project.settings):
            case.transition(Status.IN_PROGRESS.value, actor_id)
    return case


async def unassign(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str) -> Case:
    case = await service.get_case(uow, org_id, case_id)
    case.assign(None, actor_id)
    return case


async def archive(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str) -> Case:
    case = await service.get_case(uow, org_id, case_id)
    case.archive(actor_id)
    return case


async def unarchive(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str) -> Case:
    case = await service.get_case(uow, org_id, case_id)
    case.unarchive(actor_id)
    return case


async def move(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str, project_id: Any) -> Case:
    pointer = "/data/id"
    project_id = _string(project_id, "project id", pointer)
    if not UUID_RE.match(project_id):
        raise InvalidInput(f"project id {project_id!r} is not a valid UUID", pointer)
    project_id = project_id.lower()
    case = await service.get_case(uow, org_id, case_id)
    project = await uow.get(Project, org_id, project_id, resource="project")
    if case.project_id == project.id:
        return case  # already there: no new key, no event
    if (
        case.type_id != STANDARD_TYPE_ID
        and project.enabled_custom_case_types
        and case.type_id not in project.enabled_custom_case_types
    ):
        raise InvalidInput(f"case type {case.type_id} is not enabled in project {project.key}", pointer)
    number, key = await service.allocate_number(uow, org_id, project.id)
    case.move_to(project.id, number, key, actor_id)
    return case


# -- bulk ----------------------------------------------------------------------------------------

BULK_PAYLOAD_MEMBERS: dict[str, frozenset[str]] = {
    "priority": frozenset({"priority"}),
    "status": frozenset({"status", "status_name"}),
    "assign": frozenset({"assignee_id"}),
    "unassign": frozenset(),
    "archive": frozenset(),
    "unarchive": frozenset(),
    "update_project": frozenset({"project_id"}),
}
# Actions Datadog offers that need a third-party integration casem does not have yet.
BULK_UNSUPPORTED = frozenset({"jira", "servicenow", "linear"})


@dataclass(frozen=True)
class BulkAction:
    kind: str
    payload: dict[str, Any]


def parse_bulk_action(kind: Any, payload: dict[str, Any] | None) -> BulkAction:
    # A list or an object is unhashable: test the type before looking the value up in a set.
    if isinstance(kind, str) and kind in BULK_UNSUPPORTED:
        raise InvalidInput(f"bulk action {kind!r} is not supported yet by casem", f"{ATTRS}/type")
    if not isinstance(kind, str) or kind not in BULK_PAYLOAD_MEMBERS:
        allowed = ", ".join([*BULK_PAYLOAD_MEMBERS, *sorted(BULK_UNSUPPORTED)])
        raise InvalidInput(f"invalid bulk action {kind!r}: must be one of {allowed}", f"{ATTRS}/type")
    payload = payload or {}
    allowed_members = BULK_PAYLOAD_MEMBERS[kind]
    for member in payload:
        if member not in allowed_members:
            raise InvalidInput(
                f"payload member {member!r} is not used by the {kind!r} action", f"{ATTRS}/payload/{member}"
            )
    pointer = f"{ATTRS}/payload"
    if kind == "priority":
        if "priority" not in payload:
            raise InvalidInput("the priority action needs payload.priority", pointer)
        parse_enum(Priority, payload["priority"], f"{pointer}/priority")
    elif kind == "status":
        status = resolve_status(payload.get("status"), payload.get("status_name"))
        payload = {"status": status}
    elif kind == "assign":
        user = payload.get("assignee_id")
        if not isinstance(user, str) or not UUID_RE.match(user):
            raise InvalidInput(f"payload.assignee_id {user!r} is not a valid UUID", f"{pointer}/assignee_id")
    elif kind == "update_project":
        project = payload.get("project_id")
        if not isinstance(project, str) or not UUID_RE.match(project):
            raise InvalidInput(f"payload.project_id {project!r} is not a valid UUID", f"{pointer}/project_id")
    return BulkAction(kind, payload)


async def bulk_update(
    uow: UnitOfWork, org_id: str, actor_id: str, case_ids: list[Any], action: BulkAction
) -> list[Case]:
    """Apply one action to many cases in the caller's transaction: any failure leaves every case unchanged."""
    pointer = f"{ATTRS}/case_ids"
    if not case_ids:
        raise InvalidInput("case_ids must name at least one case", pointer)
    if len(case_ids) > BULK_MAX:
        raise InvalidInput(f"case_ids names {len(case_ids)} cases; the limit is {BULK_MAX}", pointer)
    for i, ident in enumerate(case_ids):
        if not isinstance(ident, str) or not UUID_RE.match(ident):
            raise InvalidInput(f"case id {ident!r} is not a valid UUID", f"{pointer}/{i}")
    unique = list(dict.fromkeys(i.lower() for i in case_ids))
    updated: list[Case] = []
    for ident in unique:
        if action.kind == "priority":
            updated.append(await prioritize(uow, org_id, actor_id, ident, action.payload["priority"]))
        elif action.kind == "status":
            updated.append(await transition(uow, org_id, actor_id, ident, action.payload["status"]))
        elif action.kind == "assign":
            updated.append(await assign(uow, org_id, actor_id, ident, action.payload["assignee_id"]))
        elif action.kind == "unassign":
            updated.append(await unassign(uow, org_id, actor_id, ident))
        elif action.kind == "archive":
            updated.append(await archive(uow, org_id, actor_id, ident))
        elif action.kind == "unarchive":
            updated.append(await unarchive(uow, org_id, actor_id, ident))
        else:
            updated.append(await move(uow, org_id, actor_id, ident, action.payload["project_id"]))
    return updated
