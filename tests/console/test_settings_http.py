"""The settings forms over plain HTTP: each kind created, edited and deleted through the use cases the API runs
(the public API then reports the change), refusals shown next to their field, names rendered as text, and
every settings route with an id answering another org's id with the same 404 as a missing one."""

from __future__ import annotations

import html
import re
import uuid
from dataclasses import dataclass

import httpx
import pytest
from starlette.routing import Route

from tests.console.server import ConsoleServer, World
from tests.console.test_http import XSS, csrf_of, sign_in
from tests.support.live_server import LiveServer

MISSING = "00000000-0000-4000-8000-000000000000"


@dataclass
class Signed:
    world: World
    client: httpx.Client
    token: str

    def post(self, path: str, data: dict[str, str] | None = None) -> httpx.Response:
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})})

    def page(self, section: str) -> str:
        answer = self.client.get(f"/settings/{section}")
        assert answer.status_code == 200, answer.text
        return answer.text


def signed_in(console: ConsoleServer) -> Signed:
    world = console.new_world()
    client = sign_in(console, world.person.email)
    return Signed(world, client, csrf_of(client, "/settings/case-types"))


def api(case_api: LiveServer, world: World, path: str) -> list[dict]:
    headers = {"DD-API-KEY": world.creds.api_key, "DD-APPLICATION-KEY": world.creds.app_key}
    answer = httpx.get(f"{case_api.url}{path}", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    data = answer.json()["data"]
    return data if isinstance(data, list) else [data]


def row_id(page: str, attribute: str, name: str) -> str:
    """The id of the table row whose text holds `name` (rows carry data-<kind>-id)."""
    for found in re.finditer(rf'<tr {attribute}="([^"]+)">(.*?)</tr>', page, re.S):
        if name in found.group(2):
            return found.group(1)
    raise AssertionError(f"no row with {name!r}")


def field_error(page: str, field_id: str) -> str:
    found = re.search(rf'<p class="field-error" id="{re.escape(field_id)}-error" role="alert">([^<]*)</p>', page)
    assert found, f"no message at {field_id}"
    assert f'id="{field_id}"' in page and f'aria-describedby="{field_id}-error"' in page
    return html.unescape(found.group(1))


def test_case_types_and_attributes_created_edited_deleted(console: ConsoleServer, case_api: LiveServer) -> None:
    me = signed_in(console)
    assert me.post("/settings/case-types", {"name": "Security", "emoji": "🔒"}).status_code == 303
    type_id = row_id(me.page("case-types"), "data-type-id", "Security")
    assert me.post(f"/settings/case-types/{type_id}", {"name": "Security incident", "emoji": "🔒"}).status_code == 303
    [listed] = [t for t in api(case_api, me.world, "/api/v2/cases/types") if t["id"] == type_id]
    assert listed["attributes"]["name"] == "Security incident"

    created = me.post(
        "/settings/attributes",
        {"case_type_id": type_id, "key": "impact", "display_name": "Impact", "type": "SELECT", "options": "low, high"},
    )
    assert created.status_code == 303, created.text
    config_id = row_id(me.page("case-types"), "data-attribute-id", "Impact")
    edited = me.post(
        f"/settings/case-types/{type_id}/attributes/{config_id}",
        {"display_name": "Business impact", "options": "low, medium, high"},
    )
    assert edited.status_code == 303, edited.text
    [config] = api(case_api, me.world, f"/api/v2/cases/types/{type_id}/custom_attributes")
    assert config["attributes"]["display_name"] == "Business impact"
    assert [o["value"] for o in config["attributes"]["type_data"]["options"]] == ["low", "medium", "high"]
    # The same key again: the use case's conflict, next to the key field.
    again = me.post(
        "/settings/attributes", {"case_type_id": type_id, "key": "impact", "display_name": "X", "type": "TEXT"}
    )
    assert again.status_code == 400
    assert "already has a custom attribute with key 'impact'" in field_error(again.text, "attr-new-key")
    assert me.post(f"/settings/case-types/{type_id}/attributes/{config_id}/delete").status_code == 303
    assert api(case_api, me.world, f"/api/v2/cases/types/{type_id}/custom_attributes") == []

    assert me.post(f"/settings/case-types/{type_id}/delete").status_code == 303
    assert type_id not in [t["id"] for t in api(case_api, me.world, "/api/v2/cases/types")]
    # Refusals come back at their field, with the value typed kept in it.
    refused = me.post("/settings/case-types", {"name": "Ops", "emoji": "not an emoji"})
    assert refused.status_code == 400
    assert "emoji" in field_error(refused.text, "type-new-emoji")
    assert 'value="not an emoji"' in refused.text and 'value="Ops"' in refused.text
    nameless = me.post("/settings/case-types", {"name": " "})
    assert field_error(nameless.text, "type-new-name")


def test_automation_rules_sla_and_reminders(console: ConsoleServer, case_api: LiveServer) -> None:
    me = signed_in(console)
    project = me.world.project_id
    base = f"/settings/projects/{project}/automation"
    rule = {"name": "Triage P1", "trigger": "CASE_CREATED", "action": "SET_PRIORITY", "action_value": "P1"}
    assert me.post(base, {**rule, "state": "ENABLED"}).status_code == 303
    rule_id = row_id(me.page("automation"), "data-rule-id", "Triage P1")
    changed = {**rule, "name": "Comment on close", "trigger": "STATUS_TRANSITIONED", "to_status": "CLOSED"}
    changed |= {"action": "ADD_COMMENT", "action_value": "Closed, thanks", "state": "DISABLED"}
    assert me.post(f"{base}/{rule_id}", changed).status_code == 303
    [stored] = api(case_api, me.world, f"/api/v2/cases/projects/{project}/rules")
    assert stored["attributes"]["name"] == "Comment on close" and stored["attributes"]["state"] == "DISABLED"
    assert stored["attributes"]["trigger"] == {"type": "STATUS_TRANSITIONED", "data": {"to_status_name": "CLOSED"}}
    assert stored["attributes"]["action"]["data"] == {"comment": "Closed, thanks"}
    bad = me.post(base, {**rule, "action_value": "P9"})
    assert bad.status_code == 400
    assert "priority must be one of" in field_error(bad.text, f"rule-new-{project}-action_value")
    assert me.post(f"{base}/{rule_id}/delete").status_code == 303
    assert api(case_api, me.world, f"/api/v2/cases/projects/{project}/rules") == []

    sla = f"/settings/projects/{project}/sla"
    assert me.post(sla, {"P1_acknowledge": "600", "P1_close": "86400"}).status_code == 303
    [policy] = api(case_api, me.world, f"/api/v2/casem/projects/{project}/sla")
    assert policy["attributes"]["targets"] == {"P1": {"acknowledge_seconds": 600, "close_seconds": 86400}}
    assert me.post(sla, {"P1_acknowledge": "300", "P2_close": "7200"}).status_code == 303
    [policy] = api(case_api, me.world, f"/api/v2/casem/projects/{project}/sla")
    assert policy["attributes"]["targets"]["P1"] == {"acknowledge_seconds": 300, "close_seconds": None}
    assert policy["attributes"]["targets"]["P2"] == {"acknowledge_seconds": None, "close_seconds": 7200}
    word = me.post(sla, {"P3_close": "soon"})
    assert "whole number of seconds" in field_error(word.text, f"sla-{project}-P3-close")
    zero = me.post(sla, {"P2_acknowledge": "0"})
    assert "from 1 to" in field_error(zero.text, f"sla-{project}-P2-acknowledge")
    assert me.post(sla, {}).status_code == 303  # every field empty: the targets are gone
    [policy] = api(case_api, me.world, f"/api/v2/casem/projects/{project}/sla")
    assert policy["attributes"]["targets"] == {}

    reminders = f"/settings/projects/{project}/reminders"
    assert me.post(reminders, {"lead_times": "3600, 0, 86400"}).status_code == 303
    [lead] = api(case_api, me.world, f"/api/v2/casem/projects/{project}/reminders")
    assert lead["attributes"]["lead_times_seconds"] == [86400, 3600, 0]
    hours = me.post(reminders, {"lead_times": "1h"})
    assert "whole number" in field_error(hours.text, f"reminders-{project}-lead_times")
    assert me.post(reminders, {"lead_times": ""}).status_code == 303
    [lead] = api(case_api, me.world, f"/api/v2/casem/projects/{project}/reminders")
    assert lead["attributes"]["lead_times_seconds"] == []


def test_notification_rules_and_guarded_endpoints(console: ConsoleServer, case_api: LiveServer) -> None:
    me = signed_in(console)
    project = me.world.project_id
    base = f"/settings/projects/{project}/notification-rules"
    rule = {"trigger": "CASE_CREATED", "recipient_type": "EMAIL", "recipient": "oncall@example.com"}
    assert me.post(base, {**rule, "query": "priority:P1", "is_enabled": "on"}).status_code == 303
    rule_id = row_id(me.page("notifications"), "data-rule-id", "oncall@example.com")
    edited = me.post(f"{base}/{rule_id}", {**rule, "recipient": "sre@example.com", "query": ""})
    assert edited.status_code == 303, edited.text
    [stored] = api(case_api, me.world, f"/api/v2/cases/projects/{project}/notification_rules")
    assert stored["attributes"]["recipients"] == [{"type": "EMAIL", "data": {"email": "sre@example.com"}}]
    assert stored["attributes"]["is_enabled"] is False and stored["attributes"]["query"] == ""
    bad_query = me.post(base, {**rule, "query": "status:(open"})
    assert bad_query.status_code == 400 and field_error(bad_query.text, f"notify-new-{project}-query")
    bad_mail = me.post(base, {**rule, "recipient": "not an address"})
    assert "valid data.email" in field_error(bad_mail.text, f"notify-new-{project}-recipient")
    assert me.post(f"{base}/{rule_id}/delete").status_code == 303
    assert api(case_api, me.world, f"/api/v2/cases/projects/{project}/notification_rules") == []

    endpoint = {"kind": "HTTP", "name": "ops hook", "url": "https://hooks.example.com/casem"}
    created = me.post("/settings/endpoints", endpoint)
    assert created.status_code == 200, created.text
    assert re.search(r'<p class="secret">[0-9a-f]{64}</p>', created.text)  # generated, shown once
    assert "hooks.example.com/casem" in me.page("notifications")
    # The outbound guard: a private, a loopback and a rebinding address are refused at the URL field.
    for url in ("https://internal.example.com/x", "http://127.0.0.1:8080/x", "https://rebind.example.com/x"):
        refused = me.post("/settings/endpoints", {**endpoint, "name": "sneaky", "url": url})
        assert refused.status_code == 400, url
        assert field_error(refused.text, "endpoint-new-url").startswith("url is refused: ")
    taken = me.post("/settings/endpoints", endpoint)
    assert "already exists" in field_error(taken.text, "endpoint-new-name")
    [listed] = api(case_api, me.world, "/api/v2/casem/notification_endpoints")
    assert me.post(f"/settings/endpoints/{listed['id']}/delete").status_code == 303
    assert api(case_api, me.world, "/api/v2/casem/notification_endpoints") == []


def test_editing_a_rule_keeps_what_the_form_does_not_show(console: ConsoleServer, case_api: LiveServer) -> None:
    """A rule made through the API with two triggers and two recipients: the form edits the first of each and
    the page says so; the second ones survive the edit instead of being dropped."""
    me = signed_in(console)
    project = me.world.project_id
    attributes = {
        "triggers": [{"type": "CASE_CREATED"}, {"type": "COMMENT_ADDED"}],
        "recipients": [
            {"type": "EMAIL", "data": {"email": "first@example.com"}},
            {"type": "EMAIL", "data": {"email": "second@example.com"}},
        ],
    }
    headers = {"DD-API-KEY": me.world.creds.api_key, "DD-APPLICATION-KEY": me.world.creds.app_key}
    made = httpx.post(
        f"{case_api.url}/api/v2/cases/projects/{project}/notification_rules",
        headers=headers,
        json={"data": {"type": "notification_rule", "attributes": attributes}},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    rule_id = made.json()["data"]["id"]
    assert "This rule has 2 more trigger(s) or recipient(s)" in me.page("notifications")
    edited = me.post(
        f"/settings/projects/{project}/notification-rules/{rule_id}",
        {"trigger": "CASE_CREATED", "recipient_type": "EMAIL", "recipient": "changed@example.com", "is_enabled": "on"},
    )
    assert edited.status_code == 303, edited.text
    [stored] = api(case_api, me.world, f"/api/v2/cases/projects/{project}/notification_rules")
    assert [t["type"] for t in stored["attributes"]["triggers"]] == ["CASE_CREATED", "COMMENT_ADDED"]
    assert [r["data"]["email"] for r in stored["attributes"]["recipients"]] == [
        "changed@example.com",
        "second@example.com",
    ]


def test_maintenance_windows(console: ConsoleServer, case_api: LiveServer) -> None:
    me = signed_in(console)
    window = {"name": "DB upgrade", "query": "service:db", "start_at": "2030-01-01T22:00", "end_at": "2030-01-02T02:00"}
    assert me.post("/settings/maintenance", window).status_code == 303
    window_id = row_id(me.page("maintenance"), "data-window-id", "DB upgrade")
    moved = {**window, "name": "DB upgrade (moved)", "end_at": "2030-01-02T04:30"}
    assert me.post(f"/settings/maintenance/{window_id}", moved).status_code == 303
    [stored] = api(case_api, me.world, "/api/v2/maintenance_windows")
    assert stored["attributes"]["name"] == "DB upgrade (moved)"
    assert stored["attributes"]["end_at"].startswith("2030-01-02T04:30")
    backwards = me.post("/settings/maintenance", {**window, "end_at": "2029-12-31T00:00"})
    assert "must be after start_at" in field_error(backwards.text, "window-new-end_at")
    garbled = me.post(f"/settings/maintenance/{window_id}", {**window, "start_at": "tomorrow"})
    assert "enter a date and time" in field_error(garbled.text, f"window-{window_id}-start_at")
    assert '<details class="edit" open><summary>Edit DB upgrade (moved)' in garbled.text
    assert me.post(f"/settings/maintenance/{window_id}/delete").status_code == 303
    assert api(case_api, me.world, "/api/v2/maintenance_windows") == []


def test_names_render_as_text(console: ConsoleServer) -> None:
    me = signed_in(console)
    project = me.world.project_id
    assert me.post("/settings/case-types", {"name": f"T {XSS}"}).status_code == 303
    type_id = row_id(me.page("case-types"), "data-type-id", "T &lt;script&gt;")
    attribute = {"case_type_id": type_id, "key": "x", "display_name": f"A {XSS}", "type": "TEXT", "description": XSS}
    assert me.post("/settings/attributes", attribute).status_code == 303
    rule = {"name": f"R {XSS}", "trigger": "CASE_CREATED", "action": "ADD_COMMENT", "action_value": XSS}
    assert me.post(f"/settings/projects/{project}/automation", rule).status_code == 303
    notify = {"trigger": "CASE_CREATED", "recipient_type": "SLACK_CHANNEL", "recipient": f"#c {XSS}"}
    assert me.post(f"/settings/projects/{project}/notification-rules", notify).status_code == 303
    endpoint = {"kind": "HTTP", "name": f"E {XSS}", "url": "https://hooks.example.com/x?a=<b>"}
    assert me.post("/settings/endpoints", endpoint).status_code == 200
    window = {"name": f"W {XSS}", "query": "service:db", "start_at": "2030-01-01T00:00", "end_at": "2030-01-01T01:00"}
    assert me.post("/settings/maintenance", window).status_code == 303
    escaped = html.escape(XSS, quote=False)
    for section, name in (
        ("case-types", "T "),
        ("case-types", "A "),
        ("automation", "R "),
        ("notifications", "#c "),
        ("notifications", "E "),
        ("maintenance", "W "),
    ):
        text = me.page(section)
        assert "<script>alert(1)" not in text and "<img src=x" not in text, section
        assert html.escape(name, quote=False) + escaped in text.replace("&#34;", '"').replace("&#39;", "'"), name
    # A refused value comes back escaped in its field too.
    refused = me.post("/settings/case-types", {"name": "", "description": '"><script>alert(9)</script>'})
    assert refused.status_code == 400 and "<script>alert(9)" not in refused.text


# -- org scoping: every settings route with an id ---------------------------------------------------------------


@dataclass
class Theirs:
    project_id: str
    type_id: str
    config_id: str
    automation_id: str
    notification_id: str
    endpoint_id: str
    window_id: str


@pytest.fixture(scope="module")
def their(console: ConsoleServer) -> tuple[Signed, Theirs]:
    """Another org with one of each kind (module-wide: no probe changes anything of theirs)."""
    them = signed_in(console)
    project = them.world.project_id
    them.post("/settings/case-types", {"name": "Their type"})
    type_id = row_id(them.page("case-types"), "data-type-id", "Their type")
    them.post("/settings/attributes", {"case_type_id": type_id, "key": "k", "display_name": "Theirs", "type": "TEXT"})
    rule = {"name": "Their rule", "trigger": "CASE_CREATED", "action": "SET_PRIORITY", "action_value": "P1"}
    them.post(f"/settings/projects/{project}/automation", rule)
    notify = {"trigger": "CASE_CREATED", "recipient_type": "EMAIL", "recipient": "their@example.com"}
    them.post(f"/settings/projects/{project}/notification-rules", notify)
    them.post("/settings/endpoints", {"kind": "HTTP", "name": "Their hook", "url": "https://hooks.example.com/t"})
    window = {"name": "Their window", "query": "a:b", "start_at": "2030-01-01T00:00", "end_at": "2030-01-01T01:00"}
    them.post("/settings/maintenance", window)
    return them, Theirs(
        project_id=project,
        type_id=type_id,
        config_id=row_id(them.page("case-types"), "data-attribute-id", "Theirs"),
        automation_id=row_id(them.page("automation"), "data-rule-id", "Their rule"),
        notification_id=row_id(them.page("notifications"), "data-rule-id", "their@example.com"),
        endpoint_id=row_id(them.page("notifications"), "data-endpoint-id", "Their hook"),
        window_id=row_id(them.page("maintenance"), "data-window-id", "Their window"),
    )


# Each settings route with a path parameter: the path with another org's ids, and a body that would pass.
PROBES: dict[str, tuple[str, dict[str, str]]] = {
    "/settings/people/{user_id}/password": ("/settings/people/{user}/password", {"password": "long enough pass 1"}),
    "/settings/keys/{key_id}/revoke": ("/settings/keys/{key}/revoke", {}),
    "/settings/case-types/{type_id}": ("/settings/case-types/{type_id}", {"name": "mine now"}),
    "/settings/case-types/{type_id}/delete": ("/settings/case-types/{type_id}/delete", {}),
    "/settings/case-types/{type_id}/attributes/{config_id}": (
        "/settings/case-types/{type_id}/attributes/{config_id}",
        {"display_name": "mine now"},
    ),
    "/settings/case-types/{type_id}/attributes/{config_id}/delete": (
        "/settings/case-types/{type_id}/attributes/{config_id}/delete",
        {},
    ),
    "/settings/projects/{project_id}/automation": (
        "/settings/projects/{project_id}/automation",
        {"name": "x", "trigger": "CASE_CREATED", "action": "SET_PRIORITY", "action_value": "P2"},
    ),
    "/settings/projects/{project_id}/automation/{rule_id}": (
        "/settings/projects/{project_id}/automation/{automation_id}",
        {"name": "x", "trigger": "CASE_CREATED", "action": "SET_PRIORITY", "action_value": "P2"},
    ),
    "/settings/projects/{project_id}/automation/{rule_id}/delete": (
        "/settings/projects/{project_id}/automation/{automation_id}/delete",
        {},
    ),
    "/settings/projects/{project_id}/sla": ("/settings/projects/{project_id}/sla", {"P1_acknowledge": "60"}),
    "/settings/projects/{project_id}/reminders": ("/settings/projects/{project_id}/reminders", {"lead_times": "60"}),
    "/settings/projects/{project_id}/notification-rules": (
        "/settings/projects/{project_id}/notification-rules",
        {"trigger": "CASE_CREATED", "recipient_type": "EMAIL", "recipient": "me@example.com"},
    ),
    "/settings/projects/{project_id}/notification-rules/{rule_id}": (
        "/settings/projects/{project_id}/notification-rules/{notification_id}",
        {"trigger": "CASE_CREATED", "recipient_type": "EMAIL", "recipient": "me@example.com"},
    ),
    "/settings/projects/{project_id}/notification-rules/{rule_id}/delete": (
        "/settings/projects/{project_id}/notification-rules/{notification_id}/delete",
        {},
    ),
    "/settings/endpoints/{endpoint_id}/delete": ("/settings/endpoints/{endpoint_id}/delete", {}),
    "/settings/maintenance/{window_id}": (
        "/settings/maintenance/{window_id}",
        {"name": "x", "query": "a:b", "start_at": "2030-01-01T00:00", "end_at": "2030-01-01T02:00"},
    ),
    "/settings/maintenance/{window_id}/delete": ("/settings/maintenance/{window_id}/delete", {}),
}
# Routes whose path parameter is not an org's record (the section name of a page).
NOT_RECORDS = {"/settings/{section}"}


def test_every_settings_route_with_an_id_is_probed() -> None:
    from casem.services.case_console.views import configuration, settings

    # The settings routers' own route lists (their paths carry the /settings prefix).
    routes = {r.path for module in (settings, configuration) for r in module.router.routes if isinstance(r, Route)}
    with_ids = {p for p in routes if "{" in p} - NOT_RECORDS
    assert not with_ids - set(PROBES), f"settings routes with no isolation probe: {sorted(with_ids - set(PROBES))}"
    assert not set(PROBES) - with_ids, f"probes of routes that no longer exist: {sorted(set(PROBES) - with_ids)}"


@pytest.mark.parametrize("route", sorted(PROBES))
def test_another_orgs_settings_are_the_same_404_as_missing_ones(
    console: ConsoleServer, their: tuple[Signed, Theirs], route: str
) -> None:
    them, theirs = their
    me = signed_in(console)
    template, body = PROBES[route]
    ids = dict(vars(theirs)) | {"user": them.world.creds.user_id, "key": _their_key(them)}
    path = template.format(**ids)
    answer = me.post(path, body)
    assert answer.status_code == 404, (path, answer.status_code, answer.text[:500])
    # A made-up id in the same place: the very same page, bar the id itself.
    used = [v for v in ids.values() if v in path]
    missing_path = path
    for value in used:
        missing_path = missing_path.replace(value, MISSING)
    gone = me.post(missing_path, body)
    assert gone.status_code == 404
    normalized = answer.text
    for value in used:
        normalized = normalized.replace(value, MISSING)
    assert normalized == gone.text
    # Nothing of theirs changed, and none of it shows on my pages.
    for section, marker in (
        ("case-types", "Their type"),
        ("case-types", "Theirs"),
        ("automation", "Their rule"),
        ("notifications", "their@example.com"),
        ("notifications", "Their hook"),
        ("maintenance", "Their window"),
    ):
        assert marker in them.page(section)
        assert marker not in me.page(section)


def _their_key(them: Signed) -> str:
    them.post("/settings/keys", {"kind": "api", "name": f"k-{uuid.uuid4().hex[:6]}"})
    found = re.search(r'action="/settings/keys/([^/"]+)/revoke"', them.page("keys"))
    assert found
    return found.group(1)


CREATES = {
    "/settings/case-types": {"name": "Forged type"},
    "/settings/attributes": {"key": "forged", "display_name": "Forged", "type": "TEXT"},
    "/settings/endpoints": {"kind": "HTTP", "name": "Forged hook", "url": "https://hooks.example.com/f"},
    "/settings/maintenance": {
        "name": "Forged",
        "query": "a:b",
        "start_at": "2030-01-01T00:00",
        "end_at": "2030-01-01T01:00",
    },
}


def test_settings_forms_without_their_token_are_refused(console: ConsoleServer) -> None:
    me = signed_in(console)
    project = me.world.project_id
    forms = dict(CREATES)
    forms[f"/settings/projects/{project}/automation"] = {
        "name": "Forged rule",
        "trigger": "CASE_CREATED",
        "action": "SET_PRIORITY",
        "action_value": "P1",
    }
    forms[f"/settings/projects/{project}/sla"] = {"P1_acknowledge": "60"}
    for path, body in forms.items():
        assert me.client.post(path, data=body).status_code == 403, path  # no token
        assert me.client.post(path, data={**body, "csrf_token": "x" * 43}).status_code == 403, path
        cross = me.client.post(path, data={**body, "csrf_token": me.token}, headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403, path
    for section in ("case-types", "automation", "notifications", "maintenance"):
        assert "Forged" not in me.page(section)
    assert 'value="60"' not in me.page("automation")
