"""On-Call schedules through the official client: create, read, list, replace, delete; who is on call (one user,
responders at previous/current/next); overrides, the timeline and the iCalendar feed; bad input refused with the
field, and nothing half-saved."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import icalendar
import pytest
from datadog_api_client.exceptions import ApiException, NotFoundException
from datadog_api_client.v2.model.schedule_update_request import ScheduleUpdateRequest
from datadog_api_client.v2.model.schedule_update_request_data import ScheduleUpdateRequestData
from datadog_api_client.v2.model.schedule_update_request_data_attributes import ScheduleUpdateRequestDataAttributes
from datadog_api_client.v2.model.schedule_update_request_data_attributes_layers_items import (
    ScheduleUpdateRequestDataAttributesLayersItems,
)
from datadog_api_client.v2.model.schedule_update_request_data_type import ScheduleUpdateRequestDataType

from tests.api.helpers import add_user
from tests.api.oncall_helpers import (
    event_types_of,
    layer,
    make_schedule,
    make_team,
    on_call,
    oncall_outbox,
    oneof_types,
    policy_request,
    schedule_request,
    step,
    target,
)
from tests.support.api_client import OrgClient

MONDAY = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday


def people(org: OrgClient, n: int) -> list[str]:
    return [add_user(org, f"oncall-{uuid.uuid4().hex[:8]}@example.com", name=f"Person {i}") for i in range(n)]


def test_create_read_list_replace_and_delete(org: OrgClient) -> None:
    ann, bob = people(org, 2)
    team = make_team(org, "sre")
    api = on_call(org)
    body = schedule_request(
        "Primary",
        [layer("weekdays", [ann, bob], MONDAY, restrictions=[("monday", "09:00:00", "friday", "17:00:00")])],
        time_zone="America/New_York",
        team_ids=[team],
    )
    created = api.create_on_call_schedule(body=body, include="teams,layers,layers.members.user")
    assert str(created.data.type) == "schedules"
    assert (created.data.attributes.name, created.data.attributes.time_zone) == ("Primary", "America/New_York")
    assert [t.id for t in created.data.relationships.teams.data] == [team]
    assert sorted(oneof_types(created.included)) == ["Layer", "ScheduleMember", "ScheduleMember", "ScheduleUser",
                                                     "ScheduleUser", "TeamReference"]  # fmt: skip
    schedule_id = created.data.id
    read = api.get_on_call_schedule(schedule_id=schedule_id, include="layers")
    [stored] = [i.get_oneof_instance() for i in read.included]
    assert stored.attributes.interval.days == 1 and stored.attributes.restrictions[0].end_time == "17:00:00"
    assert [s.id for s in api.list_on_call_schedules(include="teams").data] == [schedule_id]

    layer_id = read.data.relationships.layers.data[0].id
    update = ScheduleUpdateRequest(
        data=ScheduleUpdateRequestData(
            id=schedule_id,
            type=ScheduleUpdateRequestDataType.SCHEDULES,
            attributes=ScheduleUpdateRequestDataAttributes(
                name="Primary (renamed)",
                time_zone="Europe/Paris",
                layers=[
                    ScheduleUpdateRequestDataAttributesLayersItems(
                        id=layer_id,
                        name="all week",
                        effective_date=MONDAY,
                        rotation_start=MONDAY,
                        interval=layer("x", [ann], MONDAY, days=7).interval,
                        members=layer("x", [bob, ann], MONDAY).members,
                    )
                ],
            ),
        )
    )
    updated = api.update_on_call_schedule(schedule_id=schedule_id, body=update)
    assert updated.data.attributes.name == "Primary (renamed)"
    assert [ref.id for ref in updated.data.relationships.layers.data] == [layer_id]  # the layer kept its id
    assert [ref.id for ref in updated.data.relationships.teams.data] == [team]  # no teams named: kept

    api.delete_on_call_schedule(schedule_id=schedule_id)
    with pytest.raises(NotFoundException):
        api.get_on_call_schedule(schedule_id=schedule_id)
    assert event_types_of(oncall_outbox(org)) == ["schedule.created", "schedule.updated", "schedule.deleted"]


def test_who_is_on_call_and_the_responders_around_an_instant(org: OrgClient) -> None:
    ann, bob, cid = people(org, 3)
    api = on_call(org)
    schedule = make_schedule(org, "Daily", [ann, bob, cid], MONDAY)
    at = (MONDAY + timedelta(days=1, hours=5)).isoformat()  # Tuesday: bob's shift
    shift = api.get_schedule_on_call_user(schedule_id=schedule.data.id, include="user", filter_at_ts=at)
    assert shift.data.relationships.user.data.id == bob
    assert (shift.data.attributes.start, shift.data.attributes.end) == (
        MONDAY + timedelta(days=1),
        MONDAY + timedelta(days=2),
    )
    assert oneof_types(shift.included) == ["ScheduleUser"]

    found = api.get_schedule_on_call_responders(
        schedule_id=schedule.data.id,
        include="schedule,responders,responders.shifts,responders.shifts.user",
        filter_position="previous,current,next",
        filter_at_ts=at,
    )
    included = [i.get_oneof_instance() for i in found.included]
    positions = {str(r.attributes.position): r for r in included if type(r).__name__ == "ScheduleOnCallResponderData"}
    shifts = {s.id: s for s in included if type(s).__name__ == "ShiftData"}
    who = {p: shifts[r.relationships.shifts.data[0].id].relationships.user.data.id for p, r in positions.items()}
    assert who == {"previous": ann, "current": bob, "next": cid}
    assert sum(type(i).__name__ == "ScheduleData" for i in included) == 1
    assert {i.id for i in included if type(i).__name__ == "User"} == {ann, bob, cid}

    # An override: Cid covers Tuesday 04:00-06:00.
    response = org.http.post(
        f"/api/v2/casem/on-call/schedules/{schedule.data.id}/overrides",
        json={
            "data": {
                "type": "overrides",
                "attributes": {
                    "user_id": cid,
                    "start": (MONDAY + timedelta(days=1, hours=4)).isoformat(),
                    "end": (MONDAY + timedelta(days=1, hours=6)).isoformat(),
                },
            }
        },
    )
    assert response.status_code == 201, response.text
    assert (
        api.get_schedule_on_call_user(schedule_id=schedule.data.id, filter_at_ts=at).data.relationships.user.data.id
        == cid
    )
    timeline = org.http.get(
        f"/api/v2/casem/on-call/schedules/{schedule.data.id}/timeline",
        params={"start": (MONDAY + timedelta(days=1)).isoformat(), "end": (MONDAY + timedelta(days=2)).isoformat()},
    ).json()["data"]
    assert [s["relationships"]["user"]["data"]["id"] for s in timeline] == [bob, cid, bob]
    override_id = response.json()["data"]["id"]
    assert (
        org.http.delete(f"/api/v2/casem/on-call/schedules/{schedule.data.id}/overrides/{override_id}").status_code
        == 204
    )
    assert (
        api.get_schedule_on_call_user(schedule_id=schedule.data.id, filter_at_ts=at).data.relationships.user.data.id
        == bob
    )


def test_the_schedule_exports_as_icalendar_and_a_feed_url_needs_no_keys(org: OrgClient) -> None:
    ann, bob = people(org, 2)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    schedule = make_schedule(org, "Feed", [ann, bob], today - timedelta(days=30))
    response = org.http.get(
        f"/api/v2/casem/on-call/schedules/{schedule.data.id}/calendar", params={"days": 7, "past_days": 0}
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(response.content)
    events = [e for e in calendar.walk("VEVENT")]
    assert len(events) == 7  # one a day, alternating
    starts = [e.decoded("dtstart") for e in events]
    assert starts == [today + timedelta(days=d) for d in range(7)]
    assert {str(e.get("attendee")) for e in events} == {
        f"mailto:{a}" for a in (org_email(org, ann), org_email(org, bob))
    }

    feed = org.http.post(f"/api/v2/casem/on-call/schedules/{schedule.data.id}/calendar-feed").json()["data"]
    url = feed["attributes"]["url"]
    import httpx

    anonymous = httpx.get(url, timeout=30)
    assert anonymous.status_code == 200 and b"BEGIN:VCALENDAR" in anonymous.content
    assert httpx.get(url.replace(url.rsplit("/", 1)[1], "nope.ics"), timeout=30).status_code == 404
    org.http.post(f"/api/v2/casem/on-call/schedules/{schedule.data.id}/calendar-feed")  # a new token retires the old
    assert httpx.get(url, timeout=30).status_code == 404


def org_email(org: OrgClient, user_id: str) -> str:
    return org.users.get_user(user_id=user_id).data.attributes.email


WEEKDAYS = {"start_day": "monday", "start_time": "09:00:00", "end_day": "friday", "end_time": "17:00:00"}
TUESDAY_MORNING = {"start_day": "tuesday", "start_time": "10:00:00", "end_day": "tuesday", "end_time": "11:00:00"}
LAYER = {
    "name": "primary",
    "effective_date": "2025-02-03T05:00:00Z",
    "rotation_start": "2025-02-01T00:00:00Z",
    "interval": {"days": 1},
}


@pytest.mark.parametrize(
    ("attributes", "layer_change", "status", "pointer"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, {}, 400, "/data/attributes/time_zone"),
        ({}, {"interval": {"days": 0, "seconds": 0}}, 400, "/data/attributes/layers/0/interval"),
        ({}, {"interval": {"seconds": 600}}, 400, "/data/attributes/layers/0/interval"),
        ({}, {"members": [{"user": {"id": "00000000-0000-4000-8000-00000000abcd"}}]}, 404,
         "/data/attributes/layers/0/members/0/user/id"),
        ({}, {"restrictions": [WEEKDAYS, TUESDAY_MORNING]}, 400, "/data/attributes/layers/0/restrictions/1"),
        ({}, {"effective_date": "not a date"}, 400, "/data/attributes/layers/0/effective_date"),
        ({"name": ""}, {}, 400, "/data/attributes/name"),
        ({"colour": "red"}, {}, 400, "/data/attributes/colour"),
    ],
)  # fmt: skip
def test_bad_schedules_are_refused_with_the_field_and_nothing_is_saved(
    org: OrgClient, attributes: dict, layer_change: dict, status: int, pointer: str
) -> None:
    members = {"members": [{"user": {"id": org.user_id}}]}
    body = {
        "data": {
            "type": "schedules",
            "attributes": {
                "name": "s",
                "time_zone": "UTC",
                "layers": [{**LAYER, **members, **layer_change}],
                **attributes,
            },
        }
    }
    before = oncall_outbox(org)
    response = org.http.post("/api/v2/on-call/schedules", json=body)
    assert response.status_code == status, response.text
    error = response.json()["errors"][0]
    assert error["source"]["pointer"] == pointer
    assert on_call(org).list_on_call_schedules().data == []
    assert oncall_outbox(org) == before


def test_an_unknown_team_is_named_and_a_schedule_in_use_cannot_go(org: OrgClient) -> None:
    missing = str(uuid.uuid4())
    with pytest.raises(ApiException) as refused:
        on_call(org).create_on_call_schedule(
            body=schedule_request("s", [layer("l", [org.user_id], MONDAY)], team_ids=[missing])
        )
    assert refused.value.status == 404
    assert refused.value.body["errors"][0]["source"]["pointer"] == "/data/relationships/teams/data/0/id"
    assert missing in refused.value.body["errors"][0]["detail"]
    schedule = make_schedule(org, "Used", [org.user_id], MONDAY)
    on_call(org).create_on_call_escalation_policy(
        body=policy_request("p", [step([target("schedules", schedule.data.id)])])
    )
    with pytest.raises(ApiException) as conflict:
        on_call(org).delete_on_call_schedule(schedule_id=schedule.data.id)
    assert conflict.value.status == 409 and "escalation policies p" in conflict.value.body["errors"][0]["detail"]


def test_listing_filters_and_pages(org: OrgClient) -> None:
    ann, bob = people(org, 2)
    team = make_team(org, "db")
    make_schedule(org, "Database primary", [ann], MONDAY, team_ids=[team])
    make_schedule(org, "Database secondary", [bob], MONDAY)
    make_schedule(org, "Web", [ann, bob], MONDAY)
    api = on_call(org)

    def names(query: str) -> list[str]:
        return [s.attributes.name for s in api.list_on_call_schedules(filter_query=query).data]

    assert names("database") == ["Database primary", "Database secondary"]
    assert names("*secondary") == ["Database secondary"]
    assert names(f"team.id:{team}") == ["Database primary"]
    assert names(f"user.id:({bob} OR {uuid.uuid4()})") == ["Database secondary", "Web"]
    paged = list(api.list_on_call_schedules_with_pagination(page_size=2))
    assert [s.attributes.name for s in paged] == ["Database primary", "Database secondary", "Web"]
    assert org.http.get("/api/v2/on-call/schedules", params={"filter[query]": "nope:x"}).status_code == 400
