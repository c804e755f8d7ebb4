"""bulk_update_cases through the official client: one action on many cases, all or nothing."""

from __future__ import annotations

import uuid

import pytest
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.model.case_bulk_action_type import CaseBulkActionType
from datadog_api_client.v2.model.case_bulk_resource_type import CaseBulkResourceType
from datadog_api_client.v2.model.case_bulk_update_request import CaseBulkUpdateRequest
from datadog_api_client.v2.model.case_bulk_update_request_attributes import CaseBulkUpdateRequestAttributes
from datadog_api_client.v2.model.case_bulk_update_request_data import CaseBulkUpdateRequestData

from tests.api.helpers import add_user, event_types, make_case, make_project, outbox
from tests.support.api_client import OrgClient


def bulk(case_ids: list[str], action: str, payload: dict[str, str] | None = None) -> CaseBulkUpdateRequest:
    attrs = CaseBulkUpdateRequestAttributes(case_ids=case_ids, type=CaseBulkActionType(action))
    if payload is not None:
        attrs.payload = payload
    return CaseBulkUpdateRequest(data=CaseBulkUpdateRequestData(attributes=attrs, type=CaseBulkResourceType.BULK))


def changes(org: OrgClient) -> list[str]:
    """Outbox events of case changes (creations left out)."""
    return [t for t in event_types(outbox(org)) if t.startswith("case.") and t != "case.created"]


@pytest.fixture
def three(org: OrgClient) -> list:
    project = make_project(org, "BLK")
    return [make_case(org, project.id, f"case {n}") for n in range(3)]


def test_each_action_applies_to_every_case(org: OrgClient, three: list) -> None:
    ids = [c.id for c in three]
    jane = add_user(org, "jane@example.com")
    target = make_project(org, "DST")

    org.cases.bulk_update_cases(body=bulk(ids, "priority", {"priority": "P2"}))
    org.cases.bulk_update_cases(body=bulk(ids, "status", {"status": "IN_PROGRESS"}))
    org.cases.bulk_update_cases(body=bulk(ids, "assign", {"assignee_id": jane}))
    cases = [org.cases.get_case(case_id=i).data for i in ids]
    assert {(str(c.attributes.priority), str(c.attributes.status)) for c in cases} == {("P2", "IN_PROGRESS")}
    assert {c.relationships.assignee.data.id for c in cases} == {jane}

    org.cases.bulk_update_cases(body=bulk(ids, "unassign"))
    org.cases.bulk_update_cases(body=bulk(ids, "archive"))
    assert all(org.cases.get_case(case_id=i).data.attributes.archived_at for i in ids)
    org.cases.bulk_update_cases(body=bulk(ids, "unarchive"))
    org.cases.bulk_update_cases(body=bulk(ids, "update_project", {"project_id": target.id}))
    moved = [org.cases.get_case(case_id=i).data for i in ids]
    assert [c.attributes.key for c in moved] == ["DST-1", "DST-2", "DST-3"]
    assert all(c.relationships.assignee.data is None and c.attributes.archived_at is None for c in moved)

    kinds = [
        "case.priority_changed",
        "case.status_changed",
        "case.assigned",
        "case.unassigned",
        "case.archived",
        "case.unarchived",
        "case.moved",
    ]
    assert changes(org) == [kind for kind in kinds for _ in ids]


def test_cases_already_in_the_wanted_state_record_nothing(org: OrgClient, three: list) -> None:
    org.cases.bulk_update_cases(body=bulk([three[0].id], "priority", {"priority": "P1"}))
    # Duplicated ids are applied once; the case already at P1 records nothing.
    org.cases.bulk_update_cases(body=bulk([c.id for c in three] + [three[1].id], "priority", {"priority": "P1"}))
    assert changes(org) == ["case.priority_changed"] * 3


@pytest.mark.parametrize(
    ("action", "payload", "fragment"),
    [
        ("priority", {"priority": "P9"}, "must be one of"),
        ("priority", None, "needs payload.priority"),
        ("priority", {"priority": "P1", "status": "OPEN"}, "'status' is not used by the 'priority' action"),
        ("status", {"status": "OPENED"}, "must be one of"),
        ("assign", {"assignee_id": "nobody"}, "not a valid UUID"),
        ("update_project", {"project_id": "SEC"}, "not a valid UUID"),
        ("jira", None, "not supported yet"),
        ("servicenow", None, "not supported yet"),
        ("linear", None, "not supported yet"),
    ],
)
def test_bad_action_is_a_400_and_changes_nothing(
    org: OrgClient, three: list, action: str, payload: dict | None, fragment: str
) -> None:
    with pytest.raises(ApiException) as err:
        org.cases.bulk_update_cases(body=bulk([c.id for c in three], action, payload))
    assert err.value.status == 400
    assert fragment in err.value.body["errors"][0]["detail"]
    assert changes(org) == []


def test_one_unknown_case_fails_the_whole_batch(org: OrgClient, other_org: OrgClient, three: list) -> None:
    foreign = make_case(other_org, make_project(other_org, "OTH").id)
    for stranger in (str(uuid.uuid4()), foreign.id):
        ids = [three[0].id, three[1].id, stranger, three[2].id]
        with pytest.raises(NotFoundException):
            org.cases.bulk_update_cases(body=bulk(ids, "status", {"status": "CLOSED"}))
    assert changes(org) == []
    assert changes(other_org) == []
    assert {str(org.cases.get_case(case_id=c.id).data.attributes.status) for c in three} == {"OPEN"}


def test_unknown_assignee_or_project_fails_the_whole_batch(org: OrgClient, other_org: OrgClient, three: list) -> None:
    ids = [c.id for c in three]
    with pytest.raises(NotFoundException):
        org.cases.bulk_update_cases(body=bulk(ids, "assign", {"assignee_id": other_org.user_id}))
    foreign_project = make_project(other_org, "FOR")
    with pytest.raises(NotFoundException):
        org.cases.bulk_update_cases(body=bulk(ids, "update_project", {"project_id": foreign_project.id}))
    assert changes(org) == []
    assert make_case(other_org, foreign_project.id).attributes.key == "FOR-1"  # its counter was not touched


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('{"data": {"type": "bulk", "attributes": {"case_ids": []', "malformed JSON"),
        ('{"data": {"type": "case", "attributes": {"case_ids": [], "type": "archive"}}}', "/data/type"),
        ('{"data": {"type": "bulk", "attributes": {"case_ids": [], "type": "archive"}}}', "at least one case"),
        ('{"data": {"type": "bulk", "attributes": {"case_ids": ["case-id-1"], "type": "archive"}}}', "case-id-1"),
        ('{"data": {"type": "bulk", "attributes": {"case_ids": [7], "type": "archive"}}}', "not a valid UUID"),
        ('{"data": {"type": "bulk", "attributes": {"type": "archive"}}}', "case_ids is required"),
        ('{"data": {"type": "bulk", "attributes": {"case_ids": ["x"], "type": "delete"}}}', "invalid bulk action"),
        ('{"data": {"type": "bulk", "attributes": {"case_ids": ["x"], "type": "archive", "x": 1}}}', "/x"),
    ],
)
def test_bad_bulk_documents_are_a_400(org: OrgClient, three: list, body: str, fragment: str) -> None:
    response = org.http.post("/api/v2/cases/bulk", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert fragment in error["detail"] + str(error.get("source", {}))
    assert changes(org) == []


def test_too_many_ids_is_a_400(org: OrgClient, three: list) -> None:
    ids = [three[0].id] + [str(uuid.uuid4()) for _ in range(100)]
    response = org.http.post(
        "/api/v2/cases/bulk", json={"data": {"type": "bulk", "attributes": {"case_ids": ids, "type": "archive"}}}
    )
    assert response.status_code == 400
    assert "the limit is 100" in response.json()["errors"][0]["detail"]
    assert changes(org) == []
