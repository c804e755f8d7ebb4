"""Case links through the official client: create_case_link, list_case_links, delete_case_link."""

from __future__ import annotations

import pytest
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.model.case_link_attributes import CaseLinkAttributes
from datadog_api_client.v2.model.case_link_create import CaseLinkCreate
from datadog_api_client.v2.model.case_link_create_request import CaseLinkCreateRequest
from datadog_api_client.v2.model.case_link_resource_type import CaseLinkResourceType

from tests.api.helpers import event_types, make_case, make_project, outbox
from tests.support.api_client import OrgClient


def link_request(
    parent: str, child: str, relationship: str = "BLOCKS", parent_type: str = "CASE", child_type: str = "CASE"
) -> CaseLinkCreateRequest:
    return CaseLinkCreateRequest(
        data=CaseLinkCreate(
            attributes=CaseLinkAttributes(
                parent_entity_id=parent,
                parent_entity_type=parent_type,
                child_entity_id=child,
                child_entity_type=child_type,
                relationship=relationship,
            ),
            type=CaseLinkResourceType.LINK,
        )
    )


def link(org: OrgClient, parent: str, child: str, relationship: str = "BLOCKS", **types):
    return org.cases.create_case_link(body=link_request(parent, child, relationship, **types)).data


def links_of(org: OrgClient, case_id: str, **kwargs) -> list[str]:
    return [found.id for found in org.cases.list_case_links(entity_type="CASE", entity_id=case_id, **kwargs).data]


def test_link_list_unlink(org: OrgClient) -> None:
    project = make_project(org)
    a, b, c = (make_case(org, project.id, title) for title in ("a", "b", "c"))
    before = len(outbox(org))

    blocks = link(org, a.id, b.id)
    assert str(blocks.type) == "link"
    assert blocks.attributes.to_dict() == {
        "parent_entity_type": "CASE",
        "parent_entity_id": a.id,
        "child_entity_type": "CASE",
        "child_entity_id": b.id,
        "relationship": "BLOCKS",
    }
    # A case may be named by its key; the link holds its id.
    causes = link(org, c.attributes.key, a.id, "CAUSES")
    assert causes.attributes.parent_entity_id == c.id
    incident = link(org, "INC-4711", b.id, "ESCALATES_TO", parent_type="INCIDENT")
    assert (incident.attributes.parent_entity_type, incident.attributes.parent_entity_id) == ("INCIDENT", "INC-4711")

    # Either end counts; the relationship filters.
    assert links_of(org, a.id) == [blocks.id, causes.id]
    assert links_of(org, b.id) == [blocks.id, incident.id]
    assert links_of(org, a.id, relationship="CAUSES") == [causes.id]
    assert links_of(org, a.attributes.key) == [blocks.id, causes.id]
    on_incident = org.cases.list_case_links(entity_type="INCIDENT", entity_id="INC-4711").data
    assert [found.id for found in on_incident] == [incident.id]

    org.cases.delete_case_link(link_id=blocks.id)
    assert links_of(org, a.id) == [causes.id]
    assert links_of(org, b.id) == [incident.id]
    with pytest.raises(NotFoundException):
        org.cases.delete_case_link(link_id=blocks.id)

    events = outbox(org)[before:]
    assert event_types(events) == ["case.link_created"] * 3 + ["case.link_deleted"]
    assert events[0]["caseid"] == a.id and events[0]["subject"] == f"case_link/{blocks.id}"
    assert events[3]["data"]["relationship"] == "BLOCKS"


def test_a_link_is_stated_once(org: OrgClient) -> None:
    project = make_project(org)
    a, b = make_case(org, project.id, "a"), make_case(org, project.id, "b")
    link(org, a.id, b.id, "BLOCKS")
    with pytest.raises(ApiException) as err:
        link(org, a.attributes.key, b.id, "BLOCKS")
    assert err.value.status == 409
    # The converse of a directional link is another link; RELATES_TO is the same both ways.
    assert link(org, b.id, a.id, "BLOCKS").attributes.parent_entity_id == b.id
    link(org, a.id, b.id, "RELATES_TO")
    with pytest.raises(ApiException) as err:
        link(org, b.id, a.id, "RELATES_TO")
    assert err.value.status == 409
    assert len(links_of(org, a.id)) == 3


@pytest.mark.parametrize(
    ("change", "fragment", "pointer"),
    [
        ({"relationship": "LOVES"}, "invalid value 'LOVES'", "/data/attributes/relationship"),
        ({"relationship": "blocks"}, "invalid value 'blocks'", "/data/attributes/relationship"),
        ({"child_entity_type": "TICKET"}, "invalid value 'TICKET'", "/data/attributes/child_entity_type"),
        ({"parent_entity_type": "PAGE", "child_entity_type": "INCIDENT"}, "at least one end", None),
        ({"child_entity_id": "{parent}"}, "cannot be linked to itself", "/data/attributes/child_entity_id"),
        ({"child_entity_id": ""}, "non-empty", "/data/attributes/child_entity_id"),
        ({"relationship": None}, "/data/attributes/relationship", "/data/attributes/relationship"),
    ],
)
def test_bad_link_input_is_a_400_and_links_nothing(org: OrgClient, change: dict, fragment: str, pointer: str | None):
    project = make_project(org)
    a, b = make_case(org, project.id, "a"), make_case(org, project.id, "b")
    attributes = {
        "parent_entity_type": "CASE",
        "parent_entity_id": a.id,
        "child_entity_type": "CASE",
        "child_entity_id": b.id,
        "relationship": "BLOCKS",
        **{k: a.id if v == "{parent}" else v for k, v in change.items()},
    }
    response = org.http.post("/api/v2/cases/link", json={"data": {"type": "link", "attributes": attributes}})
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert fragment in error["detail"]
    if pointer:
        assert error["source"]["pointer"] == pointer
    assert links_of(org, a.id) == [] and links_of(org, b.id) == []


def test_bad_list_and_delete_parameters_are_400s(org: OrgClient) -> None:
    case = make_case(org, make_project(org).id)
    for kwargs in (
        {"entity_type": "TICKET", "entity_id": case.id},
        {"entity_type": "CASE", "entity_id": case.id, "relationship": "LOVES"},
    ):
        with pytest.raises(ApiException) as err:
            org.cases.list_case_links(**kwargs)
        assert err.value.status == 400
    assert org.http.get("/api/v2/cases/link", params={"entity_type": "CASE"}).status_code == 400
    with pytest.raises(ApiException) as err:
        org.cases.delete_case_link(link_id="not-a-uuid")
    assert err.value.status == 400


def test_another_orgs_cases_and_links_are_not_found(org: OrgClient, other_org: OrgClient) -> None:
    project = make_project(org)
    a, b = make_case(org, project.id, "a"), make_case(org, project.id, "b")
    theirs = make_case(other_org, make_project(other_org).id, "theirs")
    mine = link(org, a.id, b.id)
    for call in (
        lambda: other_org.cases.delete_case_link(link_id=mine.id),
        lambda: other_org.cases.list_case_links(entity_type="CASE", entity_id=a.id),
        lambda: link(other_org, theirs.id, a.id),  # a case of its own linked to one of another org
        lambda: link(other_org, a.attributes.key, theirs.id),
    ):
        with pytest.raises(NotFoundException):
            call()
    assert links_of(org, a.id) == [mine.id]
    assert links_of(other_org, theirs.id) == []
    assert other_org.http.get("/api/v2/cases/link").json()["data"] == []
