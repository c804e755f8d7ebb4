"""Fuzzing the HTTP API with schemathesis, from casem's own OpenAPI document, on SQLite and PostgreSQL.

Every operation of /api/openapi.json is called with generated path and query parameters and bodies by
an authenticated org; each answer must pass schemathesis's checks: no server error, a status code the
document lists for the operation, and a body that matches the document's schema for that status.
Bounded for CI: FUZZ_EXAMPLES examples per operation (CASEM_FUZZ_EXAMPLES), derandomized
so a failure reproduces with the same inputs; each failure found is kept as a regression test beside
the fix (tests/api/test_request_boundary.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.api.helpers import make_case, make_case_type, make_comment, make_custom_attribute, make_project
from tests.api.oncall_helpers import (
    make_schedule,
    make_team,
    on_call,
    page_request,
    paging,
    policy_request,
    step,
    target,
)
from tests.integrations.jira_server import JiraLoopback
from tests.integrations.servicenow_server import ServiceNowLoopback
from tests.support.api_client import OrgClient, new_org
from tests.support.integration_accounts import connect_jira, connect_servicenow, remote_systems
from tests.support.live_server import LiveServer

FUZZ_EXAMPLES = int(os.environ.get("CASEM_FUZZ_EXAMPLES", "8"))
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Checks left out for an operation (by its label, "METHOD /path"), each with its reason.
EXCLUDED_CHECKS: dict[str, tuple[frozenset, str]] = {
    "POST /api/v2/cases/{case_id}/relationships/notebook": (
        frozenset({not_a_server_error}),
        "answers 501 Not Implemented by design (casem has no Notebooks product), as its document says",
    ),
}


@pytest.fixture(scope="session")
def fuzz_org(server: LiveServer) -> Iterator[OrgClient]:
    org = new_org(server, "fuzz")
    yield org
    org.api_client.close()
    org.http.close()


@pytest.fixture
def remotes(server: LiveServer) -> Iterator[tuple[JiraLoopback, ServiceNowLoopback]]:
    """A loopback Jira and ServiceNow the fuzzing org's integrations reach, so their answers are real ones."""
    state = server.app.state
    had_integrations = getattr(state, "integrations", None)
    jira, snow = JiraLoopback().start(), ServiceNowLoopback().start()
    state.integrations = remote_systems(jira)
    yield jira, snow
    state.integrations = had_integrations
    jira.stop()
    snow.stop()


def integration_resources(org: OrgClient, jira: JiraLoopback, snow: ServiceNowLoopback) -> dict[str, str]:
    """A Jira account with an issue template and a ServiceNow instance with a template, of the fuzzing org."""
    account = connect_jira(org, jira)["data"]["id"]
    instance = connect_servicenow(org, snow)["data"]["id"]
    template = org.http.post(
        "/api/v2/integration/jira/issue-templates",
        json={
            "data": {
                "type": "jira-issue-template",
                "attributes": {"name": "t", "project_id": "1", "issue_type_id": "1", "jira-account": {"id": account}},
            }
        },
    )
    handle = org.http.post(
        "/api/v2/integration/servicenow/handles",
        json={
            "data": {
                "type": "servicenow_templates",
                "attributes": {"handle_name": "fuzz", "instance_id": instance, "servicenow_tablename": "incident"},
            }
        },
    )
    return {
        "account_id": account,
        "instance_id": instance,
        "issue_template_id": template.raise_for_status().json()["data"]["id"],
        "template_id": handle.raise_for_status().json()["data"]["id"],
    }


def existing_resources(org: OrgClient) -> dict[str, str]:
    """Resources of the fuzzing org (a project, a case, a comment, a case type and its custom attribute, a team,
    a schedule, an escalation policy, a page, a case view, an automation rule, a maintenance window, an
    attachment, an API key, a personal access token, the org's user), by the path parameter that names each:
    half the generated calls use them, so answers about real resources are checked against the document's
    schemas too (generated ids alone only ever find 404s). Deletes never get them, so the org's user stays enabled."""
    project = make_project(org)
    case = make_case(org, project.id)
    cell = make_comment(org, case.id)
    case_type = make_case_type(org, name="Fuzzed")
    attribute = make_custom_attribute(org, case_type.id, "fuzzed")
    team = make_team(org, "fuzzers", [org.user_id])
    start = datetime.now(UTC) - timedelta(days=1)
    schedule = make_schedule(org, "Fuzzed rota", [org.user_id], start, team_ids=[team]).data
    policy = (
        on_call(org)
        .create_on_call_escalation_policy(
            body=policy_request(
                "Fuzzed policy", [step([target("users", org.user_id), target("schedules", schedule.id)])]
            )
        )
        .data
    )
    page = paging(org).create_on_call_page(body=page_request("Fuzzed page", "user_id", org.user_id)).data
    view = org.http.post(
        "/api/v2/cases/views",
        json={
            "data": {"type": "view", "attributes": {"name": "fuzzed", "project_id": project.id, "query": "status:open"}}
        },
    )
    rule = org.http.post(
        f"/api/v2/cases/projects/{project.id}/rules",
        json={
            "data": {
                "type": "rule",
                "attributes": {
                    "name": "fuzzed",
                    "trigger": {"type": "CASE_CREATED"},
                    "action": {"type": "EXECUTE_WORKFLOW", "data": {"handle": "fuzzed"}},
                },
            }
        },
    )
    window = org.http.post(
        "/api/v2/maintenance_windows",
        json={
            "data": {
                "type": "maintenance_window",
                "attributes": {
                    "name": "fuzzed",
                    "query": "project:fuzz",
                    "start_at": start.isoformat(),
                    "end_at": (start + timedelta(days=2)).isoformat(),
                },
            }
        },
    )
    attachment = org.http.post(
        f"/api/v2/cases/{case.id}/attachments", files={"file": ("fuzzed.txt", b"fuzzed", "text/plain")}
    )
    api_key = org.http.post("/api/v2/api_keys", json={"data": {"type": "api_keys", "attributes": {"name": "fuzz"}}})
    expires_at = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    paging_rule = {"data": {"type": "paging_rule", "attributes": {"team_id": team, "query": "priority:P1"}}}
    org.http.put(f"/api/v2/casem/projects/{project.id}/paging", json=paging_rule).raise_for_status()
    token = org.http.post(
        "/api/v2/personal_access_tokens",
        json={"data": {"type": "personal_access_tokens", "attributes": {"name": "fuzz", "expires_at": expires_at}}},
    )
    return {
        "project_id": project.id,
        "case_id": case.id,
        "cell_id": cell.id,
        "case_type_id": case_type.id,
        "custom_attribute_id": attribute.id,
        "team_id": team,
        "schedule_id": schedule.id,
        "policy_id": policy.id,
        "page_id": str(page.id),
        "view_id": view.raise_for_status().json()["data"]["id"],
        "rule_id": rule.raise_for_status().json()["data"]["id"],
        "maintenance_window_id": window.raise_for_status().json()["data"]["id"],
        "attachment_id": attachment.raise_for_status().json()["data"]["id"],
        "user_id": org.user_id,
        "user_uuid": org.user_id,
        "api_key_id": api_key.raise_for_status().json()["data"]["id"],
        "token_id": token.raise_for_status().json()["data"]["id"],
    }


def checks_of(case: schemathesis.Case) -> list:
    excluded, _reason = EXCLUDED_CHECKS.get(case.operation.label, (frozenset(), ""))
    return [check for check in CHECKS if check not in excluded]


def test_every_answer_conforms_to_the_document(
    fuzz_org: OrgClient, server: LiveServer, remotes: tuple[JiraLoopback, ServiceNowLoopback]
) -> None:
    api = schemathesis.openapi.from_url(server.url + "/api/openapi.json")
    headers = {"DD-API-KEY": fuzz_org.creds.api_key, "DD-APPLICATION-KEY": fuzz_org.creds.app_key}
    existing = existing_resources(fuzz_org) | integration_resources(fuzz_org, *remotes)
    failures: list[str] = []
    operations = 0
    for result in api.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy(), use_existing=st.booleans())
        @settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
        def call(case: schemathesis.Case, use_existing: bool) -> None:
            if use_existing and case.method != "DELETE" and case.path_parameters:  # deletes keep them for others
                case.path_parameters.update({k: v for k, v in existing.items() if k in case.path_parameters})
            response = case.call(base_url=server.url, headers=headers)
            try:
                case.validate_response(response, checks=checks_of(case), headers=headers)
            except (AssertionError, FailureGroup) as exc:  # one failure, or several grouped for one answer
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query!r} -> {response.status_code}: {str(exc)[:600]}"
                )
                raise

        # Recorded above, with the smallest input Hypothesis found; go on to the next operation.
        with contextlib.suppress(AssertionError, FailureGroup):
            call()
    assert operations > 50, f"only {operations} operations in the OpenAPI document"
    labels = {result.ok().label for result in api.get_all_operations()}
    assert set(EXCLUDED_CHECKS) <= labels, (
        f"exclusions for operations not in the document: {set(EXCLUDED_CHECKS) - labels}"
    )
    assert not failures, "\n\n".join(dict.fromkeys(failures))
