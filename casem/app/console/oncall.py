"""What the console's on-call pages show, read through the on-call use cases: who each team's policy pages now
(`team_on_call`, the answer of the API's team on-call users), a schedule's layers, overrides and final rotation
over the next days (the schedule's own resolver), and the org's pages (`search_pages`, as the API finds them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases.finder import CaseSearch
from casem.app.cases.search import SearchParams
from casem.app.identity.service import list_teams, page_of
from casem.app.oncall import pages as paging
from casem.app.oncall import records
from casem.app.oncall.directory import Directory
from casem.app.oncall.routing import team_on_call
from casem.app.oncall.schedules import get_schedule
from casem.domain.errors import InvalidInput
from casem.domain.identity import Team
from casem.domain.oncall import ACKNOWLEDGED, PAGE_STATUS_CASE_STATUS, RESOLVED, SCHEDULES, TRIGGERED, Page
from casem.domain.oncall_schedules import Layer, Schedule, Segment, local_wall, wall_to_utc, zone

TEAMS_SHOWN = 100  # one page of the Teams API; the overview says when an org has more
TIMELINE_DAYS = 7
PAGE_STATUSES = (TRIGGERED, ACKNOWLEDGED, RESOLVED)
PAGES_PER_SCREEN = 50


# -- who is on call, per team ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleLink:
    id: str
    name: str


@dataclass
class TeamOnCallRow:
    team: Team
    policy_name: str | None
    on_call: list[str]  # names of whom the policy's first step pages now
    later_steps: list[list[str]]  # names per later step, in order
    schedules: list[ScheduleLink]


@dataclass
class OnCallOverview:
    teams: list[TeamOnCallRow]
    total_teams: int
    schedules: list[ScheduleLink]  # every schedule of the org, by name


async def on_call_overview(
    oncall: UnitOfWork, people: UnitOfWork, org_id: str, at: datetime
) -> OnCallOverview:  # fmt: skip
    directory = Directory(people, org_id)
    teams, total = await list_teams(people, org_id, page_of(0, TEAMS_SHOWN))
    schedules = await records.load_schedules(oncall, org_id)
    by_id = {s.id: s for s in schedules}
    rows: list[TeamOnCallRow] = []
    for team in teams:
        found = await team_on_call(oncall, directory, org_id, team.id, at)
        everyone = [*found.responders, *(u for _, users in found.escalations for u in users)]
        names = {u.id: u.name or u.email for u in (await directory.users(everyone)).values()}
        linked = [s.id for s in schedules if team.id in s.team_ids]
        if found.policy is not None:
            targeted = [t.id for step in found.policy.steps for t in step.targets if t.type == SCHEDULES]
            linked = [*targeted, *linked]
        rows.append(
            TeamOnCallRow(
                team=team,
                policy_name=found.policy.name if found.policy else None,
                on_call=[names.get(u, u) for u in found.responders],
                later_steps=[[names.get(u, u) for u in users] for _, users in found.escalations],
                schedules=[ScheduleLink(i, by_id[i].name) for i in dict.fromkeys(linked) if i in by_id],
            )
        )
    everything = sorted((ScheduleLink(s.id, s.name) for s in schedules), key=lambda s: s.name.casefold())
    return OnCallOverview(rows, total, everything)


# -- a schedule as a timeline ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One person's stretch in a row of the timeline, placed as a share of the window (0 to 100)."""

    user_id: str
    name: str
    start: datetime  # in the schedule's zone
    end: datetime
    left: float
    width: float
    colour: int  # the same person has the same colour in every row
    now: bool
    source: str = ""  # in the combined row: "override" or "rotation"


@dataclass
class TimelineRow:
    label: str
    kind: str  # "layer", "overrides" or "final"
    blocks: list[Block] = field(default_factory=list)
    note: str = ""  # how a layer rotates


@dataclass(frozen=True)
class DayMark:
    label: str
    left: float


@dataclass
class ScheduleTimeline:
    schedule: Schedule
    time_zone: str
    utc_offset: str  # at the start of the window, e.g. UTC+01:00
    start: datetime
    end: datetime
    days: list[DayMark]
    rows: list[TimelineRow]
    now_left: float | None
    on_call_now: Block | None
    team_names: list[str]


def _offset_label(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    sign = "+" if offset >= timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _rotation_note(layer: Layer) -> str:
    step = layer.interval.step
    days, hours, minutes = step.days, step.seconds // 3600, step.seconds % 3600 // 60
    parts = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"))]
    every = " ".join(p for p in parts if not p.startswith("0 "))
    members = len(layer.members)
    note = f"{members} member{'s' if members != 1 else ''}, handing over every {every}"
    return note + (", only at set times of the week" if layer.restrictions else "")


async def schedule_timeline(
    oncall: UnitOfWork, people: UnitOfWork, org_id: str, schedule_id: str, now: datetime, days: int = TIMELINE_DAYS
) -> ScheduleTimeline:
    """From midnight today in the schedule's zone, `days` local days on: each layer's rotation, the overrides, and
    who is on call once they are combined (the schedule's own resolver: the same answer as the API's on-call)."""
    schedule = await get_schedule(oncall, org_id, schedule_id)
    tz: ZoneInfo = zone(schedule.time_zone)
    midnight = local_wall(now, tz).replace(hour=0, minute=0, second=0, microsecond=0)
    marks = [wall_to_utc(midnight + timedelta(days=d), tz) for d in range(days + 1)]
    start, end = marks[0], marks[-1]
    span = (end - start).total_seconds()

    def share(moment: datetime) -> float:
        return round(100 * (moment - start).total_seconds() / span, 3)

    directory = Directory(people, org_id)
    final = schedule.timeline(start, end)
    layer_pieces = [rotation.pieces(start, end) for rotation in schedule.rotations]
    override_pieces = [
        Segment(max(o.start, start), min(o.end, end), o.user_id)
        for o in sorted(schedule.overrides, key=lambda o: o.start)
        if o.end > start and o.start < end
    ]
    user_ids = [s.user_id for pieces in [final, override_pieces, *layer_pieces] for s in pieces]
    user_ids += [m.user_id for layer in schedule.layers for m in layer.members]
    people_found = await directory.users(user_ids)
    colours = {u: i % 8 for i, u in enumerate(dict.fromkeys(user_ids))}

    def source(segment: Segment) -> str:
        covered = any(
            o.user_id == segment.user_id and o.start <= segment.start and segment.end <= o.end for o in override_pieces
        )
        return "override" if covered else "rotation"

    def block(segment: Segment, origin: str = "") -> Block:
        person = people_found.get(segment.user_id)
        return Block(
            user_id=segment.user_id,
            name=(person.name or person.email) if person else "(unknown person)",
            start=segment.start.astimezone(tz),
            end=segment.end.astimezone(tz),
            left=share(segment.start),
            width=share(segment.end) - share(segment.start),
            colour=colours[segment.user_id],
            now=segment.start <= now < segment.end,
            source=origin,
        )

    rows = [
        TimelineRow(layer.name, "layer", [block(s) for s in pieces], _rotation_note(layer))
        for layer, pieces in zip(schedule.layers, layer_pieces, strict=True)
    ]
    rows.append(TimelineRow("Overrides", "overrides", [block(s) for s in override_pieces]))
    rows.append(TimelineRow("On call", "final", [block(s, source(s)) for s in final]))
    current = next((b for b in rows[-1].blocks if b.now), None)
    teams = await directory.teams(schedule.team_ids)
    return ScheduleTimeline(
        schedule=schedule,
        time_zone=schedule.time_zone,
        utc_offset=_offset_label(start.astimezone(tz)),
        start=start.astimezone(tz),
        end=end.astimezone(tz),
        days=[DayMark(m.astimezone(tz).strftime("%a %d %b"), share(m)) for m in marks[:-1]],
        rows=rows,
        now_left=share(now) if start <= now < end else None,
        on_call_now=current,
        team_names=[t.name for t in teams.values()],
    )


# -- the org's pages -----------------------------------------------------------------------------------------------


@dataclass
class PageList:
    pages: list[Page]
    total: int
    number: int  # from 1
    status: str
    names: dict[str, str]  # user and team ids to names
    has_next: bool


def status_filter(status: str) -> str:
    """A page's status as the case query language finds it: the status its case is kept in."""
    if not status:
        return ""
    if status not in PAGE_STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(PAGE_STATUSES)}", "/status")
    return f"status:{PAGE_STATUS_CASE_STATUS[status]}"


async def list_pages(
    oncall: UnitOfWork, people: UnitOfWork, finder: CaseSearch, org_id: str, status: str = "", number: int = 1
) -> PageList:
    """The org's pages, newest first (optionally of one status), through the search the Paging API answers from."""
    params = SearchParams.parse(
        page_size=str(PAGES_PER_SCREEN),
        page_number=str(max(number, 1)),
        sort_field="created_at",
        sort_asc="false",
        filter=status_filter(status) or None,
    )
    found, total = await paging.search_pages(oncall, finder, org_id, params)
    directory = Directory(people, org_id)
    users = await directory.users(u for p in found for u in (p.acknowledged_by_id, p.resolved_by_id) if u)
    teams = await directory.teams(p.team_id for p in found if p.team_id)
    names = {**{u.id: u.name or u.email for u in users.values()}, **{t.id: t.name for t in teams.values()}}
    return PageList(found, total, params.page_number, status, names, params.page_number * params.page_size < total)


async def page_row(oncall: UnitOfWork, people: UnitOfWork, org_id: str, page_id: str) -> PageList:
    """One page, shaped like a list of one (the row the console swaps in after a change)."""
    page = await paging.get_page(oncall, org_id, page_id)
    directory = Directory(people, org_id)
    users = await directory.users(u for u in (page.acknowledged_by_id, page.resolved_by_id) if u)
    teams = await directory.teams([page.team_id] if page.team_id else [])
    names = {**{u.id: u.name or u.email for u in users.values()}, **{t.id: t.name for t in teams.values()}}
    return PageList([page], 1, 1, "", names, False)
