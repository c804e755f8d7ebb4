from __future__ import annotations

import pytest
from datadog_api_client.exceptions import ApiException, ForbiddenException, NotFoundException
from datadog_api_client.v2.model.project_create import ProjectCreate
from datadog_api_client.v2.model.project_create_attributes import ProjectCreateAttributes
from datadog_api_client.v2.model.project_create_request import ProjectCreateRequest
from datadog_api_client.v2.model.project_resource_type import ProjectResourceType
from datadog_api_client.v2.model.project_update import ProjectUpdate
from datadog_api_client.v2.model.project_update_attributes import ProjectUpdateAttributes
from datadog_api_client.v2.model.project_update_request import ProjectUpdateRequest

from tests.support.api_client import OrgClient, unique_key


def create_project(org: OrgClient, key: str | None = None, name: str = "Security Investigation"):
    body = ProjectCreateRequest(
        data=ProjectCreate(
            attributes=ProjectCreateAttributes(key=key or unique_key(), name=name),
            type=ProjectResourceType.PROJECT,
        )
    )
    return org.cases.create_project(body=body).data


def test_project_lifecycle_through_the_official_client(org: OrgClient) -> None:
    key = unique_key("SEC")
    created = create_project(org, key)
    assert created.attributes.key == key
    assert created.attributes.name == "Security Investigation"

    fetched = org.cases.get_project(project_id=created.id).data
    assert fetched.id == created.id

    listed = org.cases.get_projects().data
    assert [p.id for p in listed] == [created.id]

    update = ProjectUpdateRequest(
        data=ProjectUpdate(attributes=ProjectUpdateAttributes(name="Renamed"), type=ProjectResourceType.PROJECT)
    )
    assert org.cases.update_project(project_id=created.id, body=update).data.attributes.name == "Renamed"

    org.cases.delete_project(project_id=created.id)
    with pytest.raises(NotFoundException):
        org.cases.get_project(project_id=created.id)


def test_duplicate_key_is_a_conflict(org: OrgClient) -> None:
    key = unique_key()
    create_project(org, key)
    with pytest.raises(ApiException) as err:
        create_project(org, key)
    assert err.value.status == 409


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('{"data": {"type": "project", "attributes": {"key": "AB"', "malformed JSON"),
        ('{"data": {"type": "projects", "attributes": {"key": "AB", "name": "x"}}}', "/data/type"),
        ('{"data": {"type": "project", "attributes": {"key": "lower", "name": "x"}}}', "project key"),
        ('{"data": {"type": "project", "attributes": {"key": "CASE", "name": "x"}}}', "cannot be"),
        ('{"data": {"type": "project", "attributes": {"key": "AB", "name": ""}}}', "name"),
        ('{"data": {"type": "project", "attributes": {"key": "AB", "name": "x", "colour": 1}}}', "colour"),
        ('{"data": {"type": "project", "attributes": {"name": "x"}}}', "/data/attributes/key is required"),
    ],
)
def test_bad_project_input_is_a_400_and_changes_nothing(org: OrgClient, body: str, fragment: str) -> None:
    response = org.http.post("/api/v2/cases/projects", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert errors[0]["status"] == "400"
    assert fragment in errors[0]["detail"] + str(errors[0].get("source", {}))
    assert org.http.get("/api/v2/cases/projects").json()["data"] == []


def test_missing_or_wrong_keys_are_forbidden(org: OrgClient) -> None:
    assert org.http.get("/api/v2/cases/projects", headers={"DD-API-KEY": "nope"}).status_code == 403
    response = org.http.get("/api/v2/cases/projects", headers={"DD-APPLICATION-KEY": ""})
    assert response.status_code == 403
    assert response.json() == {"errors": ["Forbidden"]}
    org.api_client.configuration.api_key["appKeyAuth"] = "0" * 40
    with pytest.raises(ForbiddenException):
        org.cases.get_projects()


def test_another_orgs_project_is_a_404(org: OrgClient, other_org: OrgClient) -> None:
    mine = create_project(org)
    with pytest.raises(NotFoundException):
        other_org.cases.get_project(project_id=mine.id)
    assert other_org.cases.get_projects().data == []
    # Keys of one org mixed with the other's are refused, not merged.
    mixed = {"DD-API-KEY": org.creds.api_key, "DD-APPLICATION-KEY": other_org.creds.app_key}
    assert org.http.get("/api/v2/cases/projects", headers=mixed).status_code == 403
