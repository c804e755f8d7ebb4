"""Single-case updates through the official client: each change is one outbox event, a no-op is none."""

from __future__ import annotations

import uuid

import pytest
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.model.case_assign import CaseAssign
from datadog_api_client.v2.model.case_assign_attributes import CaseAssignAttributes
from datadog_api_client.v2.model.case_assign_request import CaseAssignRequest
from datadog_api_client.v2.model.case_empty import CaseEmpty
from datadog_api_client.v2.model.case_empty_request import CaseEmptyRequest
from datadog_api_client.v2.model.case_object_attributes import CaseObjectAttributes
from datadog_api_client.v2.model.case_priority import CasePriority
from datadog_api_client.v2.model.case_resource_type import CaseResourceType
from datadog_api_client.v2.model.case_status import CaseStatus
from datadog_api_client.v2.model.case_update_attributes import CaseUpdateAttributes
from datadog_api_client.v2.model.case_update_attributes_attributes import CaseUpdateAttributesAttributes
from datadog_api_client.v2.model.case_update_attributes_request import CaseUpdateAttributesRequest
from datadog_api_client.v2.model.case_update_custom_attribute import CaseUpdateCustomAttribute
from datadog_api_client.v2.model.case_update_custom_attribute_request import CaseUpdateCustomAttributeRequest
from datadog_api_client.v2.model.case_update_description import CaseUpdateDescription
from datadog_api_client.v2.model.case_update_description_attributes import CaseUpdateDescriptionAttributes
from datadog_api_client.v2.model.case_update_description_request import CaseUpdateDescriptionRequest
from datadog_api_client.v2.model.case_update_due_date import CaseUpdateDueDate
from datadog_api_client.v2.model.case_update_due_date_attributes import CaseUpdateDueDateAttributes
from datadog_api_client.v2.model.case_update_due_date_request import CaseUpdateDueDateRequest
from datadog_api_client.v2.model.case_update_priority import CaseUpdatePriority
from datadog_api_client.v2.model.case_update_priority_attributes import CaseUpdatePriorityAttributes
from datadog_api_client.v2.model.case_update_priority_request import CaseUpdatePriorityRequest
from datadog_api_client.v2.model.case_update_resolved_reason import CaseUpdateResolvedReason
from datadog_api_client.v2.model.case_update_resolved_reason_attributes import CaseUpdateResolvedReasonAttributes
from datadog_api_client.v2.model.case_update_resolved_reason_request import CaseUpdateResolvedReasonRequest
from datadog_api_client.v2.model.case_update_status import CaseUpdateStatus
from datadog_api_client.v2.model.case_update_status_attributes import CaseUpdateStatusAttributes
from datadog_api_client.v2.model.case_update_status_request import CaseUpdateStatusRequest
from datadog_api_client.v2.model.case_update_title import CaseUpdateTitle
from datadog_api_client.v2.model.case_update_title_attributes import CaseUpdateTitleAttributes
from datadog_api_client.v2.model.case_update_title_request import CaseUpdateTitleRequest
from datadog_api_client.v2.model.custom_attribute_type import CustomAttributeType
from datadog_api_client.v2.model.custom_attribute_value import CustomAttributeValue
from datadog_api_client.v2.model.project_relationship import ProjectRelationship
from datadog_api_client.v2.model.project_relationship_data import ProjectRelationshipData
from datadog_api_client.v2.model.project_resource_type import ProjectResourceType

from tests.api.helpers import add_case_type_with_attribute, add_user, event_types, make_case, make_project, outbox
from tests.support.api_client import OrgClient

CASE = CaseResourceType.CASE


def case_events(org: OrgClient, case_id: str) -> list[str]:
    return event_types([e for e in outbox(org) if e["caseid"] == case_id])


def title(text: str) -> CaseUpdateTitleRequest:
    return CaseUpdateTitleRequest(data=CaseUpdateTitle(attributes=CaseUpdateTitleAttributes(title=text), type=CASE))


def status(value: str) -> CaseUpdateStatusRequest:
    attrs = CaseUpdateStatusAttributes(status=CaseStatus(value))
    return CaseUpdateStatusRequest(data=CaseUpdateStatus(attributes=attrs, type=CASE))


def priority(value: str) -> CaseUpdatePriorityRequest:
    attrs = CaseUpdatePriorityAttributes(priority=CasePriority(value))
    return CaseUpdatePriorityRequest(data=CaseUpdatePriority(attributes=attrs, type=CASE))


def empty() -> CaseEmptyRequest:
    return CaseEmptyRequest(data=CaseEmpty(type=CASE))


def assign(user_id: str) -> CaseAssignRequest:
    return CaseAssignRequest(data=CaseAssign(attributes=CaseAssignAttributes(assignee_id=user_id), type=CASE))


def to_project(project_id: str) -> ProjectRelationship:
    return ProjectRelationship(data=ProjectRelationshipData(id=project_id, type=ProjectResourceType.PROJECT))


def custom_value(kind: str, value: object, is_multi: bool = False) -> CaseUpdateCustomAttributeRequest:
    attrs = CustomAttributeValue(type=CustomAttributeType(kind), is_multi=is_multi, value=value)
    return CaseUpdateCustomAttributeRequest(data=CaseUpdateCustomAttribute(attributes=attrs, type=CASE))


@pytest.fixture
def case(org: OrgClient):
    project = make_project(org, "UPD")
    return make_case(org, project.id, "Disk full on web-1")


def test_title_description_priority_and_status_each_record_one_event(org: OrgClient, case) -> None:
    api = org.cases
    assert api.update_case_title(case_id=case.id, body=title("Disk full on web-2")).data.attributes.title == (
        "Disk full on web-2"
    )
    body = CaseUpdateDescriptionRequest(
        data=CaseUpdateDescription(attributes=CaseUpdateDescriptionAttributes(description="df says 100%"), type=CASE)
    )
    assert api.update_case_description(case_id=case.id, body=body).data.attributes.description == "df says 100%"
    assert str(api.update_priority(case_id=case.id, body=priority("P1")).data.attributes.priority) == "P1"

    closed = api.update_status(case_id=case.id, body=status("CLOSED")).data
    assert str(closed.attributes.status) == "CLOSED"
    assert str(closed.attributes.status_group) == "SG_CLOSED"
    assert closed.attributes.closed_at is not None
    assert closed.relationships.modified_by.data.id == org.user_id
    # status_name is the other member Datadog accepts; reopening clears closed_at.
    reopen = CaseUpdateStatusRequest(
        data=CaseUpdateStatus(attributes=CaseUpdateStatusAttributes(status_name="IN_PROGRESS"), type=CASE)
    )
    reopened = api.update_status(case_id=case.attributes.key, body=reopen).data
    assert str(reopened.attributes.status) == "IN_PROGRESS"
    assert reopened.attributes.closed_at is None

    assert case_events(org, case.id) == [
        "case.created",
        "case.title_changed",
        "case.description_changed",
        "case.priority_changed",
        "case.status_changed",
        "case.status_changed",
    ]
    fetched = api.get_case(case_id=case.id).data.attributes
    assert (fetched.title, str(fetched.priority), str(fetched.status)) == ("Disk full on web-2", "P1", "IN_PROGRESS")


def test_same_value_updates_record_no_event(org: OrgClient, case) -> None:
    api = org.cases
    api.update_case_title(case_id=case.id, body=title(case.attributes.title))
    api.update_priority(case_id=case.id, body=priority("NOT_DEFINED"))
    api.update_status(case_id=case.id, body=status("OPEN"))
    api.unassign_case(case_id=case.id, body=empty())
    api.unarchive_case(case_id=case.id, body=empty())
    api.archive_case(case_id=case.id, body=empty())
    api.archive_case(case_id=case.id, body=empty())
    assert case_events(org, case.id) == ["case.created", "case.archived"]
    assert api.get_case(case_id=case.id).data.attributes.modified_at is not None


def test_attributes_due_date_and_resolved_reason(org: OrgClient, case) -> None:
    api = org.cases
    attrs = CaseObjectAttributes(env=["test"], service=["web-store", "web-api"])
    body = CaseUpdateAttributesRequest(
        data=CaseUpdateAttributes(attributes=CaseUpdateAttributesAttributes(attributes=attrs), type=CASE)
    )
    updated = api.update_attributes(case_id=case.id, body=body).data.attributes
    assert updated.attributes.to_dict() == {"env": ["test"], "service": ["web-store", "web-api"]}
    api.update_attributes(case_id=case.id, body=body)  # same map: no event

    due = CaseUpdateDueDateRequest(
        data=CaseUpdateDueDate(attributes=CaseUpdateDueDateAttributes(due_date="2026-12-31"), type=CASE)
    )
    assert str(api.update_case_due_date(case_id=case.id, body=due).data.attributes.due_date) == "2026-12-31"

    reason = CaseUpdateResolvedReasonRequest(
        data=CaseUpdateResolvedReason(
            attributes=CaseUpdateResolvedReasonAttributes(security_resolved_reason="FALSE_POSITIVE"), type=CASE
        )
    )
    resolved = api.update_case_resolved_reason(case_id=case.id, body=reason).data.attributes
    assert resolved.resolved_reason == "FALSE_POSITIVE"

    cleared = org.http.post(
        f"/api/v2/cases/{case.id}/due_date", json={"data": {"type": "case", "attributes": {"due_date": None}}}
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["data"]["attributes"]["due_date"] is None
    assert case_events(org, case.id) == [
        "case.created",
        "case.attributes_changed",
        "case.due_date_changed",
        "case.resolved_reason_changed",
        "case.due_date_changed",
    ]


def test_assign_and_unassign(org: OrgClient, case) -> None:
    jane = add_user(org, "jane@example.com")
    assigned = org.cases.assign_case(case_id=case.id, body=assign(jane)).data
    assert assigned.relationships.assignee.data.id == jane
    org.cases.assign_case(case_id=case.id, body=assign(jane))  # already hers: no event
    unassigned = org.cases.unassign_case(case_id=case.id, body=empty()).data
    assert unassigned.relationships.assignee.data is None
    assert case_events(org, case.id) == ["case.created", "case.assigned", "case.unassigned"]


def test_assignee_must_be_a_user_of_the_org(org: OrgClient, other_org: OrgClient, case) -> None:
    with pytest.raises(NotFoundException):
        org.cases.assign_case(case_id=case.id, body=assign(other_org.user_id))
    with pytest.raises(ApiException) as err:
        org.cases.assign_case(case_id=case.id, body=assign("invalid-uuid"))
    assert err.value.status == 400
    assert err.value.body["errors"][0]["source"]["pointer"] == "/data/attributes/assignee_id"
    assert case_events(org, case.id) == ["case.created"]


def test_archive_and_unarchive(org: OrgClient, case) -> None:
    archived = org.cases.archive_case(case_id=case.id, body=empty()).data
    assert archived.attributes.archived_at is not None
    restored = org.cases.unarchive_case(case_id=case.id, body=empty()).data
    assert restored.attributes.archived_at is None
    assert case_events(org, case.id) == ["case.created", "case.archived", "case.unarchived"]


def test_custom_attribute_set_and_delete(org: OrgClient) -> None:
    type_id = add_case_type_with_attribute(org, "bands", "TEXT", is_multi=True)
    project = make_project(org, "CUS")
    case = make_case(org, project.id, type_id=type_id)

    updated = org.cases.update_case_custom_attribute(
        case_id=case.id, custom_attribute_key="bands", body=custom_value("TEXT", ["Abba", "The Cure"], is_multi=True)
    ).data
    stored = updated.attributes.custom_attributes["bands"]
    assert (str(stored.type), stored.is_multi, stored.value) == ("TEXT", True, ["Abba", "The Cure"])
    org.cases.update_case_custom_attribute(  # same value: no event
        case_id=case.id, custom_attribute_key="bands", body=custom_value("TEXT", ["Abba", "The Cure"], is_multi=True)
    )

    with pytest.raises(ApiException) as err:  # the config says TEXT: a NUMBER value is refused
        org.cases.update_case_custom_attribute(
            case_id=case.id, custom_attribute_key="bands", body=custom_value("NUMBER", [1.0], is_multi=True)
        )
    assert err.value.status == 400
    with pytest.raises(NotFoundException):
        org.cases.update_case_custom_attribute(
            case_id=case.id, custom_attribute_key="invalid_key", body=custom_value("TEXT", "x")
        )
    with pytest.raises(NotFoundException):
        org.cases.delete_case_custom_attribute(case_id=case.id, custom_attribute_key="invalid_key")

    deleted = org.cases.delete_case_custom_attribute(case_id=case.id, custom_attribute_key="bands").data
    assert "bands" not in (deleted.attributes.custom_attributes or {})
    org.cases.delete_case_custom_attribute(case_id=case.id, custom_attribute_key="bands")  # already gone: no event
    assert case_events(org, case.id) == [
        "case.created",
        "case.custom_attributes_changed",
        "case.custom_attributes_changed",
    ]


def test_custom_attribute_value_is_checked_against_the_config(org: OrgClient) -> None:
    type_id = add_case_type_with_attribute(org, "severity", "SELECT", options=["low", "high"])
    case = make_case(org, make_project(org, "SEL").id, type_id=type_id)
    with pytest.raises(ApiException) as err:
        org.cases.update_case_custom_attribute(
            case_id=case.id, custom_attribute_key="severity", body=custom_value("SELECT", "medium")
        )
    assert err.value.status == 400
    assert "low, high" in err.value.body["errors"][0]["detail"]
    assert err.value.body["errors"][0]["source"]["pointer"] == "/data/attributes/value"
    with pytest.raises(ApiException) as err:  # single-valued: a list is refused
        org.cases.update_case_custom_attribute(
            case_id=case.id, custom_attribute_key="severity", body=custom_value("SELECT", ["low"], is_multi=True)
        )
    assert err.value.status == 400
    ok = org.cases.update_case_custom_attribute(
        case_id=case.id, custom_attribute_key="severity", body=custom_value("SELECT", "high")
    ).data
    assert ok.attributes.custom_attributes["severity"].value == "high"
    assert case_events(org, case.id) == ["case.created", "case.custom_attributes_changed"]


def test_move_to_project_takes_the_next_key_of_the_target(org: OrgClient) -> None:
    source, target = make_project(org, "SRC"), make_project(org, "DST")
    make_case(org, target.id)  # DST-1
    case = make_case(org, source.id)
    moved = org.cases.move_case_to_project(case_id=case.id, body=to_project(target.id)).data
    assert moved.attributes.key == "DST-2"
    assert moved.relationships.project.data.id == target.id
    assert org.cases.get_case(case_id="DST-2").data.id == case.id

    again = org.cases.move_case_to_project(case_id=case.id, body=to_project(target.id)).data  # no-op
    assert again.attributes.key == "DST-2"
    assert make_case(org, target.id).attributes.key == "DST-3"  # the no-op allocated no number
    assert case_events(org, case.id) == ["case.created", "case.moved"]


def test_move_to_unknown_or_foreign_project_is_a_404(org: OrgClient, other_org: OrgClient, case) -> None:
    foreign = make_project(other_org, "FOR")
    for project_id in (foreign.id, str(uuid.uuid4())):
        with pytest.raises(NotFoundException):
            org.cases.move_case_to_project(case_id=case.id, body=to_project(project_id))
    assert make_case(other_org, foreign.id).attributes.key == "FOR-1"
    assert org.cases.get_case(case_id=case.id).data.attributes.key == "UPD-1"
    assert case_events(org, case.id) == ["case.created"]


CUSTOM_BODY = {"type": "TEXT", "is_multi": False, "value": "x"}
OPERATIONS = [
    ("post", "title", {"data": {"type": "case", "attributes": {"title": "x"}}}),
    ("post", "description", {"data": {"type": "case", "attributes": {"description": "x"}}}),
    ("post", "status", {"data": {"type": "case", "attributes": {"status": "CLOSED"}}}),
    ("post", "priority", {"data": {"type": "case", "attributes": {"priority": "P1"}}}),
    ("post", "attributes", {"data": {"type": "case", "attributes": {"attributes": {"a": ["b"]}}}}),
    ("post", "due_date", {"data": {"type": "case", "attributes": {"due_date": "2026-01-01"}}}),
    ("post", "resolved_reason", {"data": {"type": "case", "attributes": {"security_resolved_reason": "x"}}}),
    ("post", "archive", {"data": {"type": "case"}}),
    ("post", "unarchive", {"data": {"type": "case"}}),
    ("post", "unassign", {"data": {"type": "case"}}),
    ("patch", "relationships/project", {"data": {"type": "project", "id": str(uuid.uuid4())}}),
    ("post", "assign", {"data": {"type": "case", "attributes": {"assignee_id": str(uuid.uuid4())}}}),
    ("post", "custom_attributes/bands", {"data": {"type": "case", "attributes": CUSTOM_BODY}}),
    ("delete", "custom_attributes/bands", None),
]


@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS, ids=[op[1] for op in OPERATIONS])
def test_unknown_or_foreign_case_is_a_404(
    org: OrgClient, other_org: OrgClient, method: str, path: str, body: dict
) -> None:
    foreign = make_case(other_org, make_project(other_org, "OTH").id)
    for case_id in (str(uuid.uuid4()), foreign.id, "OTH-1"):
        response = org.http.request(method, f"/api/v2/cases/{case_id}/{path}", json=body)
        assert response.status_code == 404, response.text
        assert response.json()["errors"][0]["status"] == "404"
    assert case_events(other_org, foreign.id) == ["case.created"]


BAD_INPUT = [
    ("title", '{"data": {"type": "case", "attributes": {"title": "x"}', "malformed JSON"),
    ("title", '{"data": {"type": "cases", "attributes": {"title": "x"}}}', "/data/type"),
    ("title", '{"data": {"type": "case", "attributes": {"title": ""}}}', "title must be a non-empty string"),
    ("title", '{"data": {"type": "case", "attributes": {"title": "' + "x" * 256 + '"}}}', "the limit is 255"),
    ("title", '{"data": {"type": "case", "attributes": {"title": "x", "colour": 1}}}', "colour"),
    ("title", '{"data": {"type": "case", "attributes": {}}}', "/data/attributes/title is required"),
    ("title", "", "request body is empty"),
    ("description", '{"data": {"type": "case", "attributes": {"description": 5}}}', "description must be a string"),
    (
        "description",
        '{"data": {"type": "case", "attributes": {"description": "' + "x" * 30_001 + '"}}}',
        "the limit is 30000",
    ),
    ("status", '{"data": {"type": "case", "attributes": {"status": "OPENED"}}}', "must be one of OPEN"),
    ("status", '{"data": {"type": "case", "attributes": {}}}', "status or status_name is required"),
    (
        "status",
        '{"data": {"type": "case", "attributes": {"status": "OPEN", "status_name": "CLOSED"}}}',
        "different statuses",
    ),
    ("priority", '{"data": {"type": "case", "attributes": {"priority": "P1234"}}}', "must be one of"),
    ("attributes", '{"data": {"type": "case", "attributes": {"attributes": {"service": "web"}}}}', "list of strings"),
    ("due_date", '{"data": {"type": "case", "attributes": {"due_date": "31/12/2026"}}}', "due_date"),
    ("due_date", '{"data": {"type": "case", "attributes": {"due_date": "2026-02-30"}}}', "not a calendar date"),
    (
        "resolved_reason",
        '{"data": {"type": "case", "attributes": {"security_resolved_reason": ""}}}',
        "non-empty",
    ),
    ("assign", '{"data": {"type": "case", "attributes": {"assignee_id": "invalid-uuid"}}}', "not a valid UUID"),
    ("archive", '{"data": {"type": "project"}}', "/data/type"),
    ("unassign", '{"data": {"type": "case", "attributes": {}}}', "/data/attributes"),
]


@pytest.mark.parametrize(("path", "body", "fragment"), BAD_INPUT)
def test_bad_update_input_is_a_400_and_changes_nothing(
    org: OrgClient, case, path: str, body: str, fragment: str
) -> None:
    response = org.http.post(
        f"/api/v2/cases/{case.id}/{path}", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["status"] == "400"
    assert fragment in error["detail"] + str(error.get("source", {}))
    assert case_events(org, case.id) == ["case.created"]
    after = org.cases.get_case(case_id=case.id).data.attributes
    assert (after.title, after.modified_at, after.archived_at) == (case.attributes.title, None, None)


def test_bad_move_input_is_a_400(org: OrgClient, case) -> None:
    for body, fragment in (
        ({"data": {"type": "project", "id": "not-a-uuid"}}, "not a valid UUID"),
        ({"data": {"type": "case", "id": str(uuid.uuid4())}}, "/data/type"),
        ({"data": {"type": "project"}}, "/data/id is required"),
    ):
        response = org.http.patch(f"/api/v2/cases/{case.id}/relationships/project", json=body)
        assert response.status_code == 400, response.text
        error = response.json()["errors"][0]
        assert fragment in error["detail"] + str(error.get("source", {}))
    assert case_events(org, case.id) == ["case.created"]
