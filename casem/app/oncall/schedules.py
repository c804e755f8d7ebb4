"""On-call schedules: create, read, list, replace and delete them, their overrides, who is on call, and the
calendar feed that exports them."""

from __future__ import annotations

import fnmatch
import hashlib
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import oncall_policies, oncall_schedules
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.oncall import records
from casem.app.oncall.directory import Directory
from casem.domain.errors import Conflict, InvalidInput, NotFound
from casem.domain.oncall import SCHEDULES, EscalationStep
from casem.domain.oncall_schedules import (
    POSITIONS,
    Override,
    Schedule,
    Segment,
    parse_instant,
    parse_layers,
    validate_schedule_name,
    zone,
)
from casem.domain.search_query import And, Field, MatchAll, Node, Not, Or, QuerySyntaxError, Text, parse_query

PAGE_SIZE_DEFAULT = 100
PAGE_SIZE_MAX = 100


def team_references(
    team_ids: Sequence[str] | None, pointer: str = "/data/relationships/teams/data"
) -> list[tuple[str, str]]:
    return [(ident.lower(), f"{pointer}/{i}/id") for i, ident in enumerate(team_ids or [])]


async def _check_references(directory: Directory, schedule: Schedule, teams: list[tuple[str, str]]) -> None:
    users = [
        (member.user_id, f"/data/attributes/layers/{i}/members/{j}/user/id")
        for i, layer in enumerate(schedule.layers)
        for j, member in enumerate(layer.members)
    ]
    await directory.require_users(users)
    await directory.require_teams(teams)


def _parse(attrs: dict[str, Any], previous: Schedule | None = None) -> tuple[str, str, list[Any]]:
    name = validate_schedule_name(attrs.get("name"))
    time_zone = attrs.get("time_zone")
    zone(time_zone, "/data/attributes/time_zone")
    layers = parse_layers(attrs.get("layers"), previous.layers if previous else ())
    return name, time_zone, layers


async def create_schedule(
    uow: UnitOfWork,
    directory: Directory,
    org_id: str,
    actor_id: str | None,
    attrs: dict[str, Any],
    team_ids: Sequence[str],
) -> Schedule:
    name, time_zone, layers = _parse(attrs)
    teams = team_references(team_ids)
    schedule = Schedule.create(
        actor_id=actor_id,
        id=str(uuid.uuid4()),
        org_id=org_id,
        name=name,
        time_zone=time_zone,
        layers=layers,
        team_ids=[ident for ident, _ in teams],
    )
    await _check_references(directory, schedule, teams)
    await records.insert_schedule(uow, schedule)
    return schedule


async def update_schedule(
    uow: UnitOfWork,
    directory: Directory,
    org_id: str,
    actor_id: str | None,
    schedule_id: str,
    attrs: dict[str, Any],
    team_ids: Sequence[str] | None,
) -> Schedule:
    """PUT: the schedule's name, zone and layers are replaced; teams too when the request names them."""
    schedule = await records.load_schedule(uow, org_id, schedule_id)
    name, time_zone, layers = _parse(attrs, schedule)
    teams = team_references(team_ids) if team_ids is not None else [(t, "") for t in schedule.team_ids]
    schedule.replace(actor_id, name=name, time_zone=time_zone, layers=layers, team_ids=[t for t, _ in teams])
    await _check_references(directory, schedule, [t for t in teams if t[1]])
    await records.update_schedule(uow, schedule)
    return schedule


async def get_schedule(uow: UnitOfWork, org_id: str, schedule_id: str) -> Schedule:
    return await records.load_schedule(uow, org_id, schedule_id)


async def policies_using(uow: UnitOfWork, org_id: str, schedule_id: str) -> list[str]:
    """Names of the org's escalation policies that target the schedule."""
    rows = await uow.execute(
        sa.select(oncall_policies.c.name, oncall_policies.c.steps).where(oncall_policies.c.org_id == org_id)
    )
    return [
        row.name
        for row in rows
        if any(
            t.type == SCHEDULES and t.id == schedule_id
            for s in row.steps
            for t in EscalationStep.from_record(s).targets
        )
    ]


async def delete_schedule(uow: UnitOfWork, org_id: str, actor_id: str | None, schedule_id: str) -> None:
    schedule = await records.load_schedule(uow, org_id, schedule_id, overrides=False)
    using = await policies_using(uow, org_id, schedule.id)
    if using:
        raise Conflict(f"schedule {schedule.id} is a target of escalation policies {', '.join(sorted(using))}")
    schedule.record_deleted(actor_id)
    await records.delete_schedule(uow, schedule)


# -- listing with Datadog's filter[query] ---------------------------------------------------------------------


def _matches(node: Node, schedule: Schedule) -> bool:
    if isinstance(node, MatchAll):
        return True
    if isinstance(node, Not):
        return not _matches(node.child, schedule)
    if isinstance(node, And):
        return all(_matches(c, schedule) for c in node.children)
    if isinstance(node, Or):
        return any(_matches(c, schedule) for c in node.children)
    if isinstance(node, Text):
        pattern = node.value.casefold()
        name = schedule.name.casefold()
        return fnmatch.fnmatchcase(name, pattern) if "*" in pattern else pattern in name
    assert isinstance(node, Field)
    value = node.value.lower()
    if node.name == "team.id":
        return value in schedule.team_ids
    if node.name == "user.id":
        return any(m.user_id == value for layer in schedule.layers for m in layer.members)
    if node.name == "name":
        return fnmatch.fnmatchcase(schedule.name.casefold(), node.value.casefold())
    raise InvalidInput(f"filter[query] cannot filter on {node.name!r}: use name, team.id or user.id")


async def list_schedules(
    uow: UnitOfWork, org_id: str, page_number: int | None, page_size: int | None, query: str | None
) -> tuple[list[Schedule], int, int, int]:
    """(the page of schedules, total matching, page number, page size); page[number] counts from 0."""
    size = PAGE_SIZE_DEFAULT if page_size is None else page_size
    number = 0 if page_number is None else page_number
    if not 1 <= size <= PAGE_SIZE_MAX:
        raise InvalidInput(f"page[size] must be between 1 and {PAGE_SIZE_MAX}")
    if number < 0:
        raise InvalidInput("page[number] must be 0 or more")
    try:
        node = parse_query(query or "")
    except QuerySyntaxError as exc:
        raise InvalidInput(f"filter[query]: {exc}") from None
    found = [s for s in await records.load_schedules(uow, org_id) if _matches(node, s)]
    return found[number * size : (number + 1) * size], len(found), number, size


# -- who is on call --------------------------------------------------------------------------------------------


def parse_at(value: str | None, pointer: str = "filter[at_ts]") -> datetime:
    """filter[at_ts]: RFC 3339; now when omitted."""
    if value is None or value == "":
        return datetime.now(UTC)
    try:
        return parse_instant(value, pointer)
    except InvalidInput as exc:
        raise InvalidInput(f"filter[at_ts]: {exc.detail}") from None


def parse_positions(value: str | None) -> list[str]:
    if not value:
        return ["current"]
    positions = [p.strip() for p in value.split(",") if p.strip()]
    unknown = [p for p in positions if p not in POSITIONS]
    if unknown or not positions:
        raise InvalidInput(
            f"filter[position] {unknown[0] if unknown else value!r} is not one of {', '.join(POSITIONS)}"
        )
    return list(dict.fromkeys(positions))


async def on_call(uow: UnitOfWork, org_id: str, schedule_id: str, at: datetime) -> tuple[Schedule, Segment | None]:
    schedule = await records.load_schedule(uow, org_id, schedule_id)
    return schedule, schedule.shifts_around(at)["current"]


async def responders(
    uow: UnitOfWork, org_id: str, schedule_id: str, at: datetime, positions: list[str]
) -> tuple[Schedule, dict[str, Segment | None]]:
    schedule = await records.load_schedule(uow, org_id, schedule_id)
    around = schedule.shifts_around(at)
    return schedule, {p: around[p] for p in positions}


def shift_id(schedule_id: str, segment: Segment) -> str:
    """Shifts are computed, not stored: the same stretch always gets the same id."""
    return str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"casem:shift:{schedule_id}:{segment.user_id}:{segment.start.isoformat()}")
    )


# -- overrides -------------------------------------------------------------------------------------------------


async def add_override(
    uow: UnitOfWork, directory: Directory, org_id: str, actor_id: str | None, schedule_id: str, attrs: dict[str, Any]
) -> tuple[Schedule, Override]:
    schedule = await records.load_schedule(uow, org_id, schedule_id)
    override = Override.parse(attrs.get("user_id"), attrs.get("start"), attrs.get("end"))
    await directory.require_users([(override.user_id, "/data/attributes/user_id")])
    schedule.add_override(override, actor_id)
    await records.insert_override(uow, schedule, override, actor_id)
    return schedule, override


async def remove_override(
    uow: UnitOfWork, org_id: str, actor_id: str | None, schedule_id: str, override_id: str
) -> None:
    schedule = await records.load_schedule(uow, org_id, schedule_id)
    if not schedule.remove_override(override_id.lower(), actor_id):
        raise NotFound("override", override_id)
    await records.delete_override(uow, schedule, override_id.lower())


# -- calendar feeds ----------------------------------------------------------------------------------------------

FEED_DAYS_MAX = 366


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_feed_token(uow: UnitOfWork, org_id: str, schedule_id: str) -> str:
    """A new secret token for the schedule's calendar feed (the previous one stops working)."""
    schedule = await records.load_schedule(uow, org_id, schedule_id, overrides=False)
    token = secrets.token_urlsafe(32)
    await uow.execute(
        sa.update(oncall_schedules)
        .where(oncall_schedules.c.id == schedule.id)
        .values(feed_token_hash=_token_hash(token))
    )
    return token


async def schedule_by_feed_token(uow: UnitOfWork, token: str) -> Schedule:
    ident = await uow.scalar(
        sa.select(oncall_schedules.c.id).where(oncall_schedules.c.feed_token_hash == _token_hash(token))
    )
    if ident is None:
        raise NotFound("calendar feed", "(token)")
    org_id = await uow.scalar(sa.select(oncall_schedules.c.org_id).where(oncall_schedules.c.id == ident))
    return await records.load_schedule(uow, org_id, ident)


@dataclass(frozen=True)
class FeedWindow:
    start: datetime
    end: datetime


def feed_window(now: datetime, past_days: int = 14, days: int = 90) -> FeedWindow:
    if not 0 <= past_days <= FEED_DAYS_MAX or not 1 <= days <= FEED_DAYS_MAX:
        raise InvalidInput(f"past_days and days must be between 0 and {FEED_DAYS_MAX}")
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return FeedWindow(today - timedelta(days=past_days), today + timedelta(days=days))
