"""Strict JSON:API `type` members, route by route: each request document is built with the official client's
models (serialized as the client sends it), then one `type` is made wrong. Every route answers 400 in Datadog's
words (`got type "userx" expected one of "user"`) with a pointer to the member, and changes nothing."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from datadog_api_client.model_utils import model_to_dict
from datadog_api_client.v2.model.case_aggregate_group_by import CaseAggregateGroupBy
from datadog_api_client.v2.model.case_aggregate_request import CaseAggregateRequest
from datadog_api_client.v2.model.case_aggregate_request_attributes import CaseAggregateRequestAttributes
from datadog_api_client.v2.model.case_aggregate_request_data import CaseAggregateRequestData
from datadog_api_client.v2.model.case_aggregate_resource_type import CaseAggregateResourceType
from datadog_api_client.v2.model.case_assign import CaseAssign
from datadog_api_client.v2.model.case_assign_attributes import CaseAssignAttributes
from datadog_api_client.v2.model.case_assign_request import CaseAssignRequest
from datadog_api_client.v2.model.case_create_relationships import CaseCreateRelationships
from datadog_api_client.v2.model.case_empty import CaseEmpty
from datadog_api_client.v2.model.case_empty_request import CaseEmptyRequest
from datadog_api_client.v2.model.case_resource_type import CaseResourceType
from datadog_api_client.v2.model.case_type_create import CaseTypeCreate
from datadog_api_client.v2.model.case_type_create_request import CaseTypeCreateRequest
from datadog_api_client.v2.model.case_type_resource_attributes import CaseTypeResourceAttributes
from datadog_api_client.v2.model.case_type_resource_type import CaseTypeResourceType
from datadog_api_client.v2.model.case_update_priority import CaseUpdatePriority
from datadog_api_client.v2.model.case_update_priority_attributes import CaseUpdatePriorityAttributes
from datadog_api_client.v2.model.case_update_priority_request import CaseUpdatePriorityRequest
from datadog_api_client.v2.model.case_update_title import CaseUpdateTitle
from datadog_api_client.v2.model.case_update_title_attributes import CaseUpdateTitleAttributes
from datadog_api_client.v2.model.case_update_title_request import CaseUpdateTitleRequest
from datadog_api_client.v2.model.nullable_user_relationship import NullableUserRelationship
from datadog_api_client.v2.model.nullable_user_relationship_data import NullableUserRelationshipData
from datadog_api_client.v2.model.project_relationship import ProjectRelationship
from datadog_api_client.v2.model.project_relationship_data import ProjectRelationshipData
from datadog_api_client.v2.model.project_resource_type import ProjectResourceType
from datadog_api_client.v2.model.relationship_to_role_data import RelationshipToRoleData
from datadog_api_client.v2.model.relationship_to_roles import RelationshipToRoles
from datadog_api_client.v2.model.relationship_to_user_data import RelationshipToUserData
from datadog_api_client.v2.model.relationship_to_users import RelationshipToUsers
from datadog_api_client.v2.model.roles_type import RolesType
from datadog_api_client.v2.model.team_create import TeamCreate
from datadog_api_client.v2.model.team_create_attributes import TeamCreateAttributes
from datadog_api_client.v2.model.team_create_relationships import TeamCreateRelationships
from datadog_api_client.v2.model.team_create_request import TeamCreateRequest
from datadog_api_client.v2.model.team_type import TeamType
from datadog_api_client.v2.model.user_create_attributes import UserCreateAttributes
from datadog_api_client.v2.model.user_create_data import UserCreateData
from datadog_api_client.v2.model.user_create_request import UserCreateRequest
from datadog_api_client.v2.model.user_relationships import UserRelationships
from datadog_api_client.v2.model.user_resource_type import UserResourceType
from datadog_api_client.v2.model.users_type import UsersType

from tests.api import test_automation_rules as automation
from tests.api import test_maintenance_windows as windows
from tests.api import test_notification_rules as notification_rules
from tests.api.helpers import case_request, comment_request, make_case, make_project
from tests.api.test_case_insights import insights_request
from tests.api.test_case_links import link_request
from tests.api.test_case_views import update_request as view_update_request
from tests.api.test_projects import ProjectCreate, ProjectCreateAttributes, ProjectCreateRequest
from tests.support.api_client import OrgClient, unique_key


def serialized(model: Any) -> dict[str, Any]:
    """The JSON document the official client sends for `model`."""
    return model_to_dict(model, serialize=True)


def with_type(document: dict[str, Any], pointer: str, value: str) -> dict[str, Any]:
    """A copy of `document` whose member at the JSON pointer is `value`."""
    changed = copy.deepcopy(document)
    *parents, last = pointer.strip("/").split("/")
    node: Any = changed
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = value
    return changed


def assert_refused(org: OrgClient, method: str, path: str, document: dict, pointer: str, expected: str) -> None:
    wrong = with_type(document, pointer, "nonsense")
    response = org.http.request(method, path, json=wrong)
    route = f"{method} {path} {pointer}"
    assert response.status_code == 400, f"{route}: {response.status_code} {response.text}"
    [error] = response.json()["errors"]
    assert error["detail"] == f'got type "nonsense" expected one of "{expected}"', route
    assert error["source"]["pointer"] == pointer, route


def test_case_create_checks_every_type_with_datadogs_words(org: OrgClient) -> None:
    project = make_project(org)
    request = case_request(project.id)
    request.data.relationships = CaseCreateRelationships(
        project=ProjectRelationship(data=ProjectRelationshipData(id=project.id, type=ProjectResourceType.PROJECT)),
        assignee=NullableUserRelationship(
            data=NullableUserRelationshipData(id=org.user_id, type=UserResourceType.USER)
        ),
    )
    document = serialized(request)
    # The issue's own example: Datadog answers 400, not "project ... not found".
    userx = with_type(document, "/data/relationships/assignee/data/type", "userx")
    response = org.http.post("/api/v2/cases", json=userx)
    assert response.status_code == 400
    assert response.json()["errors"][0]["detail"] == 'got type "userx" expected one of "user"'
    for pointer, expected in (
        ("/data/type", "case"),
        ("/data/relationships/project/data/type", "project"),
        ("/data/relationships/assignee/data/type", "user"),
    ):
        assert_refused(org, "POST", "/api/v2/cases", document, pointer, expected)
    assert org.http.get("/api/v2/cases").json()["data"] == []
    # The same document, types intact, is fine.
    assert org.http.post("/api/v2/cases", json=document).status_code == 201


def test_every_route_with_a_body_checks_its_types(org: OrgClient) -> None:
    project = make_project(org)
    case = make_case(org, project.id)
    other = make_case(org, project.id, "Another")
    case_type = org.types.create_case_type(
        body=CaseTypeCreateRequest(
            data=CaseTypeCreate(
                attributes=CaseTypeResourceAttributes(name="Typed"), type=CaseTypeResourceType.CASE_TYPE
            )
        )
    ).data
    rule = org.cases.create_case_automation_rule(
        project_id=project.id, body=automation.create_body(automation.workflow_rule())
    ).data
    notification = org.cases.create_project_notification_rule(
        project_id=project.id, body=notification_rules.create_body()
    ).data
    window = windows.create_window(org)
    c = f"/api/v2/cases/{case.id}"
    p = f"/api/v2/cases/projects/{project.id}"
    title = CaseUpdateTitleRequest(
        data=CaseUpdateTitle(attributes=CaseUpdateTitleAttributes(title="x"), type=CaseResourceType.CASE)
    )
    priority = CaseUpdatePriorityRequest(
        data=CaseUpdatePriority(attributes=CaseUpdatePriorityAttributes(priority="P1"), type=CaseResourceType.CASE)
    )
    assign = CaseAssignRequest(
        data=CaseAssign(attributes=CaseAssignAttributes(assignee_id=org.user_id), type=CaseResourceType.CASE)
    )
    aggregate = CaseAggregateRequest(
        data=CaseAggregateRequestData(
            attributes=CaseAggregateRequestAttributes(
                group_by=CaseAggregateGroupBy(groups=["status"], limit=10), query_filter="status:open"
            ),
            type=CaseAggregateResourceType.AGGREGATE,
        )
    )
    user = UserCreateRequest(
        data=UserCreateData(
            attributes=UserCreateAttributes(email="typed@example.com"),
            relationships=UserRelationships(
                roles=RelationshipToRoles(data=[RelationshipToRoleData(id="admin", type=RolesType.ROLES)])
            ),
            type=UsersType.USERS,
        )
    )
    team = TeamCreateRequest(
        data=TeamCreate(
            attributes=TeamCreateAttributes(handle="typed", name="Typed"),
            relationships=TeamCreateRelationships(
                users=RelationshipToUsers(data=[RelationshipToUserData(id=org.user_id, type=UsersType.USERS)])
            ),
            type=TeamType.TEAM,
        )
    )
    project_create = ProjectCreateRequest(
        data=ProjectCreate(
            attributes=ProjectCreateAttributes(key=unique_key(), name="x"), type=ProjectResourceType.PROJECT
        )
    )
    routes: list[tuple[str, str, Callable[[], Any] | dict, str, str]] = [
        ("POST", f"{c}/title", title, "/data/type", "case"),
        ("POST", f"{c}/priority", priority, "/data/type", "case"),
        ("POST", f"{c}/assign", assign, "/data/type", "case"),
        ("POST", f"{c}/archive", CaseEmptyRequest(data=CaseEmpty(type=CaseResourceType.CASE)), "/data/type", "case"),
        ("POST", f"{c}/comment", comment_request("hi"), "/data/type", "case"),
        (
            "PATCH",
            f"{c}/relationships/project",
            ProjectRelationship(data=ProjectRelationshipData(id=project.id, type=ProjectResourceType.PROJECT)),
            "/data/type",
            "project",
        ),
        ("POST", "/api/v2/cases/aggregate", aggregate, "/data/type", "aggregate"),
        ("POST", "/api/v2/cases/projects", project_create, "/data/type", "project"),
        ("PATCH", p, {"data": {"type": "project", "attributes": {"name": "x"}}}, "/data/type", "project"),
        (
            "POST",
            "/api/v2/cases/types",
            CaseTypeCreateRequest(
                data=CaseTypeCreate(
                    attributes=CaseTypeResourceAttributes(name="T2"), type=CaseTypeResourceType.CASE_TYPE
                )
            ),
            "/data/type",
            "case_type",
        ),  # fmt: skip
        ("POST", f"{p}/rules", automation.create_body(automation.workflow_rule("other")), "/data/type", "rule"),
        ("PUT", f"{p}/rules/{rule.id}", {"data": {"type": "rule"}}, "/data/type", "rule"),
        ("POST", f"{p}/notification_rules", notification_rules.create_body(), "/data/type", "notification_rule"),
        (
            "PUT",
            f"{p}/notification_rules/{notification.id}",
            notification_rules.update_body(is_enabled=False),
            "/data/type",
            "notification_rule",
        ),
        ("PUT", f"/api/v2/cases/views/{project.id}", view_update_request(name="v"), "/data/type", "view"),
        ("POST", "/api/v2/cases/link", link_request(case.id, other.id), "/data/type", "link"),
        (
            "PUT",
            f"/api/v2/maintenance_windows/{window.id}",
            windows.update_request(name="w"),
            "/data/type",
            "maintenance_window",
        ),  # fmt: skip
        ("PUT", f"{c}/insights", insights_request(("SECURITY_SIGNAL", "s-1", "/x")), "/data/type", "case"),
        ("POST", "/api/v2/users", user, "/data/type", "users"),
        ("POST", "/api/v2/users", user, "/data/relationships/roles/data/0/type", "roles"),
        ("POST", "/api/v2/team", team, "/data/type", "team"),
        ("POST", "/api/v2/team", team, "/data/relationships/users/data/0/type", "users"),
        (
            "POST",
            f"/api/v2/casem/cases/{case.id}/merge",
            {"data": {"type": "merge", "relationships": {"duplicates": {"data": [{"id": other.id, "type": "case"}]}}}},
            "/data/relationships/duplicates/data/0/type",
            "case",
        ),
        (
            "PUT",
            f"/api/v2/cases/types/{case_type.id}/custom_attributes/{case_type.id}",
            {"data": {"type": "custom_attribute"}},
            "/data/type",
            "custom_attribute",
        ),  # fmt: skip
    ]
    for method, path, body, pointer, expected in routes:
        document = body if isinstance(body, dict) else serialized(body)
        assert_refused(org, method, path, document, pointer, expected)
    # Nothing changed: the case kept its title and priority, no comment or link appeared.
    after = org.cases.get_case(case_id=case.id).data.attributes
    assert (after.title, str(after.priority)) == ("Disk full on web-1", "NOT_DEFINED")
    cells = org.http.get(f"{c}/timelines").json()["data"]
    assert [cell["attributes"]["type"] for cell in cells] == ["CASE_CREATED"]
