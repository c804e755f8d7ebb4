from __future__ import annotations

import pytest
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.model.custom_attribute_config_resource_type import CustomAttributeConfigResourceType
from datadog_api_client.v2.model.custom_attribute_config_update import CustomAttributeConfigUpdate
from datadog_api_client.v2.model.custom_attribute_config_update_attributes import (
    CustomAttributeConfigUpdateAttributes,
)
from datadog_api_client.v2.model.custom_attribute_config_update_request import CustomAttributeConfigUpdateRequest
from datadog_api_client.v2.model.custom_attribute_select_option import CustomAttributeSelectOption
from datadog_api_client.v2.model.custom_attribute_type import CustomAttributeType
from datadog_api_client.v2.model.custom_attribute_type_data import CustomAttributeTypeData

from tests.api.helpers import make_case, make_case_type, make_custom_attribute, make_project
from tests.support.api_client import OrgClient


def update_request(**attrs) -> CustomAttributeConfigUpdateRequest:
    return CustomAttributeConfigUpdateRequest(
        data=CustomAttributeConfigUpdate(
            attributes=CustomAttributeConfigUpdateAttributes(**attrs),
            type=CustomAttributeConfigResourceType.CUSTOM_ATTRIBUTE,
        )
    )


def options(*values: str) -> CustomAttributeTypeData:
    return CustomAttributeTypeData(options=[CustomAttributeSelectOption(value=v) for v in values])


def test_custom_attribute_lifecycle_through_the_official_client(org: OrgClient) -> None:
    case_type = make_case_type(org, "Incident")
    region = make_custom_attribute(org, case_type.id, "region", "NUMBER", is_multi=True, description="AWS region")
    assert str(region.type) == "custom_attribute"
    attrs = region.attributes
    assert (attrs.case_type_id, attrs.key, str(attrs.type), attrs.is_multi) == (case_type.id, "region", "NUMBER", True)
    assert attrs.display_name == "Region"

    link = make_custom_attribute(org, case_type.id, "runbook", "URL")
    by_type = org.attributes.get_all_custom_attribute_configs_by_case_type(case_type_id=case_type.id).data
    assert [c.id for c in by_type] == [region.id, link.id]

    updated = org.attributes.update_custom_attribute_config(
        case_type_id=case_type.id,
        custom_attribute_id=region.id,
        body=update_request(
            display_name="AWS Region",
            description="Updated description.",
            type=CustomAttributeType.SELECT,
            type_data=options("us-east-1", "eu-west-1"),
        ),
    ).data
    assert updated.attributes.display_name == "AWS Region"
    assert str(updated.attributes.type) == "SELECT"
    assert updated.attributes.type_data == {"options": [{"value": "us-east-1"}, {"value": "eu-west-1"}]}
    assert updated.attributes.key == "region"

    org.attributes.delete_custom_attribute_config(case_type_id=case_type.id, custom_attribute_id=link.id)
    remaining = org.attributes.get_all_custom_attribute_configs_by_case_type(case_type_id=case_type.id).data
    assert [c.id for c in remaining] == [region.id]
    with pytest.raises(NotFoundException):
        org.attributes.delete_custom_attribute_config(case_type_id=case_type.id, custom_attribute_id=link.id)
    # A deleted config frees its key.
    assert make_custom_attribute(org, case_type.id, "runbook", "TEXT").attributes.key == "runbook"


def test_all_custom_attributes_span_the_orgs_case_types(org: OrgClient, other_org: OrgClient) -> None:
    incident, bug = make_case_type(org, "Incident"), make_case_type(org, "Bug")
    a = make_custom_attribute(org, incident.id, "severity", "TEXT")
    b = make_custom_attribute(org, bug.id, "severity", "TEXT")  # same key, other type: allowed
    c = make_custom_attribute(org, bug.id, "component", "SELECT", is_multi=True)
    everything = org.attributes.get_all_custom_attributes().data
    assert [(x.id, x.attributes.case_type_id) for x in everything] == [
        (a.id, incident.id),
        (b.id, bug.id),
        (c.id, bug.id),
    ]
    assert other_org.attributes.get_all_custom_attributes().data == []


def test_keys_are_unique_per_case_type(org: OrgClient) -> None:
    case_type = make_case_type(org)
    make_custom_attribute(org, case_type.id, "region")
    with pytest.raises(ApiException) as err:
        make_custom_attribute(org, case_type.id, "region", "NUMBER")
    assert err.value.status == 409
    assert len(org.attributes.get_all_custom_attribute_configs_by_case_type(case_type_id=case_type.id).data) == 1


def test_unknown_case_type_is_a_404_and_bad_ids_a_400(org: OrgClient, other_org: OrgClient) -> None:
    with pytest.raises(NotFoundException):
        make_custom_attribute(org, "9fd476d7-a955-454a-851d-980c655c02d3", "region")
    theirs = make_case_type(other_org)
    with pytest.raises(NotFoundException):
        make_custom_attribute(org, theirs.id, "region")
    with pytest.raises(NotFoundException):
        org.attributes.get_all_custom_attribute_configs_by_case_type(case_type_id=theirs.id)
    mine = make_case_type(org)
    response = org.http.delete(f"/api/v2/cases/types/{mine.id}/custom_attributes/not-an-uuid")
    assert response.status_code == 400
    assert org.http.get("/api/v2/cases/types/not-an-uuid/custom_attributes").status_code == 400


def test_another_orgs_config_is_a_404(org: OrgClient, other_org: OrgClient) -> None:
    theirs_type = make_case_type(other_org)
    theirs = make_custom_attribute(other_org, theirs_type.id, "secret")
    mine_type = make_case_type(org)
    for type_id in (theirs_type.id, mine_type.id):
        with pytest.raises(NotFoundException):
            org.attributes.update_custom_attribute_config(
                case_type_id=type_id, custom_attribute_id=theirs.id, body=update_request(display_name="x")
            )
        with pytest.raises(NotFoundException):
            org.attributes.delete_custom_attribute_config(case_type_id=type_id, custom_attribute_id=theirs.id)
    assert other_org.attributes.get_all_custom_attributes().data[0].attributes.display_name == "Secret"


@pytest.mark.parametrize(
    ("attributes", "fragment"),
    [
        ({"display_name": "AWS Region", "is_multi": True, "key": "region", "type": "FLOAT"}, "/data/attributes/type"),
        ({"display_name": "AWS Region", "is_multi": True, "key": "Region", "type": "TEXT"}, "lower-case"),
        ({"display_name": "", "is_multi": False, "key": "region", "type": "TEXT"}, "display_name"),
        ({"display_name": "R", "key": "region", "type": "TEXT"}, "is_multi is required"),
        (
            {
                "display_name": "R",
                "is_multi": False,
                "key": "r",
                "type": "TEXT",
                "type_data": {"options": [{"value": "a"}]},
            },
            "SELECT attributes only",
        ),
        (
            {
                "display_name": "R",
                "is_multi": False,
                "key": "r",
                "type": "SELECT",
                "type_data": {"options": [{"value": "a"}, {"value": "a"}]},
            },
            "listed twice",
        ),
    ],
)
def test_bad_custom_attribute_input_is_a_400(org: OrgClient, attributes: dict, fragment: str) -> None:
    case_type = make_case_type(org)
    response = org.http.post(
        f"/api/v2/cases/types/{case_type.id}/custom_attributes",
        json={"data": {"type": "custom_attribute", "attributes": attributes}},
    )
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert fragment in error["detail"] + str(error.get("source", {}))
    assert org.attributes.get_all_custom_attributes().data == []


def test_select_options_given_at_creation_constrain_case_values(org: OrgClient) -> None:
    case_type = make_case_type(org)
    make_custom_attribute(
        org, case_type.id, "region", "SELECT", type_data={"options": [{"value": "us-east-1"}, {"value": "eu-west-1"}]}
    )
    project = make_project(org)
    case = make_case(
        org,
        project.id,
        type_id=case_type.id,
        custom_attributes={"region": {"type": "SELECT", "is_multi": False, "value": "eu-west-1"}},
    )
    assert case.attributes.custom_attributes["region"].value == "eu-west-1"
    with pytest.raises(ApiException) as err:
        make_case(
            org,
            project.id,
            type_id=case_type.id,
            custom_attributes={"region": {"type": "SELECT", "is_multi": False, "value": "mars-1"}},
        )
    assert err.value.status == 400
