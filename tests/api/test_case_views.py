"""Case views through the official client: create_case_view, get_case_view, list_case_views,
update_case_view, delete_case_view."""

from __future__ import annotations

import uuid

import pytest
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.model.case_view_create import CaseViewCreate
from datadog_api_client.v2.model.case_view_create_attributes import CaseViewCreateAttributes
from datadog_api_client.v2.model.case_view_create_request import CaseViewCreateRequest
from datadog_api_client.v2.model.case_view_resource_type import CaseViewResourceType
from datadog_api_client.v2.model.case_view_update import CaseViewUpdate
from datadog_api_client.v2.model.case_view_update_attributes import CaseViewUpdateAttributes
from datadog_api_client.v2.model.case_view_update_request import CaseViewUpdateRequest

from tests.api.helpers import event_types, make_project, outbox
from tests.support.api_client import OrgClient

NOTIFICATION_RULE = {
    "triggers": [{"type": "CASE_CREATED"}],
    "recipients": [{"type": "EMAIL", "data": {"email": "oncall@example.com"}}],
}


def create_view(org: OrgClient, project_id: str, name: str = "Open bugs", query: str = "status:open", **extra):
    body = CaseViewCreateRequest(
        data=CaseViewCreate(
            attributes=CaseViewCreateAttributes(name=name, project_id=project_id, query=query, **extra),
            type=CaseViewResourceType.VIEW,
        )
    )
    return org.cases.create_case_view(body=body).data


def update_request(**attrs) -> CaseViewUpdateRequest:
    return CaseViewUpdateRequest(
        data=CaseViewUpdate(attributes=CaseViewUpdateAttributes(**attrs), type=CaseViewResourceType.VIEW)
    )


def notification_rule(org: OrgClient, project_id: str) -> str:
    response = org.http.post(
        f"/api/v2/cases/projects/{project_id}/notification_rules",
        json={"data": {"type": "notification_rule", "attributes": NOTIFICATION_RULE}},
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def test_view_lifecycle_through_the_official_client(org: OrgClient) -> None:
    project = make_project(org)
    other_project = make_project(org)
    before = len(outbox(org))

    view = create_view(org, project.id, query='status:(open OR in_progress) priority:P1 "disk full"')
    assert str(view.type) == "view"
    assert view.attributes.name == "Open bugs"
    assert view.attributes.query == 'status:(open OR in_progress) priority:P1 "disk full"'
    assert view.attributes.created_at is not None
    assert view.relationships.project.data.id == project.id
    assert view.relationships.created_by.data.id == org.user_id
    elsewhere = create_view(org, other_project.id, name="Elsewhere", query="")  # the empty query: every case

    fetched = org.cases.get_case_view(view_id=view.id).data
    assert (fetched.id, fetched.attributes.query) == (view.id, view.attributes.query)
    assert [v.id for v in org.cases.list_case_views(project_id=project.id).data] == [view.id]
    assert [v.id for v in org.cases.list_case_views(project_id=other_project.id).data] == [elsewhere.id]

    updated = org.cases.update_case_view(view_id=view.id, body=update_request(name="P1 bugs", query="priority:P1")).data
    assert (updated.attributes.name, updated.attributes.query) == ("P1 bugs", "priority:P1")
    assert updated.attributes.modified_at is not None
    assert updated.relationships.modified_by.data.id == org.user_id
    # Only the members sent change.
    renamed = org.cases.update_case_view(view_id=view.id, body=update_request(name="Renamed")).data
    assert (renamed.attributes.name, renamed.attributes.query) == ("Renamed", "priority:P1")
    assert org.cases.get_case_view(view_id=view.id).data.attributes.name == "Renamed"

    org.cases.delete_case_view(view_id=view.id)
    with pytest.raises(NotFoundException):
        org.cases.get_case_view(view_id=view.id)
    assert org.cases.list_case_views(project_id=project.id).data == []

    events = [e for e in outbox(org)[before:] if e["data"].get("project_id") == project.id]
    assert event_types(events) == ["case_view.created", "case_view.updated", "case_view.updated", "case_view.deleted"]
    assert events[1]["data"]["changes"] == {"name": "P1 bugs", "query": "priority:P1"}
    assert {e["subject"] for e in events} == {f"case_view/{view.id}"}


def test_a_view_can_name_a_notification_rule_of_its_project(org: OrgClient) -> None:
    project, other_project = make_project(org), make_project(org)
    rule_id = notification_rule(org, project.id)
    view = create_view(org, project.id, np_rule_id=rule_id)
    assert view.attributes.np_rule_id == rule_id

    # A rule of another project is not this view's to name.
    foreign_rule = notification_rule(org, other_project.id)
    with pytest.raises(NotFoundException) as err:
        org.cases.update_case_view(view_id=view.id, body=update_request(np_rule_id=foreign_rule))
    assert foreign_rule in str(err.value.body)
    with pytest.raises(NotFoundException):
        create_view(org, project.id, np_rule_id=str(uuid.uuid4()))

    # null detaches it.
    response = org.http.put(
        f"/api/v2/cases/views/{view.id}", json={"data": {"type": "view", "attributes": {"np_rule_id": None}}}
    )
    assert response.status_code == 200, response.text
    assert "np_rule_id" not in response.json()["data"]["attributes"]


@pytest.mark.parametrize(
    ("attributes", "fragment", "pointer"),
    [
        ({"name": "v", "query": "status:(open"}, "query syntax error", "/data/attributes/query"),
        ({"name": "v", "query": "a AND"}, "query syntax error", "/data/attributes/query"),
        ({"name": "", "query": "status:open"}, "name must be a non-empty string", "/data/attributes/name"),
        ({"name": "v"}, "/data/attributes/query is required", "/data/attributes/query"),
        ({"name": "v", "query": "", "colour": "red"}, "not a known field", "/data/attributes/colour"),
    ],
)
def test_bad_view_input_is_a_400_and_creates_nothing(org: OrgClient, attributes: dict, fragment: str, pointer: str):
    project = make_project(org)
    body = {"data": {"type": "view", "attributes": {"project_id": project.id, **attributes}}}
    response = org.http.post("/api/v2/cases/views", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert fragment in error["detail"]
    assert error["source"]["pointer"] == pointer
    assert org.cases.list_case_views(project_id=project.id).data == []


def test_bad_updates_and_ids_are_400s(org: OrgClient) -> None:
    view = create_view(org, make_project(org).id)
    with pytest.raises(ApiException) as err:
        org.cases.update_case_view(view_id=view.id, body=update_request(query="status:"))
    assert err.value.status == 400 and "/data/attributes/query" in str(err.value.body)
    wrong_type = {"data": {"type": "project", "attributes": {"name": "x"}}}
    assert org.http.put(f"/api/v2/cases/views/{view.id}", json=wrong_type).status_code == 400
    assert org.cases.get_case_view(view_id=view.id).data.attributes.query == "status:open"
    for call in (org.cases.get_case_view, org.cases.delete_case_view):
        with pytest.raises(ApiException) as err:
            call(view_id="not-a-uuid")
        assert err.value.status == 400


def test_another_orgs_views_and_projects_are_not_found(org: OrgClient, other_org: OrgClient) -> None:
    project = make_project(org)
    view = create_view(org, project.id)
    for call in (
        lambda: other_org.cases.get_case_view(view_id=view.id),
        lambda: other_org.cases.update_case_view(view_id=view.id, body=update_request(name="mine")),
        lambda: other_org.cases.delete_case_view(view_id=view.id),
        lambda: other_org.cases.list_case_views(project_id=project.id),
        lambda: create_view(other_org, project.id),
    ):
        with pytest.raises(NotFoundException):
            call()
    assert org.cases.get_case_view(view_id=view.id).data.attributes.name == "Open bugs"
    assert other_org.http.get("/api/v2/cases/views").json()["data"] == []
