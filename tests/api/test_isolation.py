"""Tenant isolation across every route: one org's keys never reach another org's data.

Org A builds a world (project, custom case type and attribute, case with a comment and a watcher, team).
Org B then probes every route with A's identifiers and must get a 404 that names them, indistinguishable
from an id that does not exist, while A's outbox does not move. GET routes without path parameters are
swept for A's data. Every route of the app must be covered, so a new endpoint fails `test_matrix_is_complete`
until it gets a probe here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from casem.adapters.blobs import open_blob_store
from casem.adapters.storage.tables import notifications
from casem.adapters.workflows.contracts import MergeRequest
from casem.app.merges.service import insert_merge
from casem.topology.tenants import CASE_MANAGEMENT
from tests.api.helpers import outbox
from tests.api.oncall_helpers import oncall_outbox
from tests.integrations.jira_server import JiraLoopback
from tests.integrations.servicenow_server import ServiceNowLoopback
from tests.support.api_client import OrgClient, new_org, unique_key
from tests.support.integration_accounts import connect_jira, connect_servicenow, remote_systems
from tests.support.live_server import LiveServer

MARKER = f"orgA-secret-{uuid.uuid4().hex[:8]}"  # in A's titles and names: must never appear in B's answers


@dataclass(frozen=True)
class Probe:
    """One request by org B. Path parameters come from A's world unless `own` names B's own resources."""

    method: str
    route: str
    body: dict[str, Any] | None = None
    query: str = ""
    own: tuple[str, ...] = ()  # path parameters filled from B's world (the rest, and the body, name A's ids)
    upload: bool = False  # a multipart file upload instead of a JSON body
    ids: tuple[tuple[str, str], ...] = ()  # path parameters filled from another of A's ids: (parameter, key of A's)

    @property
    def label(self) -> str:
        mixed = f" (B's {', '.join(self.own)})" if self.own else ""
        return f"{self.method} {self.route}{'?' + self.query if self.query else ''}{mixed}"


def case_body(attributes: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"type": "case", "attributes": attributes}}


RULE = {
    "name": "r",
    "trigger": {"type": "CASE_CREATED"},
    "action": {"type": "EXECUTE_WORKFLOW", "data": {"handle": "h"}},
}

# Bodies are valid, so B's 404 can only come from the lookup of A's ids. {name} in a body is A's resource.
NOTIFICATION_RULE = {
    "triggers": [{"type": "CASE_CREATED"}],
    "recipients": [{"type": "EMAIL", "data": {"email": "oncall@example.com"}}],
}

MERGE = {"data": {"type": "merge", "relationships": {"duplicates": {"data": [{"id": "{case_id}", "type": "case"}]}}}}

VIEW = {"data": {"type": "view", "attributes": {"name": "v", "project_id": "{project_id}", "query": "status:open"}}}
LINK = {
    "data": {
        "type": "link",
        "attributes": {
            "parent_entity_type": "CASE",
            "parent_entity_id": "{case_id}",
            "child_entity_type": "INCIDENT",
            "child_entity_id": "INC-1",
            "relationship": "ESCALATES_TO",
        },
    }
}
INSIGHTS = {
    "data": {
        "type": "case",
        "attributes": {"insights": [{"type": "MONITOR", "resource_id": "1", "ref": "/monitors/1"}]},
    }
}
WINDOW = {
    "data": {
        "type": "maintenance_window",
        "attributes": {
            "name": f"{MARKER} w",
            "query": "priority:P1",
            "start_at": "2030-01-01T00:00:00Z",
            "end_at": "2030-01-01T06:00:00Z",
        },
    }
}

API_KEY_UPDATE = {"data": {"type": "api_keys", "id": "{api_key_id}", "attributes": {"name": "x"}}}
APP_KEY_UPDATE = {"data": {"type": "application_keys", "id": "{app_key_id}", "attributes": {"name": "x"}}}
TOKEN_UPDATE = {"data": {"type": "personal_access_tokens", "id": "{token_id}", "attributes": {"name": "x"}}}
JIRA_ISSUE = {
    "data": {
        "type": "issues",
        "attributes": {"jira_account_id": "{account_id}", "project_id": "10000", "issue_type_id": "10001"},
    }
}
JIRA_LINK = {"data": {"type": "issues", "attributes": {"jira_issue_url": "https://x.atlassian.net/browse/OPS-1"}}}
ISSUE_TEMPLATE = {
    "data": {
        "type": "jira-issue-template",
        "attributes": {"name": "t", "project_id": "1", "issue_type_id": "1", "jira-account": {"id": "{account_id}"}},
    }
}
SN_TEMPLATE = {
    "data": {
        "type": "servicenow_templates",
        "attributes": {"handle_name": "h", "instance_id": "{instance_id}", "servicenow_tablename": "incident"},
    }
}

PROBES: list[Probe] = [
    # projects
    Probe("GET", "/api/v2/cases/projects/{project_id}"),
    Probe("PATCH", "/api/v2/cases/projects/{project_id}", {"data": {"type": "project", "attributes": {"name": "x"}}}),
    Probe("DELETE", "/api/v2/cases/projects/{project_id}"),
    # cases
    Probe("GET", "/api/v2/cases/{case_id}"),
    Probe("GET", "/api/v2/cases/{case_key}"),
    Probe(
        "POST",
        "/api/v2/cases",
        {
            "data": {
                "type": "case",
                "attributes": {"title": "t", "type_id": "00000000-0000-0000-0000-000000000001"},
                "relationships": {"project": {"data": {"id": "{project_id}", "type": "project"}}},
            }
        },
    ),
    Probe(
        "POST",
        "/api/v2/cases/bulk",
        {
            "data": {
                "type": "bulk",
                "attributes": {"case_ids": ["{case_id}"], "type": "priority", "payload": {"priority": "P1"}},
            }
        },
    ),
    Probe("POST", "/api/v2/cases/{case_id}/title", case_body({"title": "x"})),
    Probe("POST", "/api/v2/cases/{case_id}/description", case_body({"description": "x"})),
    Probe("POST", "/api/v2/cases/{case_id}/status", case_body({"status": "IN_PROGRESS"})),
    Probe("POST", "/api/v2/cases/{case_id}/priority", case_body({"priority": "P1"})),
    Probe("POST", "/api/v2/cases/{case_id}/attributes", case_body({"attributes": {"env": ["prod"]}})),
    Probe(
        "POST",
        "/api/v2/cases/{case_id}/custom_attributes/{custom_attribute_key}",
        case_body({"type": "TEXT", "is_multi": False, "value": "eu"}),
    ),
    Probe("DELETE", "/api/v2/cases/{case_id}/custom_attributes/{custom_attribute_key}"),
    Probe("POST", "/api/v2/cases/{case_id}/due_date", case_body({"due_date": "2030-01-01"})),
    Probe("POST", "/api/v2/cases/{case_id}/resolved_reason", case_body({"security_resolved_reason": "benign"})),
    Probe("POST", "/api/v2/cases/{case_id}/assign", case_body({"assignee_id": "{user_id}"})),
    Probe("POST", "/api/v2/cases/{case_id}/assign", case_body({"assignee_id": "{user_id}"}), own=("case_id",)),
    Probe("POST", "/api/v2/cases/{case_id}/unassign", {"data": {"type": "case"}}),
    Probe("POST", "/api/v2/cases/{case_id}/archive", {"data": {"type": "case"}}),
    Probe("POST", "/api/v2/cases/{case_id}/unarchive", {"data": {"type": "case"}}),
    Probe(
        "PATCH", "/api/v2/cases/{case_id}/relationships/project", {"data": {"id": "{project_id}", "type": "project"}}
    ),
    Probe(
        "PATCH",
        "/api/v2/cases/{case_id}/relationships/project",
        {"data": {"id": "{project_id}", "type": "project"}},
        own=("case_id",),
    ),
    # comments and timeline
    Probe("POST", "/api/v2/cases/{case_id}/comment", case_body({"comment": "hi"})),
    Probe("PUT", "/api/v2/cases/{case_id}/comment/{cell_id}", case_body({"comment": "x"})),
    Probe("PUT", "/api/v2/cases/{case_id}/comment/{cell_id}", case_body({"comment": "x"}), own=("case_id",)),
    Probe("DELETE", "/api/v2/cases/{case_id}/comment/{cell_id}"),
    Probe("DELETE", "/api/v2/cases/{case_id}/comment/{cell_id}", own=("case_id",)),
    Probe("GET", "/api/v2/cases/{case_id}/timelines"),
    # watchers
    Probe("GET", "/api/v2/cases/{case_id}/watchers"),
    Probe("POST", "/api/v2/cases/{case_id}/watchers/{user_uuid}"),
    Probe("POST", "/api/v2/cases/{case_id}/watchers/{user_uuid}", own=("case_id",)),
    Probe("DELETE", "/api/v2/cases/{case_id}/watchers/{user_uuid}"),
    Probe("DELETE", "/api/v2/cases/{case_id}/watchers/{user_uuid}", own=("case_id",)),
    # case types and custom attributes
    Probe("PUT", "/api/v2/cases/types/{case_type_id}", {"data": {"type": "case_type", "attributes": {"name": "x"}}}),
    Probe("DELETE", "/api/v2/cases/types/{case_type_id}"),
    Probe(
        "POST",
        "/api/v2/cases/types/{case_type_id}/custom_attributes",
        {
            "data": {
                "type": "custom_attribute",
                "attributes": {"display_name": "Zone", "is_multi": False, "key": "zone", "type": "TEXT"},
            }
        },
    ),
    Probe("GET", "/api/v2/cases/types/{case_type_id}/custom_attributes"),
    Probe(
        "PUT",
        "/api/v2/cases/types/{case_type_id}/custom_attributes/{custom_attribute_id}",
        {"data": {"type": "custom_attribute", "attributes": {"display_name": "x"}}},
    ),
    Probe("DELETE", "/api/v2/cases/types/{case_type_id}/custom_attributes/{custom_attribute_id}"),
    # attachments (casem's own)
    Probe("POST", "/api/v2/cases/{case_id}/attachments", upload=True),
    Probe("GET", "/api/v2/cases/{case_id}/attachments"),
    Probe("GET", "/api/v2/cases/{case_id}/attachments/{attachment_id}"),
    Probe("GET", "/api/v2/cases/{case_id}/attachments/{attachment_id}/content"),
    Probe("GET", "/api/v2/cases/{case_id}/attachments/{attachment_id}", own=("case_id",)),
    Probe("DELETE", "/api/v2/cases/{case_id}/attachments/{attachment_id}"),
    # automation rules, and casem's per-project SLA / reminder / duplicate settings
    Probe("GET", "/api/v2/cases/projects/{project_id}/rules"),
    Probe("POST", "/api/v2/cases/projects/{project_id}/rules", {"data": {"type": "rule", "attributes": RULE}}),
    Probe("GET", "/api/v2/cases/projects/{project_id}/rules/{rule_id}"),
    Probe("PUT", "/api/v2/cases/projects/{project_id}/rules/{rule_id}", {"data": {"type": "rule", "attributes": RULE}}),
    Probe("DELETE", "/api/v2/cases/projects/{project_id}/rules/{rule_id}"),
    Probe("POST", "/api/v2/cases/projects/{project_id}/rules/{rule_id}/enable"),
    Probe("POST", "/api/v2/cases/projects/{project_id}/rules/{rule_id}/disable"),
    Probe("GET", "/api/v2/casem/projects/{project_id}/sla"),
    Probe(
        "PUT",
        "/api/v2/casem/projects/{project_id}/sla",
        {"data": {"type": "sla_policy", "attributes": {"targets": {}}}},
    ),
    Probe("GET", "/api/v2/casem/projects/{project_id}/reminders"),
    Probe(
        "PUT",
        "/api/v2/casem/projects/{project_id}/reminders",
        {"data": {"type": "reminder_policy", "attributes": {"lead_times_seconds": [0]}}},
    ),
    Probe("GET", "/api/v2/casem/projects/{project_id}/duplicate_detection"),
    Probe(
        "PUT",
        "/api/v2/casem/projects/{project_id}/duplicate_detection",
        {"data": {"type": "duplicate_detection", "attributes": {"enabled": False}}},
    ),
    # casem's own audit trail and analytics, scoped by query parameters
    Probe("GET", "/api/v2/casem/audit", query="case_id={case_id}"),
    Probe("GET", "/api/v2/casem/analytics", query="project_id={project_id}"),
    # notification rules, endpoints and the in-app inbox
    Probe(
        "POST",
        "/api/v2/cases/projects/{project_id}/notification_rules",
        {"data": {"type": "notification_rule", "attributes": NOTIFICATION_RULE}},
    ),
    Probe("GET", "/api/v2/cases/projects/{project_id}/notification_rules"),
    Probe(
        "PUT",
        "/api/v2/cases/projects/{project_id}/notification_rules/{notification_rule_id}",
        {"data": {"type": "notification_rule", "attributes": NOTIFICATION_RULE}},
    ),
    Probe("DELETE", "/api/v2/cases/projects/{project_id}/notification_rules/{notification_rule_id}"),
    Probe("DELETE", "/api/v2/casem/notification_endpoints/{endpoint_id}"),
    Probe("POST", "/api/v2/casem/notifications/{notification_id}/read"),
    Probe("GET", "/api/v2/casem/notification_deliveries", query="case_id={case_id}"),
    # casem's case merges: A's case as primary, and A's case as duplicate of B's own
    Probe("POST", "/api/v2/casem/cases/{case_id}/merge", MERGE),
    Probe("POST", "/api/v2/casem/cases/{case_id}/merge", MERGE, own=("case_id",)),
    Probe("GET", "/api/v2/casem/merges/{merge_id}"),
    # case views, links, project favorites, maintenance windows and insights
    Probe("POST", "/api/v2/cases/views", VIEW),
    Probe("GET", "/api/v2/cases/views", query="project_id={project_id}"),
    Probe("GET", "/api/v2/cases/views/{view_id}"),
    Probe("PUT", "/api/v2/cases/views/{view_id}", {"data": {"type": "view", "attributes": {"name": "x"}}}),
    Probe("DELETE", "/api/v2/cases/views/{view_id}"),
    Probe("POST", "/api/v2/cases/link", LINK),
    Probe("GET", "/api/v2/cases/link", query="entity_type=CASE&entity_id={case_id}"),
    Probe("DELETE", "/api/v2/cases/link/{link_id}"),
    Probe("POST", "/api/v2/cases/projects/{project_id}/favorites"),
    Probe("DELETE", "/api/v2/cases/projects/{project_id}/favorites"),
    Probe(
        "PUT",
        "/api/v2/maintenance_windows/{maintenance_window_id}",
        {"data": {"type": "maintenance_window", "attributes": {"name": "x"}}},
    ),
    Probe("DELETE", "/api/v2/maintenance_windows/{maintenance_window_id}"),
    Probe("PUT", "/api/v2/cases/{case_id}/insights", INSIGHTS),
    Probe("DELETE", "/api/v2/cases/{case_id}/insights", INSIGHTS),
    # Jira and ServiceNow: accounts, instances, templates, listings, and the case operations
    Probe("DELETE", "/api/v2/integration/jira/accounts/{account_id}"),
    Probe(
        "PATCH",
        "/api/v2/integration/jira/accounts/{account_id}",
        {"data": {"type": "jira-account", "attributes": {"webhook_secret": "s" * 24}}},
    ),
    Probe("POST", "/api/v2/integration/jira/issue-templates", ISSUE_TEMPLATE),
    Probe("GET", "/api/v2/integration/jira/issue-templates/{issue_template_id}"),
    Probe(
        "PATCH",
        "/api/v2/integration/jira/issue-templates/{issue_template_id}",
        {"data": {"type": "jira-issue-template", "attributes": {"name": "x"}}},
    ),
    Probe("DELETE", "/api/v2/integration/jira/issue-templates/{issue_template_id}"),
    Probe("DELETE", "/api/v2/integration/servicenow/instances/{instance_id}"),
    Probe(
        "PATCH",
        "/api/v2/integration/servicenow/instances/{instance_id}",
        {"data": {"type": "instance", "attributes": {"webhook_secret": "s" * 24}}},
    ),
    Probe("POST", "/api/v2/integration/servicenow/handles", SN_TEMPLATE),
    Probe("GET", "/api/v2/integration/servicenow/handles/{template_id}"),
    Probe("PUT", "/api/v2/integration/servicenow/handles/{template_id}", SN_TEMPLATE),
    Probe("DELETE", "/api/v2/integration/servicenow/handles/{template_id}"),
    Probe("GET", "/api/v2/integration/servicenow/assignment_groups/{instance_id}"),
    Probe("GET", "/api/v2/integration/servicenow/business_services/{instance_id}"),
    Probe("GET", "/api/v2/integration/servicenow/users/{instance_id}"),
    Probe("POST", "/api/v2/cases/{case_id}/relationships/jira_issues", JIRA_ISSUE),
    Probe("POST", "/api/v2/cases/{case_id}/relationships/jira_issues", JIRA_ISSUE, own=("case_id",)),
    Probe("PATCH", "/api/v2/cases/{case_id}/relationships/jira_issues", JIRA_LINK),
    Probe("DELETE", "/api/v2/cases/{case_id}/relationships/jira_issues"),
    Probe(
        "POST",
        "/api/v2/cases/{case_id}/relationships/servicenow_tickets",
        {"data": {"type": "tickets", "attributes": {"instance_name": "acme"}}},
    ),
    Probe("POST", "/api/v2/cases/{case_id}/relationships/incidents", {"data": {"id": "INC-1", "type": "incidents"}}),
    Probe("POST", "/api/v2/cases/{case_id}/relationships/notebook", {"data": {"type": "notebook"}}),
    # users and teams
    Probe("GET", "/api/v2/users/{user_id}"),
    Probe("GET", "/api/v2/team/{team_id}"),
    # key management: A's keys are out of B's reach, by the org-wide and by the current-user routes
    Probe("GET", "/api/v2/api_keys/{api_key_id}"),
    Probe("PATCH", "/api/v2/api_keys/{api_key_id}", API_KEY_UPDATE),
    Probe("DELETE", "/api/v2/api_keys/{api_key_id}"),
    Probe("GET", "/api/v2/application_keys/{app_key_id}"),
    Probe("PATCH", "/api/v2/application_keys/{app_key_id}", APP_KEY_UPDATE),
    Probe("DELETE", "/api/v2/application_keys/{app_key_id}"),
    Probe("GET", "/api/v2/current_user/application_keys/{app_key_id}"),
    Probe("PATCH", "/api/v2/current_user/application_keys/{app_key_id}", APP_KEY_UPDATE),
    Probe("DELETE", "/api/v2/current_user/application_keys/{app_key_id}"),
    Probe("GET", "/api/v2/personal_access_tokens/{token_id}"),
    Probe("PATCH", "/api/v2/personal_access_tokens/{token_id}", TOKEN_UPDATE),
    Probe("DELETE", "/api/v2/personal_access_tokens/{token_id}"),
]

# -- on-call: schedules, policies, routing, notification channels and rules, pages; memberships ----------------
ONCALL_LAYER = {
    "name": "l",
    "effective_date": "2025-01-01T00:00:00Z",
    "rotation_start": "2025-01-01T00:00:00Z",
    "interval": {"days": 1},
    "members": [{"user": {"id": "{user_id}"}}],
}
SCHEDULE = {"data": {"type": "schedules", "attributes": {"name": "s", "time_zone": "UTC", "layers": [ONCALL_LAYER]}}}
POLICY = {
    "data": {
        "type": "policies",
        "attributes": {"name": "p", "steps": [{"targets": [{"type": "users", "id": "{user_id}"}]}]},
    }
}
ROUTING = {"data": {"type": "team_routing_rules", "attributes": {"rules": [{"query": "", "policy_id": "{policy_id}"}]}}}
CHANNEL = {
    "data": {"type": "notification_channels", "attributes": {"config": {"type": "phone", "number": "+14155550100"}}}
}
ONCALL_RULE = {
    "data": {
        "type": "notification_rules",
        "attributes": {"category": "high_urgency", "delay_minutes": 0},
        "relationships": {"channel": {"data": {"id": "{channel_id}", "type": "notification_channels"}}},
    }
}
PAGE = {
    "data": {
        "type": "pages",
        "attributes": {"title": "t", "urgency": "high", "target": {"type": "team_id", "identifier": "{team_id}"}},
    }
}
OVERRIDE = {
    "data": {
        "type": "overrides",
        "attributes": {"user_id": "{user_id}", "start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z"},
    }
}
MEMBER = {
    "data": {"type": "team_memberships", "relationships": {"user": {"data": {"id": "{user_id}", "type": "users"}}}}
}
ROLE = {"data": {"type": "team_memberships", "attributes": {"role": "admin"}}}
TEAM_UPDATE = {"data": {"type": "team", "attributes": {"handle": "renamed", "name": "renamed"}}}
RULE_ID = (("rule_id", "oncall_rule_id"),)
PAGING_RULE = {"data": {"type": "paging_rule", "attributes": {"team_id": "{team_id}", "query": "priority:P1"}}}

PROBES += [
    Probe("POST", "/api/v2/on-call/schedules", SCHEDULE),
    Probe("GET", "/api/v2/on-call/schedules/{schedule_id}"),
    Probe("PUT", "/api/v2/on-call/schedules/{schedule_id}", SCHEDULE),
    Probe("DELETE", "/api/v2/on-call/schedules/{schedule_id}"),
    Probe("GET", "/api/v2/on-call/schedules/{schedule_id}/on-call"),
    Probe("GET", "/api/v2/on-call/schedules/{schedule_id}/responders"),
    Probe("POST", "/api/v2/casem/on-call/schedules/{schedule_id}/overrides", OVERRIDE),
    Probe("GET", "/api/v2/casem/on-call/schedules/{schedule_id}/overrides"),
    Probe("DELETE", "/api/v2/casem/on-call/schedules/{schedule_id}/overrides/{override_id}"),
    Probe("GET", "/api/v2/casem/on-call/schedules/{schedule_id}/timeline"),
    Probe("GET", "/api/v2/casem/on-call/schedules/{schedule_id}/calendar"),
    Probe("POST", "/api/v2/casem/on-call/schedules/{schedule_id}/calendar-feed"),
    Probe("POST", "/api/v2/on-call/escalation-policies", POLICY),
    Probe("GET", "/api/v2/on-call/escalation-policies/{policy_id}"),
    Probe("PUT", "/api/v2/on-call/escalation-policies/{policy_id}", POLICY),
    Probe("DELETE", "/api/v2/on-call/escalation-policies/{policy_id}"),
    Probe("GET", "/api/v2/on-call/teams/{team_id}/routing-rules"),
    Probe("PUT", "/api/v2/on-call/teams/{team_id}/routing-rules", ROUTING),
    Probe("PUT", "/api/v2/on-call/teams/{team_id}/routing-rules", ROUTING, own=("team_id",)),
    Probe("GET", "/api/v2/on-call/teams/{team_id}/on-call"),
    Probe("POST", "/api/v2/on-call/users/{user_id}/notification-channels", CHANNEL),
    Probe("GET", "/api/v2/on-call/users/{user_id}/notification-channels"),
    Probe("GET", "/api/v2/on-call/users/{user_id}/notification-channels/{channel_id}"),
    Probe("GET", "/api/v2/on-call/users/{user_id}/notification-channels/{channel_id}", own=("user_id",)),
    Probe("DELETE", "/api/v2/on-call/users/{user_id}/notification-channels/{channel_id}"),
    Probe("DELETE", "/api/v2/on-call/users/{user_id}/notification-channels/{channel_id}", own=("user_id",)),
    Probe("POST", "/api/v2/on-call/users/{user_id}/notification-rules", ONCALL_RULE),
    Probe("POST", "/api/v2/on-call/users/{user_id}/notification-rules", ONCALL_RULE, own=("user_id",)),
    Probe("GET", "/api/v2/on-call/users/{user_id}/notification-rules"),
    Probe("GET", "/api/v2/on-call/users/{user_id}/notification-rules/{rule_id}", ids=RULE_ID),
    Probe("GET", "/api/v2/on-call/users/{user_id}/notification-rules/{rule_id}", own=("user_id",), ids=RULE_ID),
    Probe("PUT", "/api/v2/on-call/users/{user_id}/notification-rules/{rule_id}", ONCALL_RULE, ids=RULE_ID),
    Probe(
        "PUT",
        "/api/v2/on-call/users/{user_id}/notification-rules/{rule_id}",
        ONCALL_RULE,
        own=("user_id",),
        ids=RULE_ID,
    ),
    Probe("DELETE", "/api/v2/on-call/users/{user_id}/notification-rules/{rule_id}", ids=RULE_ID),
    Probe("DELETE", "/api/v2/on-call/users/{user_id}/notification-rules/{rule_id}", own=("user_id",), ids=RULE_ID),
    Probe("POST", "/api/v2/on-call/pages", PAGE),
    Probe("POST", "/api/v2/on-call/pages/{page_id}/acknowledge"),
    Probe("POST", "/api/v2/on-call/pages/{page_id}/escalate"),
    Probe("POST", "/api/v2/on-call/pages/{page_id}/resolve"),
    Probe("GET", "/api/v2/casem/on-call/pages/{page_id}"),
    Probe("GET", "/api/v2/casem/on-call/pages/{page_id}/timeline"),
    Probe("GET", "/api/v2/casem/on-call/pages/{page_id}/notifications"),
    Probe("DELETE", "/api/v2/users/{user_id}"),
    Probe("PATCH", "/api/v2/team/{team_id}", TEAM_UPDATE),
    Probe("DELETE", "/api/v2/team/{team_id}"),
    Probe("POST", "/api/v2/team/{team_id}/memberships", MEMBER),
    Probe("POST", "/api/v2/team/{team_id}/memberships", MEMBER, own=("team_id",)),
    Probe("GET", "/api/v2/team/{team_id}/memberships"),
    Probe("PATCH", "/api/v2/team/{team_id}/memberships/{user_id}", ROLE),
    Probe("PATCH", "/api/v2/team/{team_id}/memberships/{user_id}", ROLE, own=("team_id",)),
    Probe("DELETE", "/api/v2/team/{team_id}/memberships/{user_id}"),
    Probe("DELETE", "/api/v2/team/{team_id}/memberships/{user_id}", own=("team_id",)),
    Probe("GET", "/api/v2/users/{user_uuid}/memberships"),
    Probe("PUT", "/api/v2/casem/projects/{project_id}/paging", PAGING_RULE),
    Probe("PUT", "/api/v2/casem/projects/{project_id}/paging", PAGING_RULE, own=("project_id",)),
    Probe("GET", "/api/v2/casem/projects/{project_id}/paging"),
    Probe("DELETE", "/api/v2/casem/projects/{project_id}/paging"),
]

# Routes that create in the caller's own org and name nothing of another org: B may reuse A's unique
# names (keys, handles), which `test_creating_never_collides_with_another_orgs_names` checks.
CREATES = {
    ("POST", "/api/v2/cases/projects"),
    ("POST", "/api/v2/casem/notification_endpoints"),
    ("POST", "/api/v2/cases/types"),
    ("POST", "/api/v2/users"),
    ("POST", "/api/v2/team"),
    ("POST", "/api/v2/maintenance_windows"),
    ("POST", "/api/v2/api_keys"),
    ("POST", "/api/v2/current_user/application_keys"),
    ("POST", "/api/v2/personal_access_tokens"),
    ("POST", "/api/v2/integration/jira/accounts"),
    ("POST", "/api/v2/integration/servicenow/instances"),
}

# Query strings for listing routes that filter: B's answers must still hold none of A's data.
LIST_QUERIES = [
    f"/api/v2/cases?filter={MARKER}",
    "/api/v2/cases?page[size]=100",
    "/api/v2/cases/count?group_bys=status",
    f"/api/v2/users?filter={MARKER}",
    "/api/v2/team?filter[keyword]=orgA",
]


@dataclass
class World:
    a: OrgClient
    b: OrgClient
    ids: dict[str, str] = field(default_factory=dict)  # A's resources by path-parameter name
    own: dict[str, str] = field(default_factory=dict)  # B's
    remotes: tuple[Any, ...] = ()  # the loopback Jira and ServiceNow A's integrations reach

    def secrets(self) -> list[str]:
        """What of A must never appear in an answer to B (emails excluded: both admins share one)."""
        return [MARKER, *self.ids.values()]


def _ok(response: Any) -> dict[str, Any]:
    assert response.status_code < 300, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else {}


def _build(org: OrgClient, tag: str) -> dict[str, str]:
    """A project, a custom case type with an attribute, a case of that type with a comment and a watcher, a team."""
    http = org.http
    project = _ok(
        http.post(
            "/api/v2/cases/projects",
            json={"data": {"type": "project", "attributes": {"key": unique_key(tag), "name": f"{MARKER} p"}}},
        )
    )["data"]
    case_type = _ok(
        http.post("/api/v2/cases/types", json={"data": {"type": "case_type", "attributes": {"name": f"{MARKER} t"}}})
    )["data"]
    attribute = _ok(
        http.post(
            f"/api/v2/cases/types/{case_type['id']}/custom_attributes",
            json={
                "data": {
                    "type": "custom_attribute",
                    "attributes": {"display_name": "Region", "is_multi": False, "key": "region", "type": "TEXT"},
                }
            },
        )
    )["data"]
    case = _ok(
        http.post(
            "/api/v2/cases",
            json={
                "data": {
                    "type": "case",
                    "attributes": {"title": f"{MARKER} case", "type_id": case_type["id"]},
                    "relationships": {"project": {"data": {"id": project["id"], "type": "project"}}},
                }
            },
        )
    )["data"]
    cell = _ok(http.post(f"/api/v2/cases/{case['id']}/comment", json=case_body({"comment": f"{MARKER} note"})))
    _ok(http.post(f"/api/v2/cases/{case['id']}/watchers/{org.user_id}"))
    attachment = _ok(
        http.post(
            f"/api/v2/cases/{case['id']}/attachments", files={"file": ("notes.txt", MARKER.encode(), "text/plain")}
        )
    )["data"]
    rule = _ok(
        http.post(f"/api/v2/cases/projects/{project['id']}/rules", json={"data": {"type": "rule", "attributes": RULE}})
    )["data"]
    notification_rule = _ok(
        http.post(
            f"/api/v2/cases/projects/{project['id']}/notification_rules",
            json={"data": {"type": "notification_rule", "attributes": NOTIFICATION_RULE}},
        )
    )["data"]
    endpoint = _ok(
        http.post(
            "/api/v2/casem/notification_endpoints",
            json={
                "data": {
                    "type": "notification_endpoint",
                    "attributes": {"kind": "HTTP", "name": f"{tag.lower()}-hook", "url": "https://hooks.example.com/a"},
                }
            },
        )
    )["data"]
    team = _ok(
        http.post(
            "/api/v2/team",
            json={"data": {"type": "team", "attributes": {"handle": f"team-{tag.lower()}", "name": f"{MARKER} t"}}},
        )
    )["data"]
    return {
        "project_id": project["id"],
        "case_id": case["id"],
        "case_key": case["attributes"]["key"],
        "cell_id": cell["data"][0]["id"],
        "user_id": org.user_id,
        "user_uuid": org.user_id,
        "case_type_id": case_type["id"],
        "custom_attribute_id": attribute["id"],
        "custom_attribute_key": attribute["attributes"]["key"],
        "team_id": team["id"],
        "attachment_id": attachment["id"],
        "rule_id": rule["id"],
        "notification_rule_id": notification_rule["id"],
        "endpoint_id": endpoint["id"],
        "notification_id": org.server.call(_inbox_entry(org, case["id"], case["attributes"]["key"])),
        "merge_id": org.server.call(_merge_entry(org, case["id"])),
        **_build_views_links(org, project["id"], case["id"]),
        **_build_keys(org),
        **_build_oncall(org, team["id"], project["id"]),
    }


def _build_oncall(org: OrgClient, team_id: str, project_id: str) -> dict[str, str]:
    """A's on-call world: its user in its team, a schedule with an override, a policy the team's routing rules run,
    a phone channel with a rule, and a page for the team."""
    http = org.http
    _ok(
        http.post(
            f"/api/v2/team/{team_id}/memberships", json=json.loads(_fill(json.dumps(MEMBER), {"user_id": org.user_id}))
        )
    )
    ids = {"user_id": org.user_id, "team_id": team_id}
    named = json.loads(_fill(json.dumps(SCHEDULE), ids))
    named["data"]["attributes"]["name"] = f"{MARKER} s"
    schedule = _ok(http.post("/api/v2/on-call/schedules", json=named))["data"]
    override = _ok(
        http.post(
            f"/api/v2/casem/on-call/schedules/{schedule['id']}/overrides",
            json=json.loads(_fill(json.dumps(OVERRIDE), ids)),
        )
    )["data"]
    policy = _ok(http.post("/api/v2/on-call/escalation-policies", json=json.loads(_fill(json.dumps(POLICY), ids))))[
        "data"
    ]
    ids["policy_id"] = policy["id"]
    _ok(http.put(f"/api/v2/on-call/teams/{team_id}/routing-rules", json=json.loads(_fill(json.dumps(ROUTING), ids))))
    channel = _ok(http.post(f"/api/v2/on-call/users/{org.user_id}/notification-channels", json=CHANNEL))["data"]
    ids["channel_id"] = channel["id"]
    rule = _ok(
        http.post(
            f"/api/v2/on-call/users/{org.user_id}/notification-rules",
            json=json.loads(_fill(json.dumps(ONCALL_RULE), ids)),
        )
    )["data"]
    paging_rule = json.loads(_fill(json.dumps(PAGING_RULE), ids))
    _ok(http.put(f"/api/v2/casem/projects/{project_id}/paging", json=paging_rule))
    page = _ok(
        http.post(
            "/api/v2/on-call/pages",
            json={
                "data": {
                    "type": "pages",
                    "attributes": {
                        "title": f"{MARKER} page",
                        "urgency": "high",
                        "target": {"type": "team_id", "identifier": team_id},
                    },
                }
            },
        )
    )["data"]
    return {
        "schedule_id": schedule["id"],
        "override_id": override["id"],
        "policy_id": policy["id"],
        "channel_id": channel["id"],
        "oncall_rule_id": rule["id"],
        "page_id": page["id"],
    }


def _build_keys(org: OrgClient) -> dict[str, str]:
    """An API key and an application key of A's (not its bootstrap pair: a broken probe must not lock A out)."""
    api_key = _ok(
        org.http.post("/api/v2/api_keys", json={"data": {"type": "api_keys", "attributes": {"name": MARKER}}})
    )
    app_key = _ok(
        org.http.post(
            "/api/v2/current_user/application_keys",
            json={"data": {"type": "application_keys", "attributes": {"name": MARKER}}},
        )
    )
    token = _ok(org.http.post("/api/v2/personal_access_tokens", json=_token_body(MARKER)))
    return {"api_key_id": api_key["data"]["id"], "app_key_id": app_key["data"]["id"], "token_id": token["data"]["id"]}


def _token_body(name: str) -> dict[str, Any]:
    expires_at = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    attributes = {"name": name, "expires_at": expires_at, "scopes": []}
    return {"data": {"type": "personal_access_tokens", "attributes": attributes}}


def _build_views_links(org: OrgClient, project_id: str, case_id: str) -> dict[str, str]:
    """A saved view, a case link, a favorite, a maintenance window and an insight of the org's."""
    http = org.http
    view = _ok(http.post("/api/v2/cases/views", json=json.loads(_fill(json.dumps(VIEW), {"project_id": project_id}))))
    link = _ok(http.post("/api/v2/cases/link", json=json.loads(_fill(json.dumps(LINK), {"case_id": case_id}))))
    _ok(http.post(f"/api/v2/cases/projects/{project_id}/favorites"))
    window = _ok(http.post("/api/v2/maintenance_windows", json=WINDOW))
    _ok(http.put(f"/api/v2/cases/{case_id}/insights", json=INSIGHTS))
    return {"view_id": view["data"]["id"], "link_id": link["data"]["id"], "maintenance_window_id": window["data"]["id"]}


def _build_integrations(org: OrgClient, jira: JiraLoopback, snow: ServiceNowLoopback) -> dict[str, str]:
    """A Jira account with an issue template, and a ServiceNow instance with a template, of the org's."""
    account = connect_jira(org, jira)["data"]["id"]
    instance = connect_servicenow(org, snow)["data"]["id"]
    template = _ok(
        org.http.post(
            "/api/v2/integration/jira/issue-templates",
            json=json.loads(_fill(json.dumps(ISSUE_TEMPLATE), {"account_id": account})),
        )
    )
    handle = _ok(
        org.http.post(
            "/api/v2/integration/servicenow/handles",
            json=json.loads(_fill(json.dumps(SN_TEMPLATE), {"instance_id": instance})),
        )
    )
    return {
        "account_id": account,
        "instance_id": instance,
        "issue_template_id": template["data"]["id"],
        "template_id": handle["data"]["id"],
    }


async def _merge_entry(org: OrgClient, case_id: str) -> str:
    """A merge of A's, as POST .../merge records it (the live server has no Temporal to run it)."""
    request = MergeRequest(CASE_MANAGEMENT, org.org_id, str(uuid.uuid4()), case_id, [str(uuid.uuid4())], org.user_id)
    async with org.server.context.uow() as uow:
        await insert_merge(uow, request)
        await uow.commit()
    return request.merge_id


async def _inbox_entry(org: OrgClient, case_id: str, case_key: str) -> str:
    """An entry in A's in-app inbox, as the watcher-notifications flavor writes them."""
    entry_id = str(uuid.uuid4())
    async with org.server.context.uow() as uow:
        await uow.execute(
            sa.insert(notifications).values(
                id=entry_id,
                org_id=org.org_id,
                user_id=org.user_id,
                case_id=case_id,
                case_key=case_key,
                event_id=str(uuid.uuid4()),
                event_type="case.status_changed",
                actor_id=None,
                summary=f"{MARKER} changed",
                created_at=datetime.now(UTC),
            )
        )
        await uow.commit()
    return entry_id


@pytest.fixture(scope="module")
def world(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # One world per backend for the whole module: B's probes never change it (each test checks that).
    # Attachments go to a temporary blob store unless the server already has one; restored afterwards.
    state = server.app.state
    had_blobs = getattr(state, "blobs", None)
    if had_blobs is None:
        state.blobs = open_blob_store(str(tmp_path_factory.mktemp("isolation-blobs")))
    had_integrations = getattr(state, "integrations", None)
    jira, snow = JiraLoopback().start(), ServiceNowLoopback().start()
    state.integrations = remote_systems(jira)
    a, b = new_org(server), new_org(server)
    w = World(a=a, b=b, ids={**_build(a, "A"), **_build_integrations(a, jira, snow)})
    w.remotes = (jira, snow)
    b_case = _ok(
        b.http.post(
            "/api/v2/cases",
            json={
                "data": {
                    "type": "case",
                    "attributes": {"title": "B's own", "type_id": "00000000-0000-0000-0000-000000000001"},
                    "relationships": {
                        "project": {"data": {"id": _build_project(b), "type": "project"}},
                    },
                }
            },
        )
    )["data"]
    b_team = _ok(
        b.http.post("/api/v2/team", json={"data": {"type": "team", "attributes": {"handle": "b-team", "name": "b"}}})
    )["data"]
    w.own = {"case_id": b_case["id"], "team_id": b_team["id"], "user_id": b.user_id, "project_id": _build_project(b)}
    yield w
    for org in (a, b):
        org.api_client.close()
        org.http.close()
    state.blobs = had_blobs
    state.integrations = had_integrations
    jira.stop()
    snow.stop()


def _build_project(org: OrgClient) -> str:
    return _ok(
        org.http.post(
            "/api/v2/cases/projects",
            json={"data": {"type": "project", "attributes": {"key": unique_key("B"), "name": "b"}}},
        )
    )["data"]["id"]


def _fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


def _request(world: World, probe: Probe) -> tuple[str, str | None, list[str]]:
    """The probe's URL and body, and the A identifiers it names."""
    params = {**world.ids, **{name: world.ids[key] for name, key in probe.ids}}
    params.update({name: world.own[name] for name in probe.own})
    url = _fill(probe.route, params)
    if probe.query:
        url += "?" + _fill(probe.query, params)
    body = _fill(json.dumps(probe.body), world.ids) if probe.body is not None else None
    named = [v for k, v in world.ids.items() if v in url or (body and v in body)]
    return url, body, named


def _routes(server: LiveServer) -> set[tuple[str, str]]:
    # The OpenAPI document lists every API route with its method (health and metrics are not API routes).
    paths = server.app.openapi()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops if path.startswith("/api/")}


def _route_of(probe: Probe) -> str:
    return probe.route.replace("{case_key}", "{case_id}")


# Routes that act only on the caller's own org and name no id: `test_org_wide_actions_stay_in_the_org`.
ORG_WIDE = {
    ("POST", "/api/v2/cases/aggregate"),
    ("POST", "/api/v2/casem/notifications/read"),
    ("POST", "/api/v2/integration/jira/oauth/authorize"),
}


def test_org_wide_actions_stay_in_the_org(world: World) -> None:
    body = {
        "data": {
            "type": "aggregate",
            "attributes": {"group_by": {"groups": ["status"], "limit": 10}, "query_filter": MARKER},
        }
    }
    mine = _ok(world.a.http.post("/api/v2/cases/aggregate", json=body))["data"]["attributes"]
    theirs = _ok(world.b.http.post("/api/v2/cases/aggregate", json=body))["data"]["attributes"]
    assert mine["total"] >= 1 and theirs == {"total": 0, "groups": []}
    # B marking "all" read leaves A's inbox untouched.
    assert world.b.http.post("/api/v2/casem/notifications/read").status_code == 204
    unread = _ok(world.a.http.get("/api/v2/casem/notifications", params={"unread": "true"}))
    assert world.ids["notification_id"] in json.dumps(unread)
    # B's Jira consent link carries B's org as its state, nothing of A's.
    consent = {"data": {"type": "jira_oauth_authorization", "attributes": {"redirect_uri": "https://b.example/cb"}}}
    url = _ok(world.b.http.post("/api/v2/integration/jira/oauth/authorize", json=consent))["data"]["attributes"]["url"]
    assert world.b.org_id in url and not any(v in url for v in world.secrets())


def test_matrix_is_complete(server: LiveServer) -> None:
    covered = {(p.method, _route_of(p)) for p in PROBES} | CREATES | ORG_WIDE
    swept = {(m, p) for m, p in _routes(server) if m == "GET" and "{" not in p}
    missing = sorted(_routes(server) - covered - swept)
    assert not missing, f"routes with no isolation probe (add them to PROBES or CREATES): {missing}"
    stale = sorted(covered - _routes(server))
    assert not stale, f"probes for routes that no longer exist: {stale}"


@pytest.mark.parametrize("probe", PROBES, ids=lambda p: p.label)
def test_another_orgs_ids_are_404(world: World, probe: Probe) -> None:
    url, body, named = _request(world, probe)
    assert named, "the probe names none of A's resources"
    before = outbox(world.a), oncall_outbox(world.a)
    if probe.upload:
        response = world.b.http.post(url, files={"file": ("x.txt", b"from B", "text/plain")})
    else:
        headers = {"Content-Type": "application/json"} if body else {}
        response = world.b.http.request(probe.method, url, content=body, headers=headers)
    assert response.status_code == 404, f"{probe.label}: {response.status_code} {response.text}"
    detail = response.json()["errors"][0]["detail"]
    # The lookup of one of A's ids failed (not a routing miss), and said nothing more about it.
    assert any(v in detail for v in named), detail
    assert MARKER not in response.text
    assert (outbox(world.a), oncall_outbox(world.a)) == before


def test_listings_never_include_another_orgs_data(world: World, server: LiveServer) -> None:
    swept = sorted(p for m, p in _routes(server) if m == "GET" and "{" not in p)
    assert "/api/v2/cases/projects" in swept
    for url in [*swept, *LIST_QUERIES]:
        response = world.b.http.get(url)
        assert response.status_code == 200, f"{url}: {response.text}"
        leaked = [s for s in world.secrets() if s in response.text]
        assert not leaked, f"{url} shows org B {leaked}"
    # The needle works: A's own listings do hold A's data.
    for url in ("/api/v2/cases/projects", f"/api/v2/cases?filter={MARKER}", "/api/v2/cases/types"):
        assert MARKER in world.a.http.get(url).text, url
    # B counts its own single case, not A's.
    assert world.b.http.get("/api/v2/cases/count").json()["data"]["attributes"]["total"] == 1


def test_creating_never_collides_with_another_orgs_names(world: World) -> None:
    a_key = world.a.http.get(f"/api/v2/cases/projects/{world.ids['project_id']}").json()["data"]["attributes"]["key"]
    for url, body in [
        ("/api/v2/cases/projects", {"data": {"type": "project", "attributes": {"key": a_key, "name": "mine"}}}),
        ("/api/v2/cases/types", {"data": {"type": "case_type", "attributes": {"name": f"{MARKER} t"}}}),
        ("/api/v2/users", {"data": {"type": "users", "attributes": {"email": f"{uuid.uuid4().hex[:6]}@b.example"}}}),
        ("/api/v2/team", {"data": {"type": "team", "attributes": {"handle": "team-a", "name": "mine"}}}),
    ]:
        response = world.b.http.post(url, json=body)
        assert response.status_code == 201, f"{url}: {response.text}"
        assert world.ids["project_id"] not in response.text
    # The same Jira site and ServiceNow instance name as A's: each org connects its own.
    jira, snow = world.remotes
    for created in (connect_jira(world.b, jira), connect_servicenow(world.b, snow)):
        assert not any(v in json.dumps(created) for v in world.ids.values())


@pytest.mark.parametrize("keys", ["none", "wrong", "mixed", "api-only", "swapped"])
def test_every_route_refuses_bad_keys_with_403(world: World, server: LiveServer, keys: str) -> None:
    headers = {
        "none": {"DD-API-KEY": "", "DD-APPLICATION-KEY": ""},
        "wrong": {"DD-API-KEY": "0" * 32, "DD-APPLICATION-KEY": "0" * 40},
        # Each key is valid, but they belong to different orgs.
        "mixed": {"DD-API-KEY": world.a.creds.api_key, "DD-APPLICATION-KEY": world.b.creds.app_key},
        "api-only": {"DD-API-KEY": world.a.creds.api_key, "DD-APPLICATION-KEY": ""},
        # Each key is valid and of the same org, but in the other's header.
        "swapped": {"DD-API-KEY": world.a.creds.app_key, "DD-APPLICATION-KEY": world.a.creds.api_key},
    }[keys]
    # Datadog's validate endpoints take DD-API-KEY alone: a valid API key of A passes whatever the other header.
    api_key_only = {("GET", "/api/v1/validate"), ("GET", "/api/v2/validate")}
    failures = []
    routes = sorted(_routes(server))
    assert api_key_only <= set(routes)
    assert len(routes) >= len(PROBES) // 2
    for method, path in routes:
        # Real ids of A: a route that forgot authentication would reach (and could change) A's data.
        url = _fill(path, world.ids)
        assert "{" not in url, f"no value for a parameter of {path}"
        response = world.a.http.request(method, url, headers=headers, content=b"{}")
        if (method, path) in api_key_only and keys in ("mixed", "api-only"):
            if response.status_code != 200:
                failures.append(f"{method} {path}: {response.status_code} with a valid API key alone")
            continue
        if response.status_code != 403 or response.json() != {"errors": ["Forbidden"]}:
            failures.append(f"{method} {path}: {response.status_code} {response.text[:120]}")
    assert not failures


def test_a_personal_access_token_opens_only_its_own_org(world: World) -> None:
    """B's token beside A's API key (and A's token beside B's) opens nothing, as a mixed key pair."""
    token_b = _ok(world.b.http.post("/api/v2/personal_access_tokens", json=_token_body("b-token")))["data"]
    token_a = _ok(world.a.http.post("/api/v2/personal_access_tokens", json=_token_body("a-token")))["data"]
    for api_key, token in ((world.a.creds.api_key, token_b), (world.b.creds.api_key, token_a)):
        headers = {"DD-API-KEY": api_key, "DD-APPLICATION-KEY": token["attributes"]["key"]}
        assert world.a.http.get("/api/v2/cases/projects", headers=headers).status_code == 403
    # Each with its own org's API key, it works (the refusals above come from the mix, not the token).
    own = {"DD-API-KEY": world.b.creds.api_key, "DD-APPLICATION-KEY": token_b["attributes"]["key"]}
    assert world.b.http.get("/api/v2/cases/projects", headers=own).status_code == 200
