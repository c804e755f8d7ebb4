"""On-Call schedules (Datadog's OnCallApi), and casem's own around them: overrides, a schedule's timeline and its
iCalendar feed.

GET  /api/v2/casem/on-call/schedules/{id}/timeline?start=&end=   who is on call over a range (segments)
POST/GET /api/v2/casem/on-call/schedules/{id}/overrides, DELETE .../overrides/{override_id}
GET  /api/v2/casem/on-call/schedules/{id}/calendar               the schedule as text/calendar (API keys)
POST /api/v2/casem/on-call/schedules/{id}/calendar-feed          a subscription URL (its token is its credential)
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from casem.app.oncall import schedules as service
from casem.app.oncall.directory import Directory
from casem.app.oncall.ical import schedule_calendar
from casem.domain.errors import InvalidInput
from casem.domain.identity import Team, User
from casem.domain.oncall_schedules import Layer, Override, Schedule, Segment
from casem.services.case_api.http import Caller, caller, context_of
from casem.services.case_api.jsonapi import iso, parse_body
from casem.services.case_api.oncall.answers import (
    CalendarFeedResponse,
    OverrideResponse,
    OverridesResponse,
    RespondersResponse,
    ScheduleResponse,
    SchedulesResponse,
    ScheduleTimelineResponse,
    ShiftResponse,
)
from casem.services.case_api.oncall.common import (
    TeamsRelationships,
    full_user,
    on_call,
    on_call_tenant,
    parse_include,
    team_ids_of,
    team_reference,
    user_reference,
)
from casem.services.case_api.openapi import contract
from casem.services.case_api.schemas import Strict
from casem.topology.tenants import CASE_MANAGEMENT, ON_CALL

router = APIRouter(tags=["on-call schedules"], dependencies=[Depends(on_call_tenant)])
# The calendar feed: authenticated by its URL's token, so outside the API-key router.
feed_router = APIRouter()

SCHEDULE_INCLUDES = ("teams", "layers", "layers.members", "layers.members.user")
RESPONDER_INCLUDES = ("schedule", "responders", "responders.shifts", "responders.shifts.user")
ICAL = "text/calendar; charset=utf-8"


class ScheduleAttributes(Strict):
    name: Any = None
    time_zone: Any = None
    layers: Any = None


class ScheduleCreateData(Strict):
    type: Literal["schedules"]
    attributes: ScheduleAttributes
    relationships: TeamsRelationships | None = None


class ScheduleCreateRequest(Strict):
    data: ScheduleCreateData


class ScheduleUpdateData(ScheduleCreateData):
    id: str | None = None


class ScheduleUpdateRequest(Strict):
    data: ScheduleUpdateData


class OverrideAttributes(Strict):
    user_id: Any = None
    start: Any = None
    end: Any = None


class OverrideData(Strict):
    type: Literal["overrides"]
    attributes: OverrideAttributes


class OverrideRequest(Strict):
    data: OverrideData


# -- documents -------------------------------------------------------------------------------------------------


def layer_resource(layer: Layer) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "name": layer.name,
        "effective_date": iso(layer.effective_date),
        "rotation_start": iso(layer.rotation_start),
        "interval": layer.interval.to_json(),
        "restrictions": [r.to_json() for r in layer.restrictions],
    }
    if layer.end_date is not None:
        attributes["end_date"] = iso(layer.end_date)
    if layer.time_zone:
        attributes["time_zone"] = layer.time_zone
    return {
        "id": layer.id,
        "type": "layers",
        "attributes": attributes,
        "relationships": {"members": {"data": [{"id": m.id, "type": "members"} for m in layer.members]}},
    }


def schedule_data(schedule: Schedule) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "type": "schedules",
        "attributes": {"name": schedule.name, "time_zone": schedule.time_zone, "tags": list(schedule.tags)},
        "relationships": {
            "layers": {"data": [{"id": layer.id, "type": "layers"} for layer in schedule.layers]},
            "teams": {"data": [{"id": t, "type": "teams"} for t in schedule.team_ids]},
        },
    }


def schedule_document(
    schedule: Schedule, include: set[str], teams: dict[str, Team], people: dict[str, User]
) -> dict[str, Any]:
    included: list[dict[str, Any]] = []
    if "teams" in include:
        included += [team_reference(teams[t]) for t in schedule.team_ids if t in teams]
    if "layers" in include:
        included += [layer_resource(layer) for layer in schedule.layers]
    if "layers.members" in include:
        included += [
            {"id": m.id, "type": "members", "relationships": {"user": {"data": {"id": m.user_id, "type": "users"}}}}
            for layer in schedule.layers
            for m in layer.members
        ]
    if "layers.members.user" in include:
        ids = dict.fromkeys(m.user_id for layer in schedule.layers for m in layer.members)
        included += [user_reference(people[u]) for u in ids if u in people]
    return {"data": schedule_data(schedule), "included": included}


def shift_data(schedule_id: str, segment: Segment) -> dict[str, Any]:
    return {
        "id": service.shift_id(schedule_id, segment),
        "type": "shifts",
        "attributes": {"start": iso(segment.start), "end": iso(segment.end)},
        "relationships": {"user": {"data": {"id": segment.user_id, "type": "users"}}},
    }


def override_resource(schedule_id: str, override: Override) -> dict[str, Any]:
    return {
        "id": override.id,
        "type": "overrides",
        "attributes": {
            "user_id": override.user_id,
            "start": iso(override.start),
            "end": iso(override.end),
            "created_at": iso(override.created_at),
        },
        "relationships": {"schedule": {"data": {"id": schedule_id, "type": "schedules"}}},
    }


async def _document(who: Caller, schedule: Schedule, include: set[str]) -> dict[str, Any]:
    async with who.uow(CASE_MANAGEMENT, read_only=True) as people_uow:
        directory = Directory(people_uow, who.org_id)
        teams = await directory.teams(schedule.team_ids) if "teams" in include else {}
        members = [m.user_id for layer in schedule.layers for m in layer.members]
        people = await directory.users(members) if "layers.members.user" in include else {}
    return schedule_document(schedule, include, teams, people)


# -- Datadog's schedules ---------------------------------------------------------------------------------------


@router.post("/api/v2/on-call/schedules", status_code=201)
@contract(body=ScheduleCreateRequest, returns=ScheduleResponse)
async def create_schedule(request: Request, include: str | None = None, who: Caller = Depends(caller)) -> dict:
    wanted = parse_include(include, SCHEDULE_INCLUDES)
    data = (await parse_body(request, ScheduleCreateRequest)).data
    async with on_call(who) as (uow, directory):
        schedule = await service.create_schedule(
            uow, directory, who.org_id, who.user_id, data.attributes.model_dump(), team_ids_of(data.relationships) or []
        )
        await uow.commit()
    return await _document(who, schedule, wanted)


@router.get("/api/v2/on-call/schedules")
@contract(returns=SchedulesResponse)
async def list_schedules(
    who: Caller = Depends(caller),
    page_size: int | None = Query(None, alias="page[size]"),
    page_number: int | None = Query(None, alias="page[number]"),
    filter_query: str | None = Query(None, alias="filter[query]"),
    include: str | None = None,
) -> dict[str, Any]:
    wanted = parse_include(include, ("teams",))
    async with on_call(who, read_only=True) as (uow, directory):
        found, total, number, size = await service.list_schedules(uow, who.org_id, page_number, page_size, filter_query)
        teams = await directory.teams({t for s in found for t in s.team_ids}) if wanted else {}
    last = max(total - 1, 0) // size
    return {
        "data": [
            {
                "id": s.id,
                "type": "schedules",
                "attributes": {"name": s.name, "time_zone": s.time_zone, "tags": list(s.tags)},
                "relationships": {"teams": {"data": [{"id": t, "type": "teams"} for t in s.team_ids]}},
            }
            for s in found
        ],
        "included": [team_reference(t) for t in teams.values()],
        "meta": {
            "page": {
                "type": "number_size",
                "number": number,
                "size": size,
                "total": total,
                "first_number": 0,
                "last_number": last,
                "next_number": number + 1 if number < last else None,
                "prev_number": number - 1 if number > 0 else None,
            }
        },
    }


@router.get("/api/v2/on-call/schedules/{schedule_id}")
@contract(returns=ScheduleResponse)
async def get_schedule(schedule_id: str, include: str | None = None, who: Caller = Depends(caller)) -> dict:
    wanted = parse_include(include, SCHEDULE_INCLUDES)
    async with who.uow(ON_CALL, read_only=True) as uow:
        schedule = await service.get_schedule(uow, who.org_id, schedule_id)
    return await _document(who, schedule, wanted)


@router.put("/api/v2/on-call/schedules/{schedule_id}")
@contract(body=ScheduleUpdateRequest, returns=ScheduleResponse)
async def update_schedule(
    schedule_id: str, request: Request, include: str | None = None, who: Caller = Depends(caller)
) -> dict[str, Any]:
    wanted = parse_include(include, SCHEDULE_INCLUDES)
    data = (await parse_body(request, ScheduleUpdateRequest)).data
    async with on_call(who) as (uow, directory):
        existing = await service.get_schedule(uow, who.org_id, schedule_id)
        if data.id is not None and data.id.lower() != existing.id:
            raise InvalidInput(f"data.id {data.id!r} is not the id of the schedule in the path", "/data/id")
        schedule = await service.update_schedule(
            uow, directory, who.org_id, who.user_id, schedule_id, data.attributes.model_dump(),
            team_ids_of(data.relationships),
        )  # fmt: skip
        await uow.commit()
    return await _document(who, schedule, wanted)


@router.delete("/api/v2/on-call/schedules/{schedule_id}", status_code=204)
@contract(errors={409})
async def delete_schedule(schedule_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow(ON_CALL) as uow:
        await service.delete_schedule(uow, who.org_id, who.user_id, schedule_id)
        await uow.commit()
    return Response(status_code=204)


@router.get("/api/v2/on-call/schedules/{schedule_id}/on-call")
@contract(returns=ShiftResponse)
async def schedule_on_call_user(
    schedule_id: str,
    who: Caller = Depends(caller),
    include: str | None = None,
    filter_at_ts: str | None = Query(None, alias="filter[at_ts]"),
) -> dict[str, Any]:
    wanted = parse_include(include, ("user",))
    at = service.parse_at(filter_at_ts)
    async with on_call(who, read_only=True) as (uow, directory):
        schedule, segment = await service.on_call(uow, who.org_id, schedule_id, at)
        people = await directory.users([segment.user_id]) if segment and wanted else {}
    if segment is None:
        return {"included": []}  # nobody on call: Datadog's Shift has no data then
    included = [user_reference(p) for p in people.values()]
    return {"data": shift_data(schedule.id, segment), "included": included}


@router.get("/api/v2/on-call/schedules/{schedule_id}/responders")
@contract(returns=RespondersResponse)
async def schedule_responders(
    schedule_id: str,
    who: Caller = Depends(caller),
    include: str | None = None,
    filter_position: str | None = Query(None, alias="filter[position]"),
    filter_at_ts: str | None = Query(None, alias="filter[at_ts]"),
) -> dict[str, Any]:
    wanted = parse_include(include, RESPONDER_INCLUDES)
    at = service.parse_at(filter_at_ts)
    positions = service.parse_positions(filter_position)
    async with on_call(who, read_only=True) as (uow, directory):
        schedule, shifts = await service.responders(uow, who.org_id, schedule_id, at, positions)
        ids = [s.user_id for s in shifts.values() if s]
        people = await directory.users(ids) if "responders.shifts.user" in wanted else {}
    responders = []
    included: list[dict[str, Any]] = []
    for position, segment in shifts.items():
        rid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"casem:responder:{schedule.id}:{position}:{at.isoformat()}"))
        responders.append({"id": rid, "type": "schedule_oncall_responder"})
        if "responders" in wanted:
            shift_refs = [{"id": service.shift_id(schedule.id, segment), "type": "shifts"}] if segment else []
            included.append(
                {
                    "id": rid,
                    "type": "schedule_oncall_responder",
                    "attributes": {"position": position},
                    "relationships": {"shifts": {"data": shift_refs}},
                }
            )
        if "responders.shifts" in wanted and segment is not None:
            included.append(shift_data(schedule.id, segment))
    included += [full_user(people[u]) for u in dict.fromkeys(ids) if u in people]
    if "schedule" in wanted:
        included.append(schedule_data(schedule))
    return {
        "data": {
            "id": schedule.id,
            "type": "schedule_oncall_responders",
            "attributes": {"scheduled_at": iso(at)},
            "relationships": {
                "responders": {"data": responders},
                "schedule": {"data": {"id": schedule.id, "type": "schedules"}},
            },
        },
        "included": included,
    }


# -- casem's own: overrides, timeline, calendar -----------------------------------------------------------------


@router.post("/api/v2/casem/on-call/schedules/{schedule_id}/overrides", status_code=201)
@contract(body=OverrideRequest, returns=OverrideResponse)
async def add_override(schedule_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    data = (await parse_body(request, OverrideRequest)).data
    async with on_call(who) as (uow, directory):
        schedule, override = await service.add_override(
            uow, directory, who.org_id, who.user_id, schedule_id, data.attributes.model_dump()
        )
        await uow.commit()
    return {"data": override_resource(schedule.id, override)}


@router.get("/api/v2/casem/on-call/schedules/{schedule_id}/overrides")
@contract(returns=OverridesResponse)
async def list_overrides(schedule_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(ON_CALL, read_only=True) as uow:
        schedule = await service.get_schedule(uow, who.org_id, schedule_id)
    return {"data": [override_resource(schedule.id, o) for o in schedule.overrides]}


@router.delete("/api/v2/casem/on-call/schedules/{schedule_id}/overrides/{override_id}", status_code=204)
async def remove_override(schedule_id: str, override_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow(ON_CALL) as uow:
        await service.remove_override(uow, who.org_id, who.user_id, schedule_id, override_id)
        await uow.commit()
    return Response(status_code=204)


def _range(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    begin = service.parse_at(start) if start else datetime.now(UTC)
    finish = service.parse_at(end) if end else begin + timedelta(days=7)
    if finish <= begin:
        raise InvalidInput("end must come after start")
    if finish - begin > timedelta(days=service.FEED_DAYS_MAX):
        raise InvalidInput(f"a timeline covers at most {service.FEED_DAYS_MAX} days")
    return begin, finish


@router.get("/api/v2/casem/on-call/schedules/{schedule_id}/timeline")
@contract(returns=ScheduleTimelineResponse)
async def schedule_timeline(
    schedule_id: str, start: str | None = None, end: str | None = None, who: Caller = Depends(caller)
) -> dict[str, Any]:
    begin, finish = _range(start, end)
    async with who.uow(ON_CALL, read_only=True) as uow:
        schedule = await service.get_schedule(uow, who.org_id, schedule_id)
    return {
        "data": [shift_data(schedule.id, s) for s in schedule.timeline(begin, finish)],
        "meta": {"start": iso(begin), "end": iso(finish)},
    }


async def _calendar(request: Request, schedule: Schedule, past_days: int, days: int) -> Response:
    window = service.feed_window(datetime.now(UTC), past_days, days)
    ctx = context_of(request)
    async with ctx.uow(CASE_MANAGEMENT, read_only=True) as people_uow:
        segments = schedule.timeline(window.start, window.end)
        people = await Directory(people_uow, schedule.org_id).users({s.user_id for s in segments})
    return Response(schedule_calendar(schedule, people, window), media_type=ICAL)


@router.get(
    "/api/v2/casem/on-call/schedules/{schedule_id}/calendar",
    response_class=Response,
    responses={200: {"description": "The schedule as iCalendar", "content": {"text/calendar": {"schema": {}}}}},
)
async def schedule_ical(
    schedule_id: str,
    request: Request,
    past_days: int = Query(14, ge=0, le=service.FEED_DAYS_MAX),
    days: int = Query(90, ge=1, le=service.FEED_DAYS_MAX),
    who: Caller = Depends(caller),
) -> Response:
    async with who.uow(ON_CALL, read_only=True) as uow:
        schedule = await service.get_schedule(uow, who.org_id, schedule_id)
    return await _calendar(request, schedule, past_days, days)


@router.post("/api/v2/casem/on-call/schedules/{schedule_id}/calendar-feed", status_code=201)
@contract(returns=CalendarFeedResponse)
async def issue_calendar_feed(schedule_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(ON_CALL) as uow:
        token = await service.issue_feed_token(uow, who.org_id, schedule_id)
        await uow.commit()
    url = str(request.url_for("calendar_feed", token=f"{token}.ics"))
    return {"data": {"id": schedule_id.lower(), "type": "calendar_feeds", "attributes": {"url": url}}}


# A calendar subscribes with a URL and cannot send API keys: the feed's secret token is its credential. It is
# not part of the API document (and so not among the routes the API-key checks sweep).
@feed_router.get("/on-call/calendars/{token}", name="calendar_feed", include_in_schema=False)
async def calendar_feed(token: str, request: Request) -> Response:
    ctx = context_of(request)
    async with ctx.uow(ON_CALL, read_only=True) as uow:
        schedule = await service.schedule_by_feed_token(uow, token.removesuffix(".ics"))
    return await _calendar(request, schedule, 14, 90)
