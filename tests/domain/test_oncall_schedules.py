"""The on-call resolver against the literal minute-by-minute reference, across time zones, daylight-saving changes
and leap days; the wall-clock conversion against a brute-force scan; and the validation of a schedule's parts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casem.domain.errors import InvalidInput
from casem.domain.oncall_reference import Reference
from casem.domain.oncall_schedules import (
    WEEK,
    Interval,
    Layer,
    LayerMember,
    Override,
    Restriction,
    Schedule,
    parse_layer,
    parse_restrictions,
    wall_to_utc,
    zone,
)

ZONES = [
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # a 30-minute daylight-saving shift
    "Pacific/Auckland",
    "America/St_Johns",  # a half-hour offset
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "UTC",
]
# Moments where a zone's clocks change, and leap days: schedules are drawn around them, mostly in that zone.
ANCHORS = [
    ("America/New_York", datetime(2024, 3, 10, 7, 0, tzinfo=UTC)),  # springs forward at 02:00
    ("America/New_York", datetime(2024, 11, 3, 6, 0, tzinfo=UTC)),  # falls back at 02:00
    ("Europe/London", datetime(2024, 3, 31, 1, 0, tzinfo=UTC)),
    ("Europe/Berlin", datetime(2024, 10, 27, 1, 0, tzinfo=UTC)),
    ("Australia/Lord_Howe", datetime(2024, 4, 6, 15, 0, tzinfo=UTC)),  # back by half an hour
    ("Australia/Lord_Howe", datetime(2024, 10, 5, 15, 30, tzinfo=UTC)),  # forward by half an hour
    ("Australia/Sydney", datetime(2024, 10, 5, 16, 0, tzinfo=UTC)),
    ("Pacific/Auckland", datetime(2024, 9, 28, 14, 0, tzinfo=UTC)),
    ("America/St_Johns", datetime(2024, 3, 10, 5, 30, tzinfo=UTC)),
    ("Europe/London", datetime(2024, 2, 29, 0, 0, tzinfo=UTC)),  # leap days
    ("Asia/Kolkata", datetime(2028, 2, 29, 12, 0, tzinfo=UTC)),
    ("America/Sao_Paulo", datetime(2028, 2, 28, 23, 0, tzinfo=UTC)),
]
USERS = [f"user-{n}" for n in range(5)]


def minutes(lo: int, hi: int) -> st.SearchStrategy[timedelta]:
    return st.integers(lo, hi).map(lambda m: timedelta(minutes=m))


def near(anchor: datetime, days: int) -> st.SearchStrategy[datetime]:
    """An instant within `days` of the anchor, often on a whole or half hour close to it (where handoffs and
    restriction edges meet the clock change)."""
    close = st.integers(-12, 12).map(lambda h: anchor + timedelta(minutes=30 * h))
    return close | minutes(-days * 1440, days * 1440).map(lambda d: anchor + d)


@st.composite
def restrictions(draw: st.DrawFn, zone_name: str, anchor: datetime) -> tuple[Restriction, ...]:
    local = anchor.astimezone(ZoneInfo(zone_name))
    found: list[Restriction] = []
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):  # a window opening or closing around the clock change
            start = local.weekday() * 86400 + draw(st.integers(-6, 6)) * 1800 + local.hour * 3600
            start = (start + local.minute * 60) % WEEK
        else:
            start = draw(st.integers(0, WEEK // 60 - 1)) * 60
        span = draw(st.sampled_from([30, 60, 90, 120, 180]) | st.integers(1, 3 * 24 * 60)) * 60
        end = (start + span) % WEEK
        candidate = Restriction(start // 86400, start % 86400, end // 86400, end % 86400)
        clash = any(
            (candidate.start - r.start) % WEEK < r.span or (r.start - candidate.start) % WEEK < candidate.span
            for r in found
        )
        if not clash:
            found.append(candidate)
    return tuple(found)


@st.composite
def layers(draw: st.DrawFn, zone_name: str, anchor: datetime) -> Layer:
    effective = draw(near(anchor, 5)) - timedelta(days=draw(st.integers(0, 3)))
    end = effective + draw(minutes(60, 10 * 1440)) if draw(st.booleans()) else None
    days = draw(st.integers(0, 3))
    seconds = draw(st.integers(0 if days else 4, 8 * 24)) * 900  # whole quarter hours, at least an hour in all
    members = draw(st.lists(st.sampled_from(USERS), min_size=1, max_size=4))
    layer_zone = draw(st.none() | st.just(zone_name) | st.sampled_from(ZONES))
    return Layer(
        id=str(uuid.uuid4()),
        name="layer",
        effective_date=effective,
        end_date=end,
        rotation_start=draw(near(anchor, 7)),
        interval=Interval(days, seconds),
        members=tuple(LayerMember(str(i), u) for i, u in enumerate(members)),
        restrictions=draw(restrictions(layer_zone or zone_name, anchor)),
        time_zone=layer_zone,
    )


@st.composite
def schedules(draw: st.DrawFn) -> tuple[Schedule, datetime]:
    zone_name, anchor = draw(st.sampled_from(ANCHORS))
    if draw(st.integers(0, 4)) == 0:
        zone_name = draw(st.sampled_from(ZONES))
    overrides = []
    for i, start in enumerate(draw(st.lists(near(anchor, 2), max_size=4))):
        overrides.append(Override(str(i), draw(st.sampled_from(USERS)), start, start + draw(minutes(60, 2 * 1440))))
    schedule = Schedule(
        id="s",
        org_id="o",
        name="s",
        time_zone=zone_name,
        layers=draw(st.lists(layers(zone_name, anchor), min_size=1, max_size=3)),
        overrides=overrides,
    )
    return schedule, anchor


@given(schedules(), st.lists(minutes(-2 * 1440, 2 * 1440), min_size=1, max_size=25))
def test_on_call_at_matches_the_reference(case: tuple[Schedule, datetime], offsets: list[timedelta]) -> None:
    schedule, anchor = case
    reference = Reference(schedule)
    for offset in sorted(offsets):
        instant = anchor + offset
        assert schedule.on_call_at(instant) == reference.on_call_at(instant), instant.isoformat()


@settings(max_examples=120)
@given(schedules(), minutes(-2 * 1440, 1440), minutes(1, 2 * 1440))
def test_the_timeline_matches_the_reference_minute_by_minute(
    case: tuple[Schedule, datetime], start_offset: timedelta, length: timedelta
) -> None:
    schedule, anchor = case
    start, end = anchor + start_offset, anchor + start_offset + length
    segments = schedule.timeline(start, end)
    # Disjoint, in order, never empty, and no two adjacent segments of one person left unjoined.
    for a, b in zip(segments, segments[1:], strict=False):
        assert a.end <= b.start and not (a.end == b.start and a.user_id == b.user_id)
    assert all(s.start < s.end and start <= s.start and s.end <= end for s in segments)
    expected = Reference(schedule).sweep(start, end)
    found: list[str | None] = []
    i = 0
    instant = start
    while instant < end:
        while i < len(segments) and segments[i].end <= instant:
            i += 1
        found.append(segments[i].user_id if i < len(segments) and segments[i].start <= instant else None)
        instant += timedelta(minutes=1)
    mismatches = [
        (start + timedelta(minutes=n)).isoformat()
        for n, (a, b) in enumerate(zip(found, expected, strict=True))
        if a != b
    ]
    assert not mismatches, f"{len(mismatches)} minutes differ, first at {mismatches[:3]}"


@given(st.sampled_from(ANCHORS), minutes(-26 * 60, 26 * 60))
def test_wall_to_utc_is_the_first_instant_at_or_past_the_wall_time(
    where: tuple[str, datetime], shift: timedelta
) -> None:
    name, anchor = where
    tz = ZoneInfo(name)
    wall = anchor.astimezone(tz).replace(tzinfo=None) + shift
    instant = anchor + shift - timedelta(hours=16)
    while instant.astimezone(tz).replace(tzinfo=None) < wall:  # a brute-force scan, a minute at a time
        instant += timedelta(minutes=1)
    assert wall_to_utc(wall, tz) == instant


# -- named cases ---------------------------------------------------------------------------------------------


def daily(zone_name: str, start: datetime, members: tuple[str, ...] = ("ann", "bob")) -> Schedule:
    layer = Layer(
        id="l",
        name="daily",
        effective_date=start,
        rotation_start=start,
        interval=Interval(1, 0),
        members=tuple(LayerMember(str(i), m) for i, m in enumerate(members)),
    )
    return Schedule(id="s", org_id="o", name="s", time_zone=zone_name, layers=[layer])


def test_a_daily_9am_handoff_stays_at_9am_across_spring_forward() -> None:
    start = datetime(2024, 3, 8, 14, 0, tzinfo=UTC)  # 09:00 in New York (EST)
    schedule = daily("America/New_York", start)
    segments = schedule.timeline(start, start + timedelta(days=4))
    local = [s.start.astimezone(ZoneInfo("America/New_York")).strftime("%m-%d %H:%M") for s in segments]
    assert local == ["03-08 09:00", "03-09 09:00", "03-10 09:00", "03-11 09:00", "03-12 09:00"]
    assert [s.end - s.start for s in segments][1] == timedelta(hours=23)  # the short night


def test_a_daily_rotation_hands_over_on_a_leap_day() -> None:
    start = datetime(2024, 2, 27, 8, 0, tzinfo=UTC)
    schedule = daily("Europe/London", start, ("ann", "bob", "cid"))
    assert schedule.on_call_at(datetime(2024, 2, 29, 12, 0, tzinfo=UTC)) == "cid"
    assert schedule.on_call_at(datetime(2024, 3, 1, 7, 59, tzinfo=UTC)) == "cid"
    assert schedule.on_call_at(datetime(2024, 3, 1, 8, 0, tzinfo=UTC)) == "ann"


def test_a_handoff_in_the_skipped_hour_happens_when_the_clocks_jump() -> None:
    tz = ZoneInfo("America/New_York")
    assert wall_to_utc(datetime(2024, 3, 10, 2, 30), tz) == datetime(2024, 3, 10, 7, 0, tzinfo=UTC)
    assert wall_to_utc(datetime(2024, 11, 3, 1, 30), tz) == datetime(2024, 11, 3, 5, 30, tzinfo=UTC)  # first 01:30


def test_overrides_win_and_the_latest_added_wins_among_them() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    schedule = daily("UTC", start)
    schedule.overrides = [
        Override("1", "olga", start + timedelta(hours=2), start + timedelta(hours=6)),
        Override("2", "pete", start + timedelta(hours=4), start + timedelta(hours=8)),
    ]
    at = [schedule.on_call_at(start + timedelta(hours=h)) for h in (1, 3, 5, 7, 9)]
    assert at == ["ann", "olga", "pete", "pete", "ann"]


def test_later_layers_win_where_they_cover_and_restrictions_leave_gaps() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
    schedule = daily("UTC", start)
    business = Restriction(0, 9 * 3600, 0, 17 * 3600)  # Mondays 09:00-17:00
    schedule.layers.append(
        Layer("l2", "days", start, start, Interval(7, 0), (LayerMember("m", "dee"),), restrictions=(business,))
    )
    assert schedule.on_call_at(start + timedelta(hours=8)) == "ann"
    assert schedule.on_call_at(start + timedelta(hours=10)) == "dee"
    only_business = Schedule(id="s", org_id="o", name="s", time_zone="UTC", layers=[schedule.layers[1]])
    assert only_business.on_call_at(start + timedelta(hours=18)) is None


def test_shifts_around_an_instant_are_whole() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    schedule = daily("UTC", start, ("ann", "bob"))
    shifts = schedule.shifts_around(start + timedelta(days=3, hours=5))
    assert [(s.user_id, s.start.day, s.end.day) for s in shifts.values() if s] == [
        ("ann", 3, 4),
        ("bob", 4, 5),
        ("ann", 5, 6),
    ]


# -- validation ----------------------------------------------------------------------------------------------

LAYER = {
    "name": "primary",
    "effective_date": "2025-02-03T05:00:00Z",
    "rotation_start": "2025-02-01T00:00:00Z",
    "interval": {"days": 1},
    "members": [{"user": {"id": "u1"}}],
}


@pytest.mark.parametrize(
    ("change", "pointer", "words"),
    [
        ({"interval": {"days": 0, "seconds": 0}}, "/l/interval", "zero"),
        ({"interval": {}}, "/l/interval", "zero"),
        ({"interval": {"seconds": 1800}}, "/l/interval", "at least 1 hour"),
        ({"interval": {"days": -1}}, "/l/interval/days", "from 0 to 400"),
        ({"time_zone": "Mars/Olympus"}, "/l/time_zone", "not an IANA time zone"),
        ({"end_date": "2025-02-03T05:00:00Z"}, "/l/end_date", "after effective_date"),
        ({"members": []}, "/l/members", "at least one"),
        ({"effective_date": "yesterday"}, "/l/effective_date", "ISO 8601"),
        (
            {
                "restrictions": [
                    {"start_day": "monday", "start_time": "09:00:00", "end_day": "monday", "end_time": "09:00:00"}
                ]
            },
            "/l/restrictions/0",
            "same moment",
        ),
        (
            {
                "restrictions": [
                    {"start_day": "funday", "start_time": "09:00", "end_day": "monday", "end_time": "10:00"}
                ]
            },
            "/l/restrictions/0/start_day",
            "monday",
        ),
        (
            {
                "restrictions": [
                    {"start_day": "monday", "start_time": "25:00", "end_day": "monday", "end_time": "10:00"}
                ]
            },
            "/l/restrictions/0/start_time",
            "time of day",
        ),
    ],
)
def test_a_bad_layer_is_refused_with_the_field(change: dict, pointer: str, words: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_layer({**LAYER, **change}, "/l")
    assert refused.value.pointer == pointer
    assert words in refused.value.detail


def test_overlapping_restrictions_are_refused() -> None:
    weekdays = {"start_day": "monday", "start_time": "09:00:00", "end_day": "friday", "end_time": "17:00:00"}
    wednesday = {"start_day": "wednesday", "start_time": "12:00:00", "end_day": "wednesday", "end_time": "13:00:00"}
    with pytest.raises(InvalidInput) as refused:
        parse_restrictions([weekdays, wednesday], "/r")
    assert refused.value.pointer == "/r/1" and "overlaps restriction 0" in refused.value.detail
    weekend = {"start_day": "friday", "start_time": "17:00:00", "end_day": "monday", "end_time": "09:00:00"}
    assert len(parse_restrictions([weekdays, weekend], "/r")) == 2  # touching is fine; wrapping the week too


def test_time_zones_are_checked() -> None:
    assert zone("Europe/Paris").key == "Europe/Paris"
    for bad in ("", "Nowhere/City", "../etc/passwd", 5):
        with pytest.raises(InvalidInput):
            zone(bad)


def test_a_short_range_across_the_jump_reads_the_new_offset() -> None:
    """Found by the property test: a range shorter than the offset probe step, ending just after the clocks jump,
    must still see the jump (Sunday 03:00 EDT is inside a Sunday 03:00-03:30 window)."""
    jump = datetime(2024, 3, 10, 7, 0, tzinfo=UTC)
    sunday_early = Restriction(6, 3 * 3600, 6, 3 * 3600 + 1800)
    layer = Layer(
        "l", "l", jump - timedelta(days=1), jump, Interval(0, 3600), (LayerMember("m", "ann"),), (sunday_early,)
    )
    schedule = Schedule(id="s", org_id="o", name="s", time_zone="America/New_York", layers=[layer])
    [segment] = schedule.timeline(jump - timedelta(minutes=1), jump + timedelta(minutes=1))
    assert (segment.start, segment.end, segment.user_id) == (jump, jump + timedelta(minutes=1), "ann")
    assert schedule.on_call_at(jump) == Reference(schedule).on_call_at(jump) == "ann"
