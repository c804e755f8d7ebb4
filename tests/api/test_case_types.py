from __future__ import annotations

import pytest
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.model.case_type_resource_attributes import CaseTypeResourceAttributes
from datadog_api_client.v2.model.case_type_resource_type import CaseTypeResourceType
from datadog_api_client.v2.model.case_type_update import CaseTypeUpdate
from datadog_api_client.v2.model.case_type_update_request import CaseTypeUpdateRequest

from casem.domain.cases import STANDARD_TYPE_ID
from tests.api.helpers import make_case, make_case_type, make_project
from tests.support.api_client import OrgClient


def update_request(name: str, **attrs: str) -> CaseTypeUpdateRequest:
    return CaseTypeUpdateRequest(
        data=CaseTypeUpdate(
            attributes=CaseTypeResourceAttributes(name=name, **attrs), type=CaseTypeResourceType.CASE_TYPE
        )
    )


def test_case_type_lifecycle_through_the_official_client(org: OrgClient) -> None:
    listed = org.types.get_all_case_types().data
    assert [(t.id, t.attributes.name) for t in listed] == [(STANDARD_TYPE_ID, "STANDARD")]

    created = make_case_type(org, "Investigation", "Investigations done in case management", "👑")
    assert str(created.type) == "case_type"
    assert created.attributes.name == "Investigation"
    assert created.attributes.emoji == "👑"
    assert created.attributes.deleted_at is None
    assert [t.id for t in org.types.get_all_case_types().data] == [STANDARD_TYPE_ID, created.id]

    updated = org.types.update_case_type(
        case_type_id=created.id, body=update_request("Security incident", emoji="🕵🏻\u200d♂️")
    ).data
    assert (updated.attributes.name, updated.attributes.emoji) == ("Security incident", "🕵🏻\u200d♂️")
    # PUT changes only what it carries: the description is kept.
    assert updated.attributes.description == "Investigations done in case management"

    org.types.delete_case_type(case_type_id=created.id)
    assert [t.id for t in org.types.get_all_case_types().data] == [STANDARD_TYPE_ID]
    with pytest.raises(NotFoundException):
        org.types.update_case_type(case_type_id=created.id, body=update_request("Again"))
    with pytest.raises(NotFoundException):
        org.types.delete_case_type(case_type_id=created.id)


def test_a_custom_type_can_be_used_by_cases_until_deleted(org: OrgClient) -> None:
    case_type = make_case_type(org, "Bug")
    project = make_project(org)
    case = make_case(org, project.id, type_id=case_type.id)
    assert case.attributes.type_id == case_type.id
    org.types.delete_case_type(case_type_id=case_type.id)
    # The soft-deleted type is no longer usable for new cases, and the existing case keeps it.
    with pytest.raises(NotFoundException):
        make_case(org, project.id, type_id=case_type.id)
    assert org.cases.get_case(case_id=case.id).data.attributes.type_id == case_type.id


@pytest.mark.parametrize(
    ("attributes", "fragment"),
    [
        ({"name": "Investigation", "emoji": "notanemoji"}, "not an emoji"),
        ({"name": ""}, "name"),
        ({"name": "x" * 256}, "limit is 255"),
        ({"emoji": "👑"}, "name"),
        ({"name": "Investigation", "colour": "red"}, "colour"),
        ({"name": "Investigation", "description": 7}, "description"),
    ],
)
def test_bad_case_type_input_is_a_400(org: OrgClient, attributes: dict, fragment: str) -> None:
    response = org.http.post("/api/v2/cases/types", json={"data": {"type": "case_type", "attributes": attributes}})
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert fragment in error["detail"] + str(error.get("source", {}))
    assert [t["id"] for t in org.http.get("/api/v2/cases/types").json()["data"]] == [STANDARD_TYPE_ID]


def test_the_standard_type_cannot_be_changed_or_deleted(org: OrgClient) -> None:
    with pytest.raises(ApiException) as err:
        org.types.update_case_type(case_type_id=STANDARD_TYPE_ID, body=update_request("Mine now"))
    assert err.value.status == 400
    with pytest.raises(ApiException) as err:
        org.types.delete_case_type(case_type_id=STANDARD_TYPE_ID)
    assert err.value.status == 400
    assert org.types.get_all_case_types().data[0].attributes.name == "STANDARD"


def test_malformed_case_type_id_is_a_400(org: OrgClient) -> None:
    response = org.http.delete("/api/v2/cases/types/not-an-uuid")
    assert response.status_code == 400
    assert "not a valid UUID" in response.json()["errors"][0]["detail"]


def test_another_orgs_case_type_is_a_404(org: OrgClient, other_org: OrgClient) -> None:
    mine = make_case_type(org, "Private")
    assert [t.id for t in other_org.types.get_all_case_types().data] == [STANDARD_TYPE_ID]
    with pytest.raises(NotFoundException):
        other_org.types.update_case_type(case_type_id=mine.id, body=update_request("Taken"))
    with pytest.raises(NotFoundException):
        other_org.types.delete_case_type(case_type_id=mine.id)
    assert [t.attributes.name for t in org.types.get_all_case_types().data] == ["STANDARD", "Private"]
