"""Settings forms for what an org configures: case types and their custom attributes, automation rules, SLA
targets and reminder lead times, notification rules and endpoints, maintenance windows.

Every form runs the use case the public API's route for the same change runs (casem/app/<concept>), with the
same org scoping: another org's id is the NotFound the console answers with its 404 page. A refused value
(InvalidInput, Conflict) re-renders the page with the message next to the field it is about; this module only
turns form text into the shapes the use cases take, it never checks values itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.automation import rules as automation_rules
from casem.app.case_types import service as case_types
from casem.app.console import accounts, keys
from casem.app.custom_attributes import service as attributes
from casem.app.identity.service import list_users, page_of
from casem.app.maintenance_windows import service as windows
from casem.app.notification_rules import service as notifications
from casem.app.outbound.service import destination_policy
from casem.app.projects.service import list_projects
from casem.domain.automation import ACTION_REQUIRES
from casem.domain.automation import TRIGGER_TYPES as AUTOMATION_TRIGGERS
from casem.domain.errors import Conflict, InvalidInput
from casem.domain.notifications import RECIPIENT_TYPES
from casem.domain.notifications import TRIGGER_TYPES as NOTIFICATION_TRIGGERS
from casem.services.case_console.web import Visitor, render, visitor

router = APIRouter(prefix="/settings")

SECTIONS = {
    "projects": "Projects",
    "people": "People",
    "keys": "API and application keys",
    "case-types": "Case types and attributes",
    "automation": "Automation, SLA and reminders",
    "notifications": "Notification rules and endpoints",
    "maintenance": "Maintenance windows",
}

ATTRIBUTE_TYPES = ("TEXT", "NUMBER", "URL", "SELECT")
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
# Actions a form can say with one value (ASSIGN_AGENT needs two: the API sets it up).
FORM_ACTIONS = {kind: keys[0] for kind, keys in sorted(ACTION_REQUIRES.items()) if len(keys) == 1}
# The recipient data member a form's single "send to" value fills, per recipient type.
RECIPIENT_MEMBER = {
    "EMAIL": "email",
    "SLACK_CHANNEL": "channel",
    "MS_TEAMS_CHANNEL": "connector_name",
    "HTTP": "name",
    "PAGERDUTY_SERVICE": "service_name",
}
ENDPOINT_KINDS = {"HTTP": "Webhook", "MS_TEAMS_CHANNEL": "Microsoft Teams connector"}

# Where a use case's JSON pointer lands in a form: the first prefix that matches names the field.
Fields = tuple[tuple[str, str], ...]
CASE_TYPE_FIELDS: Fields = (("/data/attributes/emoji", "emoji"), ("/data/attributes/description", "description"))
ATTRIBUTE_FIELDS: Fields = (
    ("/data/attributes/key", "key"),
    ("/data/attributes/display_name", "display_name"),
    ("/data/attributes/type_data", "options"),
    ("/data/attributes/type", "type"),
    ("/data/attributes/description", "description"),
)
AUTOMATION_FIELDS: Fields = (
    ("/data/attributes/name", "name"),
    ("/data/attributes/trigger/data/field", "trigger_field"),
    ("/data/attributes/trigger/data/to_status_name", "to_status"),
    ("/data/attributes/trigger", "trigger"),
    ("/data/attributes/action/type", "action"),
    ("/data/attributes/action", "action_value"),
    ("/data/attributes/state", "state"),
)
NOTIFICATION_FIELDS: Fields = (
    ("/data/attributes/triggers/0/data/field", "trigger_field"),
    ("/data/attributes/triggers", "trigger"),
    ("/data/attributes/recipients/0/type", "recipient_type"),
    ("/data/attributes/recipients", "recipient"),
    ("/data/attributes/query", "query"),
)
ENDPOINT_FIELDS: Fields = (("/data/attributes/url", "url"), ("/data/attributes/secret", "secret"))
WINDOW_FIELDS: Fields = (
    ("/data/attributes/query", "query"),
    ("/data/attributes/start_at", "start_at"),
    ("/data/attributes/end_at", "end_at"),
)


class FormRefused(Exception):  # noqa: N818 - reads as "raise FormRefused"
    """A use case refused the form's values: the page comes back with `detail` next to `field`."""

    def __init__(self, form_id: str, field: str, detail: str) -> None:
        super().__init__(detail)
        self.form_id = form_id
        self.field = field
        self.detail = detail


def field_of(pointer: str | None, fields: Fields, default: str) -> str:
    for prefix, field in fields:
        if pointer and pointer.startswith(prefix):
            return field
    return default


def _choices(names: Any) -> list[tuple[str, str]]:
    """Options of a select: the stored name, and how it reads (STATUS_TRANSITIONED → status transitioned)."""
    return [(name, name.replace("_", " ").lower()) for name in names]


async def page_values(who: Visitor, section: str) -> dict[str, Any]:
    """What a settings section shows, read through the same use cases as the API's listings."""
    async with who.uow(read_only=True) as uow:
        projects = await list_projects(uow, who.org_id)
        values = await _section(uow, who, section, projects)
    return {"section": section, "sections": SECTIONS, "projects": projects, **values}


async def _section(uow: UnitOfWork, who: Visitor, section: str, projects: list[Any]) -> dict[str, Any]:
    values: dict[str, Any] = {
        "priorities": PRIORITIES,
        "automation_trigger_choices": _choices(sorted(AUTOMATION_TRIGGERS)),
        "action_choices": _choices(FORM_ACTIONS),
        "state_choices": [("ENABLED", "enabled"), ("DISABLED", "disabled")],
        "status_choices": [("", "any status"), *_choices(("OPEN", "IN_PROGRESS", "CLOSED"))],
        "notification_trigger_choices": _choices(sorted(NOTIFICATION_TRIGGERS)),
        "recipient_choices": _choices(sorted(RECIPIENT_TYPES)),
        "recipient_member": RECIPIENT_MEMBER,
        "endpoint_kinds": ENDPOINT_KINDS,
        "endpoint_kind_choices": list(ENDPOINT_KINDS.items()),
    }
    if section == "people":
        people, _total, _filtered = await list_users(uow, who.org_id, page_of(0, 100))
        values["people"] = people
        values["accounts"] = await accounts.accounts_of_org(uow, who.org_id)
    elif section == "keys":
        values["keys"] = await keys.list_keys(uow, who.org_id)
    elif section == "case-types":
        values["case_types"] = await case_types.list_case_types(uow, who.org_id)
        values["attributes"] = await attributes.list_configs(uow, who.org_id)
        values["type_choices"] = [(t.id, t.name) for t in values["case_types"]]
        values["type_names"] = dict(values["type_choices"])
        values["attribute_type_choices"] = [(kind, kind.lower()) for kind in ATTRIBUTE_TYPES]
    elif section == "automation":
        values["per_project"] = [
            {
                "project": project,
                "rules": await automation_rules.list_rules(uow, who.org_id, project.id),
                "settings": await automation_rules.get_settings(uow, who.org_id, project.id),
            }
            for project in projects
        ]
    elif section == "notifications":
        values["per_project"] = [
            {"project": project, "rules": await notifications.list_rules(uow, who.org_id, project.id)}
            for project in projects
        ]
        values["endpoints"] = await notifications.list_endpoints(uow, who.org_id)
    elif section == "maintenance":
        values["windows"] = await windows.list_windows(uow, who.org_id)
    return values


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


Change = Callable[[UnitOfWork, dict[str, str]], Awaitable[Any]]


async def _submit(
    request: Request,
    who: Visitor,
    section: str,
    form_id: str,
    change: Change,
    fields: Fields,
    *,
    unplaced: str = "name",
    done: Callable[[Any], Mapping[str, Any]] | None = None,
) -> Response:
    """Run one change in its own unit of work; on refusal, the section again with the message at its field."""
    form = await _form(request)
    try:
        async with who.uow() as uow:
            result = await change(uow, form)
            await uow.commit()
    except FormRefused as exc:
        return await _refused(request, who, section, form, exc)
    except InvalidInput as exc:
        refused = FormRefused(form_id, field_of(exc.pointer, fields, unplaced), exc.detail)
        return await _refused(request, who, section, form, refused)
    except Conflict as exc:
        return await _refused(request, who, section, form, FormRefused(form_id, unplaced, exc.detail))
    if done is not None:
        return render(request, "settings.html", **done(result), **await page_values(who, section))
    return RedirectResponse(f"/settings/{section}", status_code=303)


async def _refused(request: Request, who: Visitor, section: str, form: dict[str, str], exc: FormRefused) -> Response:
    values = await page_values(who, section)
    errors = {f"{exc.form_id}-{exc.field}": exc.detail}
    return render(request, "settings.html", 400, errors=errors, submitted=form, submitted_form=exc.form_id, **values)


def _text(form: Mapping[str, str], name: str) -> str:
    return form.get(name, "").strip()


def _optional(form: Mapping[str, str], name: str) -> str | None:
    return _text(form, name) or None


def _options(form: Mapping[str, str]) -> list[str]:
    return [o.strip() for o in form.get("options", "").split(",") if o.strip()]


# -- case types --------------------------------------------------------------------------------------------


@router.post("/case-types")
async def create_case_type(request: Request, who: Visitor = Depends(visitor)) -> Response:
    async def change(uow: UnitOfWork, form: dict[str, str]) -> Any:
        return await case_types.create_case_type(
            uow,
            who.org_id,
            who.user_id,
            name=_text(form, "name"),
            description=_optional(form, "description"),
            emoji=_optional(form, "emoji"),
        )

    return await _submit(request, who, "case-types", "type-new", change, CASE_TYPE_FIELDS)


@router.post("/case-types/{type_id}")
async def update_case_type(type_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    async def change(uow: UnitOfWork, form: dict[str, str]) -> Any:
        wanted = {"name": _text(form, "name"), "description": _optional(form, "description")}
        wanted["emoji"] = _optional(form, "emoji")
        return await case_types.update_case_type(uow, who.org_id, who.user_id, type_id, wanted)

    return await _submit(request, who, "case-types", f"type-{type_id}", change, CASE_TYPE_FIELDS)


@router.post("/case-types/{type_id}/delete")
async def delete_case_type(type_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    async def change(uow: UnitOfWork, _form: dict[str, str]) -> None:
        await case_types.delete_case_type(uow, who.org_id, who.user_id, type_id)

    return await _submit(request, who, "case-types", f"type-{type_id}", change, CASE_TYPE_FIELDS)


# -- custom attributes ---------------------------------------------------------------------------------------


@router.post("/attributes")
async def create_attribute(request: Request, who: Visitor = Depends(visitor)) -> Response:
    async def change(uow: UnitOfWork, form: dict[str, str]) -> Any:
        return await attributes.create_config(
            uow,
            who.org_id,
            who.user_id,
            form.get("case_type_id", ""),
            key=_text(form, "key"),
            display_name=_text(form, "display_name"),
            type=form.get("type", ""),
            is_multi=form.get("is_multi") == "on",
            description=_optional(form, "description"),
            options=_options(form) or None,
        )

    return await _submit(request, who, "case-types", "attr-new", change, ATTRIBUTE_FIELDS, unplaced="key")


@router.post("/case-types/{type_id}/attributes/{config_id}")
async def update_attribute(type_id: str, config_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    async def change(uow: UnitOfWork, form: dict[str, str]) -> Any:
        wanted: dict[str, Any] = {
            "display_name": _text(form, "display_name"),
            "description": _optional(form, "description"),
        }
        options = _options(form)
        if options:
            wanted["type_data"] = {"options": [{"value": o} for o in options]}
        return await attributes.update_config(uow, who.org_id, who.user_id, type_id, config_id, wanted)

    return await _submit(
        request, who, "case-types", f"attr-{config_id}", change, ATTRIBUTE_FIELDS, unplaced="display_name"
    )


@router.post("/case-types/{type_id}/attributes/{config_id}/delete")
async def delete_attribute(type_id: str, config_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    async def change(uow: UnitOfWork, _form: dict[str, str]) -> None:
        await attributes.delete_config(uow, who.org_id, who.user_id, type_id, config_id)

    return await _submit(request, who, "case-types", f"attr-{config_id}", change, ATTRIBUTE_FIELDS)


# -- automation rules, SLA and reminders ---------------------------------------------------------------------


def _automation_attrs(form: Mapping[str, str]) -> dict[str, Any]:
    trigger_data = {
        key: value
        for key, value in (("field", _text(form, "trigger_field")), ("to_status_name", _text(form, "to_status")))
        if value
    }
    action = form.get("action", "")
    member = FORM_ACTIONS.get(action, "value")
    attrs: dict[str, Any] = {
        "name": _text(form, "name"),
        "trigger": {"type": form.get("trigger", ""), "data": trigger_data},
        "action": {"type": action, "data": {member: _text(form, "action_value")}},
    }
    if form.get("state"):
        attrs["state"] = form["state"]
    return attrs


@router.post("/projects/{project_id}/automation")
async def create_automation_rule(project_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    async def change(uow: UnitOfWork, form: dict[str, str]) -> Any:
        return await automation_rules.create_rule(uow, who.org_id, who.user_id, project_id, _automation_attrs(form))

    return await _submit(request, who, "automation", f"rule-new-{project_id}", change, AUTOMATION_FIELDS)


@router.post("/projects/{project_id}/automation/{rule_id}")
async def update_automation_rule(
    project_id: str, rule_id: str, request: Request, who: Visitor = Depends(visitor)
) -> Response:
    async def change(uow: UnitOfWork, form: dict[str, str]) -> Any:
        attrs = _automation_attrs(form)
        return await automation_rules.update_rule(uow, who.org_id, who.user_id, project_id, rule_id, attrs)

    return await _submit(request, who, "automation", f"rule-{rule_id}", change, AUTOMATION_FIELDS)


@router.post("/projects/{project_id}/automation/{rule_id}/delete")
async def delete_automation_rule(
    project_id: str, rule_id: str, request: Request, who: Visitor = Depends(visitor)
) -> Response:
    async def change(uow: UnitOfWork, _form: dict[str, str]) -> None:
        await automation_rules.delete_rule(uow, who.org_id, project_id, rule_id)

    return await _submit(request, who, "automation", f"rule-{rule_id}", change, AUTOMATION_FIELDS)


def _seconds(form_id: str, field: str, text: str) -> int | None:
    """A whole number typed in a form, or None when empty; the use case decides whether it is acceptable."""
    if not text.strip():
        return None
    try:
        return int(text.strip())
    except ValueError:
        raise FormRefused(form_id, field, f"enter a whole number of seconds (e.g. 3600), not {text!r}") from None


@router.post("/projects/{project_id}/sla")
async def put_sla(project_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    form_id = f"sla-{project_id}"

    async def change(uow: UnitOfWork, form: dict[str, str]) -> Any:
        targets: dict[str, dict[str, int | None]] = {}
        for priority in PRIORITIES:
            acknowledge = _seconds(form_id, f"{priority}-acknowledge", form.get(f"{priority}_acknowledge", ""))
            close = _seconds(form_id, f"{priority}-close", form.get(f"{priority}_close", ""))
            if acknowledge is not None or close is not None:  # both empty: no target for this priority
                targets[priority] = {"acknowledge_seconds": acknowledge, "close_seconds": close}
        return await automation_rules.put_sla(uow, who.org_id, who.user_id, project_id, targets)

    # The use case's pointer ends in /<priority>/<kind>_seconds: the field of that priority and kind.
    fields: Fields = tuple(
        (f"/data/attributes/targets/{p}/{kind}_seconds", f"{p}-{kind}")
        for p in PRIORITIES
        for kind in ("acknowledge", "close")
    )
    return await _submit(request, who, "automation", form_id, change, fields, unplaced="P1-acknowledge")


@router.post("/projects/{project_id}/reminders")
async def put_reminders(project_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    form_id = f"reminders-{project_id}"

    async def change(uow: UnitOfWork, form: dict[str, str]) -> Any:
        parts = [p for p in form.get("lead_times", "").replace(",", " ").split() if p]
        leads = [_seconds(form_id, "lead_times", p) for p in parts]
        return await automation_rules.put_reminders(uow, who.org_id, who.user_id, project_id, leads)

    return await _submit(request, who, "automation", form_id, change, (), unplaced="lead_times")


# -- notification rules and endpoints --------------------------------------------------------------------------


def _notification_attrs(form: Mapping[str, str]) -> dict[str, Any]:
    trigger_data = {"field": _text(form, "trigger_field")} if _text(form, "trigger_field") else {}
    kind = form.get("recipient_type", "")
    member = RECIPIENT_MEMBER.get(kind, "name")
    return {
        "triggers": [{"type": form.get("trigger", ""), "data": trigger_data}],
        "recipients": [{"type": kind, "data": {member: _text(form, "recipient")}}],
        "query": _text(form, "query"),
        "is_enabled": form.get("is_enabled") == "on",
    }


@router.post("/projects/{project_id}/notification-rules")
async def create_notification_rule(project_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    async def change(uow: UnitOfWork, form: dict[str, str]) -> Any:
        return await notifications.create_rule(uow, who.org_id, who.user_id, project_id, _notification_attrs(form))

    form_id = f"notify-new-{project_id}"
    return await _submit(request, who, "notifications", form_id, change, NOTIFICATION_FIELDS, unplaced="recipient")


@router.post("/projects/{project_id}/notification-rules/{rule_id}")
async def update_notification_rule(
    project_id: str, rule_id: str, request: Request, who: Visitor = Depends(visitor)
) -> Response:
    async def change(uow: UnitOfWork, form: dict[str, str]) -> Any:
        # The form shows a rule's first trigger and first recipient; a rule made through the API may have more,
        # and those are kept as they are rather than dropped by an edit that never showed them.
        current = await notifications.get_rule(uow, who.org_id, project_id, rule_id)
        attrs = _notification_attrs(form)
        attrs["triggers"] += current.triggers[1:]
        attrs["recipients"] += current.recipients[1:]
        return await notifications.update_rule(uow, who.org_id, project_id, rule_id, attrs)

    form_id = f"notify-{rule_id}"
    return await _submit(request, who, "notifications", form_id, change, NOTIFICATION_FIELDS, unplaced="recipient")


@router.post("/projects/{project_id}/notification-rules/{rule_id}/delete")
async def delete_notification_rule(
    project_id: str, rule_id: str, request: Request, who: Visitor = Depends(visitor)
) -> Response:
    async def change(uow: UnitOfWork, _form: dict[str, str]) -> None:
        await notifications.delete_rule(uow, who.org_id, project_id, rule_id)

    return await _submit(request, who, "notifications", f"notify-{rule_id}", change, NOTIFICATION_FIELDS)


@router.post("/endpoints")
async def create_endpoint(request: Request, who: Visitor = Depends(visitor)) -> Response:
    # As the API route does: the org's allow-list is read first, the URL is resolved and checked by the
    # outbound guard inside the use case, before its unit of work writes anything.
    async with who.uow(read_only=True) as uow:
        policy = await destination_policy(uow, who.context.outbound, who.org_id)

    async def change(uow: UnitOfWork, form: dict[str, str]) -> Any:
        kind = form.get("kind", "")
        if kind not in ENDPOINT_KINDS:  # the API's schema refuses other kinds before the use case
            raise FormRefused("endpoint-new", "kind", "choose a webhook or a Microsoft Teams connector")
        return await notifications.create_endpoint(
            uow,
            who.org_id,
            kind,
            form.get("name", ""),
            _text(form, "url"),
            _optional(form, "secret"),
            policy=policy,
            box=who.context.secret_box(),
        )

    return await _submit(
        request,
        who,
        "notifications",
        "endpoint-new",
        change,
        ENDPOINT_FIELDS,
        done=lambda created: {"issued_endpoint": created},  # a generated secret is shown once
    )


@router.post("/endpoints/{endpoint_id}/delete")
async def delete_endpoint(endpoint_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    async def change(uow: UnitOfWork, _form: dict[str, str]) -> None:
        await notifications.delete_endpoint(uow, who.org_id, endpoint_id)

    return await _submit(request, who, "notifications", f"endpoint-{endpoint_id}", change, ENDPOINT_FIELDS)


# -- maintenance windows -------------------------------------------------------------------------------------


def _instant(form_id: str, field: str, text: str) -> datetime:
    """A datetime-local value, read as UTC (the form says so)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FormRefused(form_id, field, "enter a date and time in UTC, e.g. 2026-12-01 22:00") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _window_values(form_id: str, form: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": form.get("name", ""),
        "query": form.get("query", ""),
        "start_at": _instant(form_id, "start_at", form.get("start_at", "")),
        "end_at": _instant(form_id, "end_at", form.get("end_at", "")),
    }


@router.post("/maintenance")
async def create_window(request: Request, who: Visitor = Depends(visitor)) -> Response:
    async def change(uow: UnitOfWork, form: dict[str, str]) -> Any:
        return await windows.create_window(uow, who.org_id, who.user_id, **_window_values("window-new", form))

    return await _submit(request, who, "maintenance", "window-new", change, WINDOW_FIELDS)


@router.post("/maintenance/{window_id}")
async def update_window(window_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    form_id = f"window-{window_id}"

    async def change(uow: UnitOfWork, form: dict[str, str]) -> Any:
        return await windows.update_window(uow, who.org_id, who.user_id, window_id, _window_values(form_id, form))

    return await _submit(request, who, "maintenance", form_id, change, WINDOW_FIELDS)


@router.post("/maintenance/{window_id}/delete")
async def delete_window(window_id: str, request: Request, who: Visitor = Depends(visitor)) -> Response:
    async def change(uow: UnitOfWork, _form: dict[str, str]) -> None:
        await windows.delete_window(uow, who.org_id, who.user_id, window_id)

    return await _submit(request, who, "maintenance", f"window-{window_id}", change, WINDOW_FIELDS)
