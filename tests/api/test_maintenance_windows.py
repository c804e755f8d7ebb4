"""Maintenance windows through the official client: create_maintenance_window, list_maintenance_windows,
update_maintenance_window, delete_maintenance_window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.model.maintenance_window_create import MaintenanceWindowCreate
from datadog_api_client.v2.model.maintenance_window_create_attributes import MaintenanceWindowCreateAttributes
from datadog_api_client.v2.model.maintenance_window_create_request import MaintenanceWindowCreateRequest
from datadog_api_client.v2.model.maintenance_window_resource_type import MaintenanceWindowResourceType
from datadog_api_client.v2.model.maintenance_window_update import MaintenanceWindowUpdate
from datadog_api_client.v2.model.maintenance_window_update_attributes import MaintenanceWindowUpdateAttributes
from datadog_api_client.v2.model.maintenance_window_update_request import MaintenanceWindowUpdateRequest

from tests.api.helpers import event_types, outbox
from tests.support.api_client import OrgClient

START = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
WINDOW = "maintenance_window"


def create_window(
    org: OrgClient,
    name: str = "Weekly maintenance",
    query: str = "project:SEC",
    start: datetime = START,
    hours: int = 6,
):
    body = MaintenanceWindowCreateRequest(
        data=MaintenanceWindowCreate(
            attributes=MaintenanceWindowCreateAttributes(
                name=name, query=query, start_at=start, end_at=start + timedelta(hours=hours)
            ),
            type=MaintenanceWindowResourceType.MAINTENANCE_WINDOW,
        )
    )
    return org.cases.create_maintenance_window(body=body).data


def update_request(**attrs) -> MaintenanceWindowUpdateRequest:
    return MaintenanceWindowUpdateRequest(
        data=MaintenanceWindowUpdate(
            attributes=MaintenanceWindowUpdateAttributes(**attrs), type=MaintenanceWindowResourceType.MAINTENANCE_WINDOW
        )
    )


def test_window_lifecycle_through_the_official_client(org: OrgClient) -> None:
    before = len(outbox(org))
    later = create_window(org, "Later", start=START + timedelta(days=7))
    # An offset other than UTC is the same instant, answered in UTC.
    window = create_window(org, start=datetime(2026, 6, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))))
    assert str(window.type) == WINDOW
    attrs = window.attributes
    assert (attrs.name, attrs.query) == ("Weekly maintenance", "project:SEC")
    assert (attrs.start_at, attrs.end_at) == (START, START + timedelta(hours=6))
    assert attrs.created_by == org.user_id and "updated_by" not in attrs.to_dict()

    # Listed by start time.
    assert [w.id for w in org.cases.list_maintenance_windows().data] == [window.id, later.id]

    moved = org.cases.update_maintenance_window(
        maintenance_window_id=window.id, body=update_request(end_at=START + timedelta(hours=8), query="priority:P1")
    ).data
    assert (moved.attributes.start_at, moved.attributes.end_at) == (START, START + timedelta(hours=8))
    assert (moved.attributes.name, moved.attributes.query) == ("Weekly maintenance", "priority:P1")
    assert moved.attributes.updated_by == org.user_id
    [listed] = [w for w in org.cases.list_maintenance_windows().data if w.id == window.id]
    assert listed.attributes.end_at == START + timedelta(hours=8)

    org.cases.delete_maintenance_window(maintenance_window_id=window.id)
    assert [w.id for w in org.cases.list_maintenance_windows().data] == [later.id]
    with pytest.raises(NotFoundException):
        org.cases.delete_maintenance_window(maintenance_window_id=window.id)

    events = outbox(org)[before:]
    assert event_types(events) == [f"{WINDOW}.created"] * 2 + [f"{WINDOW}.updated", f"{WINDOW}.deleted"]
    assert events[2]["data"]["changes"] == {"end_at": "2026-06-01T08:00:00+00:00", "query": "priority:P1"}


@pytest.mark.parametrize(
    ("attributes", "fragment", "pointer"),
    [
        ({"end_at": "2026-06-01T00:00:00Z"}, "must be after start_at", "/data/attributes/end_at"),
        ({"end_at": "2026-05-31T00:00:00Z"}, "must be after start_at", "/data/attributes/end_at"),
        ({"query": "status:(open"}, "query syntax error", "/data/attributes/query"),
        ({"name": " "}, "name must be a non-empty string", "/data/attributes/name"),
        ({"start_at": "next tuesday"}, "/data/attributes/start_at", "/data/attributes/start_at"),
        ({"end_at": None}, "/data/attributes/end_at", "/data/attributes/end_at"),
    ],
)
def test_bad_window_input_is_a_400_and_creates_nothing(org: OrgClient, attributes: dict, fragment: str, pointer: str):
    body = {
        "data": {
            "type": WINDOW,
            "attributes": {
                "name": "w",
                "query": "",
                "start_at": "2026-06-01T00:00:00Z",
                "end_at": "2026-06-01T06:00:00Z",
                **attributes,
            },
        }
    }
    response = org.http.post("/api/v2/maintenance_windows", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert fragment in error["detail"]
    assert error["source"]["pointer"] == pointer
    assert org.cases.list_maintenance_windows().data == []


def test_bad_updates_are_400s_and_change_nothing(org: OrgClient) -> None:
    window = create_window(org)
    for attrs in ({"start_at": START + timedelta(hours=6)}, {"query": "a OR"}):
        with pytest.raises(ApiException) as err:
            org.cases.update_maintenance_window(maintenance_window_id=window.id, body=update_request(**attrs))
        assert err.value.status == 400
    [kept] = org.cases.list_maintenance_windows().data
    assert (kept.attributes.start_at, kept.attributes.query) == (START, "project:SEC")
    with pytest.raises(ApiException) as err:
        org.cases.delete_maintenance_window(maintenance_window_id="not-a-uuid")
    assert err.value.status == 400


def test_another_orgs_windows_are_not_found(org: OrgClient, other_org: OrgClient) -> None:
    window = create_window(org)
    with pytest.raises(NotFoundException):
        other_org.cases.update_maintenance_window(maintenance_window_id=window.id, body=update_request(name="mine"))
    with pytest.raises(NotFoundException):
        other_org.cases.delete_maintenance_window(maintenance_window_id=window.id)
    assert other_org.cases.list_maintenance_windows().data == []
    assert [w.attributes.name for w in org.cases.list_maintenance_windows().data] == ["Weekly maintenance"]
