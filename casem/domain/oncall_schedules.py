"""On-call schedules and who is on call: pure rules over a schedule and an instant or a range.

A schedule has layers and overrides. A layer rotates its ordered members: member k % n holds shift k, and shift k
starts at the layer's handoff wall time `rotation_start + k * interval`, read on the wall clock of the layer's time
zone (the schedule's when the layer names none). A daily 09:00 handoff therefore stays at 09:00 local across
daylight-saving changes, and the shift that contains a change is an hour shorter or longer. A handoff wall time the
clocks skip (02:30 on a spring-forward night) happens when they jump; one they repeat happens the first time.

A layer covers an instant when the instant is in [effective_date, end_date), and, if the layer has weekly
restrictions, the instant's local wall time (day of week and time of day) falls inside one of them. Where several
layers cover an instant the last layer in the list wins; an override (a person covering a time range) wins over
every layer, and of overlapping overrides the one added last wins.

`on_call_at` answers for an instant, `timeline` for a range (maximal segments, one person each). Both are checked
against a literal minute-by-minute evaluation of these rules (casem/domain/oncall_reference.py).
"""

from __future__ import annotations

import bisect
import heapq
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from casem.domain.errors import InvalidInput
from casem.domain.events import DomainEvent, EventRecorder, utcnow

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY = 86_400
WEEK = 7 * DAY
MIN_INTERVAL_SECONDS = 3_600  # "Should be at least 1 hour" (Datadog's LayerAttributesInterval)
MAX_INTERVAL_DAYS = 400
MAX_INTERVAL_SECONDS = 2_592_000
MAX_LAYERS = 20
MAX_MEMBERS = 200
MAX_RESTRICTIONS = 50
NAME_MAX = 255
# Instants a schedule may name: far enough for any rotation, near enough for wall-clock arithmetic.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
TIME_OF_DAY = re.compile(r"^(\d{2}):(\d{2})(?::(\d{2}))?$")
POSITIONS = ("previous", "current", "next")

# -- time zones and wall clocks ------------------------------------------------------------------------------


def zone(name: Any, pointer: str = "/data/attributes/time_zone") -> ZoneInfo:
    """The IANA time zone `name`, or a 400 naming the field."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("time_zone must be an IANA time zone name such as America/New_York", pointer)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"{name!r} is not an IANA time zone (for example Europe/Paris or UTC)", pointer) from None


def local_wall(instant: datetime, tz: ZoneInfo) -> datetime:
    """The naive wall-clock time of `instant` in `tz`."""
    return instant.astimezone(tz).replace(tzinfo=None)


def wall_to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    """The instant a wall-clock time happens in `tz`: the first of two in a repeated hour, and for a time the clocks
    skip, the moment they jump over it (the first instant whose wall time is past it)."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if local_wall(first, tz) == wall:
        return first
    # In a gap, fold=0 reads the wall time with the offset before the jump (an instant after it) and fold=1 with
    # the offset after it (an instant before it): the jump lies between, at whole seconds.
    other = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    lo, hi = int(min(first, other).timestamp()), int(max(first, other).timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if local_wall(datetime.fromtimestamp(mid, UTC), tz) >= wall:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def week_position(wall: datetime) -> int:
    """Seconds since Monday 00:00 of the wall time's week."""
    return wall.weekday() * DAY + wall.hour * 3600 + wall.minute * 60 + wall.second


def offset_spans(tz: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, datetime, timedelta]]:
    """[start, end) cut where `tz` changes its UTC offset: (span start, span end, offset) with local = utc + offset.

    Offsets are probed every 6 hours and a change is located to the second; tzdb has no two changes of one zone
    that close together."""
    spans: list[tuple[datetime, datetime, timedelta]] = []
    step = timedelta(hours=6)
    last = end - timedelta(microseconds=1)  # the last instant inside [start, end)
    cur = start
    offset = _offset(tz, cur)
    probe = cur
    while probe < end:
        nxt = min(probe + step, last)
        nxt_offset = _offset(tz, nxt)
        if nxt_offset != offset:
            lo, hi = int(probe.timestamp()), int(nxt.timestamp())
            while hi - lo > 1:  # the first second with the new offset
                mid = (lo + hi) // 2
                if _offset(tz, datetime.fromtimestamp(mid, UTC)) == offset:
                    lo = mid
                else:
                    hi = mid
            change = datetime.fromtimestamp(hi, UTC)
            spans.append((cur, change, offset))
            cur, offset = change, _offset(tz, change)
        probe = nxt if nxt < last else end
    spans.append((cur, end, offset))
    return [s for s in spans if s[0] < s[1]]


def _offset(tz: ZoneInfo, instant: datetime) -> timedelta:
    off = instant.astimezone(tz).utcoffset()
    assert off is not None
    return off


# -- validation of the parts of a schedule -------------------------------------------------------------------


def parse_instant(value: Any, pointer: str) -> datetime:
    """An ISO 8601 date-time (a value without an offset is read as UTC), within the years a schedule may name."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise InvalidInput(
                f"{value!r} is not an ISO 8601 date-time such as 2025-02-03T05:00:00Z", pointer
            ) from None
    else:
        raise InvalidInput("expected an ISO 8601 date-time such as 2025-02-03T05:00:00Z", pointer)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    parsed = parsed.astimezone(UTC)
    if not EARLIEST <= parsed < LATEST:
        raise InvalidInput(f"{parsed.isoformat()} is outside the years {EARLIEST.year} to {LATEST.year - 1}", pointer)
    return parsed


def parse_time_of_day(value: Any, pointer: str) -> int:
    """ "HH:MM:SS" (or "HH:MM") as seconds since midnight."""
    match = TIME_OF_DAY.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidInput(f"{value!r} is not a time of day such as 09:00:00", pointer)
    hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3] or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise InvalidInput(f"{value!r} is not a time of day between 00:00:00 and 23:59:59", pointer)
    return hours * 3600 + minutes * 60 + seconds


def parse_weekday(value: Any, pointer: str) -> int:
    if value not in WEEKDAYS:
        raise InvalidInput(f"invalid value {value!r}: must be one of {', '.join(WEEKDAYS)}", pointer)
    return WEEKDAYS.index(value)


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


@dataclass(frozen=True)
class Restriction:
    """A weekly window from (start day, start time) up to (end day, end time), on the layer's wall clock; a window
    whose end comes before its start in the week runs over the week's end (friday 18:00 to monday 09:00)."""

    start_day: int
    start_time: int
    end_day: int
    end_time: int

    @property
    def start(self) -> int:
        return self.start_day * DAY + self.start_time

    @property
    def end(self) -> int:
        return self.end_day * DAY + self.end_time

    @property
    def span(self) -> int:
        return (self.end - self.start) % WEEK

    def covers(self, position: int) -> bool:
        return (position - self.start) % WEEK < self.span

    def to_json(self) -> dict[str, str]:
        return {
            "start_day": WEEKDAYS[self.start_day],
            "start_time": _clock(self.start_time),
            "end_day": WEEKDAYS[self.end_day],
            "end_time": _clock(self.end_time),
        }

    @classmethod
    def parse(cls, raw: Any, pointer: str) -> Restriction:
        if not isinstance(raw, dict):
            raise InvalidInput("a restriction is an object with start_day, start_time, end_day and end_time", pointer)
        unknown = sorted(set(raw) - {"start_day", "start_time", "end_day", "end_time"})
        if unknown:
            raise InvalidInput(f"{pointer}/{unknown[0]} is not a known field", f"{pointer}/{unknown[0]}")
        for name in ("start_day", "start_time", "end_day", "end_time"):
            if raw.get(name) is None:
                raise InvalidInput(f"{pointer}/{name} is required", f"{pointer}/{name}")
        restriction = cls(
            parse_weekday(raw["start_day"], f"{pointer}/start_day"),
            parse_time_of_day(raw["start_time"], f"{pointer}/start_time"),
            parse_weekday(raw["end_day"], f"{pointer}/end_day"),
            parse_time_of_day(raw["end_time"], f"{pointer}/end_time"),
        )
        if restriction.span == 0:
            raise InvalidInput(
                "the restriction starts and ends at the same moment of the week: it covers nothing", pointer
            )
        return restriction


def parse_restrictions(raw: Any, pointer: str) -> tuple[Restriction, ...]:
    """Weekly windows that must not overlap (two windows covering the same moment make no sense)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidInput("restrictions must be a list", pointer)
    if len(raw) > MAX_RESTRICTIONS:
        raise InvalidInput(f"at most {MAX_RESTRICTIONS} restrictions", pointer)
    parsed = [Restriction.parse(item, f"{pointer}/{i}") for i, item in enumerate(raw)]
    for i, a in enumerate(parsed):
        for j in range(i):
            b = parsed[j]
            if (a.start - b.start) % WEEK < b.span or (b.start - a.start) % WEEK < a.span:
                raise InvalidInput(f"restriction {i} overlaps restriction {j}", f"{pointer}/{i}")
    return tuple(parsed)


@dataclass(frozen=True)
class Interval:
    days: int
    seconds: int

    @property
    def step(self) -> timedelta:
        return timedelta(days=self.days, seconds=self.seconds)

    @property
    def total_seconds(self) -> int:
        return self.days * DAY + self.seconds

    def to_json(self) -> dict[str, int]:
        return {"days": self.days, "seconds": self.seconds}

    @classmethod
    def parse(cls, raw: Any, pointer: str) -> Interval:
        if not isinstance(raw, dict):
            raise InvalidInput("interval must be an object with days and/or seconds", pointer)
        unknown = sorted(set(raw) - {"days", "seconds"})
        if unknown:
            raise InvalidInput(f"{pointer}/{unknown[0]} is not a known field", f"{pointer}/{unknown[0]}")
        values = []
        for name, limit in (("days", MAX_INTERVAL_DAYS), ("seconds", MAX_INTERVAL_SECONDS)):
            value = raw.get(name) or 0
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
                raise InvalidInput(f"{name} must be a whole number from 0 to {limit}", f"{pointer}/{name}")
            values.append(value)
        interval = cls(values[0], values[1])
        if interval.total_seconds == 0:
            raise InvalidInput("the interval is zero: a rotation must last at least 1 hour", pointer)
        if interval.total_seconds < MIN_INTERVAL_SECONDS:
            raise InvalidInput(f"the interval is {interval.total_seconds} seconds: it must be at least 1 hour", pointer)
        return interval


@dataclass(frozen=True)
class LayerMember:
    id: str
    user_id: str


@dataclass(frozen=True)
class Layer:
    id: str
    name: str
    effective_date: datetime
    rotation_start: datetime
    interval: Interval
    members: tuple[LayerMember, ...]
    restrictions: tuple[Restriction, ...] = ()
    end_date: datetime | None = None
    time_zone: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "effective_date": self.effective_date.isoformat(),
            "end_date": self.end_date.isoformat() if self.end_date else None,
            "rotation_start": self.rotation_start.isoformat(),
            "interval": self.interval.to_json(),
            "members": [{"id": m.id, "user_id": m.user_id} for m in self.members],
            "restrictions": [r.to_json() for r in self.restrictions],
            "time_zone": self.time_zone,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Layer:
        return cls(
            id=record["id"],
            name=record["name"],
            effective_date=datetime.fromisoformat(record["effective_date"]),
            end_date=datetime.fromisoformat(record["end_date"]) if record.get("end_date") else None,
            rotation_start=datetime.fromisoformat(record["rotation_start"]),
            interval=Interval(**record["interval"]),
            members=tuple(LayerMember(m["id"], m["user_id"]) for m in record["members"]),
            restrictions=tuple(Restriction.parse(r, "") for r in record.get("restrictions") or ()),
            time_zone=record.get("time_zone"),
        )


def parse_layer(raw: Any, pointer: str, *, previous: Layer | None = None) -> Layer:
    """One layer of a create or update request. `previous`: the stored layer of the same id (its members keep their
    ids when they keep their place)."""
    if not isinstance(raw, dict):
        raise InvalidInput("a layer is an object", pointer)
    known = {"id", "name", "effective_date", "end_date", "rotation_start", "interval", "members", "restrictions"}
    unknown = sorted(set(raw) - known - {"time_zone"})
    if unknown:
        raise InvalidInput(f"{pointer}/{unknown[0]} is not a known field", f"{pointer}/{unknown[0]}")
    for required in ("name", "effective_date", "rotation_start", "interval", "members"):
        if raw.get(required) is None:
            raise InvalidInput(f"{pointer}/{required} is required", f"{pointer}/{required}")
    name = raw["name"]
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX:
        raise InvalidInput(f"name must be a non-empty string of at most {NAME_MAX} characters", f"{pointer}/name")
    effective = parse_instant(raw["effective_date"], f"{pointer}/effective_date")
    end = parse_instant(raw["end_date"], f"{pointer}/end_date") if raw.get("end_date") is not None else None
    if end is not None and end <= effective:
        raise InvalidInput("end_date must come after effective_date", f"{pointer}/end_date")
    time_zone = raw.get("time_zone")
    if time_zone is not None and time_zone != "":
        zone(time_zone, f"{pointer}/time_zone")
    else:
        time_zone = None
    members_raw = raw["members"]
    if not isinstance(members_raw, list) or not members_raw:
        raise InvalidInput("members must list at least one member", f"{pointer}/members")
    if len(members_raw) > MAX_MEMBERS:
        raise InvalidInput(f"a layer has at most {MAX_MEMBERS} members", f"{pointer}/members")
    members = []
    for i, item in enumerate(members_raw):
        user = item.get("user") if isinstance(item, dict) else None
        user_id = user.get("id") if isinstance(user, dict) else None
        if not isinstance(user_id, str) or not user_id:
            raise InvalidInput('a member is {"user": {"id": <user id>}}', f"{pointer}/members/{i}/user/id")
        kept = previous.members[i].id if previous and i < len(previous.members) else None
        members.append(LayerMember(kept or str(uuid.uuid4()), user_id.lower()))
    return Layer(
        id=previous.id if previous else str(uuid.uuid4()),
        name=name,
        effective_date=effective,
        end_date=end,
        rotation_start=parse_instant(raw["rotation_start"], f"{pointer}/rotation_start"),
        interval=Interval.parse(raw["interval"], f"{pointer}/interval"),
        members=tuple(members),
        restrictions=parse_restrictions(raw.get("restrictions"), f"{pointer}/restrictions"),
        time_zone=time_zone,
    )


@dataclass(frozen=True)
class Override:
    """A person covering [start, end) whatever the layers say."""

    id: str
    user_id: str
    start: datetime
    end: datetime
    created_at: datetime = field(default_factory=utcnow, compare=False)

    @classmethod
    def parse(cls, user_id: Any, start: Any, end: Any, pointer: str = "/data/attributes") -> Override:
        if not isinstance(user_id, str) or not user_id:
            raise InvalidInput("user_id is required", f"{pointer}/user_id")
        begin = parse_instant(start, f"{pointer}/start")
        finish = parse_instant(end, f"{pointer}/end")
        if finish <= begin:
            raise InvalidInput("end must come after start", f"{pointer}/end")
        return cls(str(uuid.uuid4()), user_id.lower(), begin, finish)


# -- who is on call ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """`user_id` is on call over [start, end)."""

    start: datetime
    end: datetime
    user_id: str


class Rotation:
    """A layer's handoffs: shift k starts at `boundary(k)`."""

    def __init__(self, layer: Layer, default_zone: str) -> None:
        self.layer = layer
        self.tz = ZoneInfo(layer.time_zone or default_zone)
        self.start_wall = local_wall(layer.rotation_start, self.tz)
        self.step = layer.interval.step

    def boundary(self, k: int) -> datetime:
        return wall_to_utc(self.start_wall + self.step * k, self.tz)

    def index_at(self, instant: datetime) -> int:
        """The shift containing `instant`: the largest k with boundary(k) <= instant."""
        k = (local_wall(instant, self.tz) - self.start_wall) // self.step
        while self.boundary(k + 1) <= instant:
            k += 1
        while self.boundary(k) > instant:
            k -= 1
        return k

    def in_effect(self, instant: datetime) -> bool:
        layer = self.layer
        return layer.effective_date <= instant and (layer.end_date is None or instant < layer.end_date)

    def covers(self, instant: datetime) -> bool:
        if not self.in_effect(instant):
            return False
        if not self.layer.restrictions:
            return True
        position = week_position(local_wall(instant, self.tz))
        return any(r.covers(position) for r in self.layer.restrictions)

    def user_at(self, instant: datetime) -> str | None:
        if not self.covers(instant):
            return None
        members = self.layer.members
        return members[self.index_at(instant) % len(members)].user_id

    def windows(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The parts of [start, end) inside the layer's weekly restrictions (all of it when it has none)."""
        if not self.layer.restrictions:
            return [(start, end)]
        found: list[tuple[datetime, datetime]] = []
        for span_start, span_end, offset in offset_spans(self.tz, start, end):
            wall_start = span_start.replace(tzinfo=None) + offset
            wall_end = span_end.replace(tzinfo=None) + offset
            monday = (wall_start - timedelta(seconds=week_position(wall_start))).replace(microsecond=0)
            week = monday - timedelta(days=7)  # a window of the week before may run into this one
            while week < wall_end:
                for r in self.layer.restrictions:
                    opens = week + timedelta(seconds=r.start)
                    closes = opens + timedelta(seconds=r.span)
                    lo, hi = max(opens, wall_start), min(closes, wall_end)
                    if lo < hi:
                        found.append(((lo - offset).replace(tzinfo=UTC), (hi - offset).replace(tzinfo=UTC)))
                week += timedelta(days=7)
        return _merge_spans(found)

    def pieces(self, start: datetime, end: datetime) -> list[Segment]:
        """Who this layer puts on call over [start, end), in order."""
        layer = self.layer
        lo = max(start, layer.effective_date)
        hi = min(end, layer.end_date) if layer.end_date else end
        if lo >= hi:
            return []
        members = layer.members
        found: list[Segment] = []
        k = self.index_at(lo)
        next_handoff = self.boundary(k + 1)
        for window_start, window_end in self.windows(lo, hi):
            cur = window_start
            while next_handoff <= cur:
                k += 1
                next_handoff = self.boundary(k + 1)
            while cur < window_end:
                piece_end = min(next_handoff, window_end)
                found.append(Segment(cur, piece_end, members[k % len(members)].user_id))
                cur = piece_end
                while next_handoff <= cur:
                    k += 1
                    next_handoff = self.boundary(k + 1)
        return found


def _merge_spans(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def flatten_overrides(overrides: Sequence[Override]) -> list[Segment]:
    """Overrides as disjoint segments in time order: where they overlap, the one added last (later in the list)."""
    points = sorted({o.start for o in overrides} | {o.end for o in overrides})
    by_start: dict[datetime, list[int]] = {}
    for i, o in enumerate(overrides):
        by_start.setdefault(o.start, []).append(i)
    active: list[int] = []  # max-heap of list positions (negated); ended ones are dropped lazily
    segments: list[Segment] = []
    for lo, hi in zip(points, points[1:], strict=False):
        for i in by_start.get(lo, ()):
            heapq.heappush(active, -i)
        while active and overrides[-active[0]].end <= lo:
            heapq.heappop(active)
        if active:
            user = overrides[-active[0]].user_id
            if segments and segments[-1].end == lo and segments[-1].user_id == user:
                segments[-1] = Segment(segments[-1].start, hi, user)
            else:
                segments.append(Segment(lo, hi, user))
    return segments


def merge_segments(segments: Iterable[Segment]) -> list[Segment]:
    """Adjacent segments of one person joined."""
    merged: list[Segment] = []
    for s in segments:
        if merged and merged[-1].end == s.start and merged[-1].user_id == s.user_id:
            merged[-1] = Segment(merged[-1].start, s.end, s.user_id)
        else:
            merged.append(s)
    return merged


@dataclass(frozen=True)
class Shift:
    """A person's stretch on call, and where it sits relative to the instant asked about."""

    position: str
    segment: Segment


@dataclass(eq=False)
class Schedule(EventRecorder):
    id: str
    org_id: str
    name: str
    time_zone: str
    layers: list[Layer] = field(default_factory=list)
    team_ids: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    overrides: list[Override] = field(default_factory=list)
    created_by_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None

    # -- resolution --------------------------------------------------------------------------------------
    @cached_property
    def rotations(self) -> list[Rotation]:
        return [Rotation(layer, self.time_zone) for layer in self.layers]

    @cached_property
    def _override_segments(self) -> tuple[list[Segment], list[datetime]]:
        segments = flatten_overrides(self.overrides)
        return segments, [s.start for s in segments]

    def override_at(self, instant: datetime) -> str | None:
        segments, starts = self._override_segments
        i = bisect.bisect_right(starts, instant) - 1
        if i >= 0 and instant < segments[i].end:
            return segments[i].user_id
        return None

    def on_call_at(self, instant: datetime) -> str | None:
        """Who is on call at `instant` (None: nobody)."""
        instant = instant.astimezone(UTC)
        user = self.override_at(instant)
        if user is not None:
            return user
        for rotation in reversed(self.rotations):
            user = rotation.user_at(instant)
            if user is not None:
                return user
        return None

    def timeline(self, start: datetime, end: datetime) -> list[Segment]:
        """Who is on call over [start, end): disjoint segments in time order, one person each, gaps left out."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if start >= end:
            return []
        layers = [rotation.pieces(start, end) for rotation in self.rotations]
        overrides = [
            Segment(max(s.start, start), min(s.end, end), s.user_id)
            for s in self._override_segments[0]
            if s.end > start and s.start < end
        ]
        points = sorted({start, end} | {p for pieces in [*layers, overrides] for s in pieces for p in (s.start, s.end)})
        cursors = [0] * len(layers)
        o = 0
        painted: list[Segment] = []
        for lo, hi in zip(points, points[1:], strict=False):
            if lo >= end:
                break
            while o < len(overrides) and overrides[o].end <= lo:
                o += 1
            user = overrides[o].user_id if o < len(overrides) and overrides[o].start <= lo else None
            for index in range(len(layers) - 1, -1, -1):
                pieces = layers[index]
                while cursors[index] < len(pieces) and pieces[cursors[index]].end <= lo:
                    cursors[index] += 1
                if user is None and cursors[index] < len(pieces) and pieces[cursors[index]].start <= lo:
                    user = pieces[cursors[index]].user_id
            if user is not None:
                painted.append(Segment(lo, hi, user))
        return merge_segments(painted)

    def _horizon(self) -> timedelta:
        longest = max((layer.interval.step for layer in self.layers), default=timedelta(days=1))
        return max(longest * 2, timedelta(days=8))

    def shifts_around(self, instant: datetime) -> dict[str, Segment | None]:
        """The previous, current and next stretch of on-call time around `instant`, each whole: the window looked
        at widens until it cuts none of them (up to about two years either side), and a neighbour not found
        within four rotations (at least five weeks) is reported as none."""
        instant = instant.astimezone(UTC)
        horizon = self._horizon()
        longest = max((layer.interval.step for layer in self.layers), default=timedelta(days=1))
        search_limit = max(longest * 4, timedelta(days=35))
        limit = timedelta(days=800)
        while True:
            lo = max(instant - horizon, EARLIEST)
            hi = min(instant + horizon, LATEST)
            segments = self.timeline(lo, hi)
            current = next((s for s in segments if s.start <= instant < s.end), None)
            before = [s for s in segments if s.end <= instant]
            after = [s for s in segments if s.start > instant]
            found = {
                "previous": before[-1] if before else None,
                "current": current,
                "next": after[0] if after else None,
            }
            cut = any(
                s is not None and ((s.start == lo and lo > EARLIEST) or (s.end == hi and hi < LATEST))
                for s in found.values()
            )
            missing = found["previous"] is None or found["next"] is None
            if horizon >= limit or not (cut or (missing and horizon < search_limit)):
                return found
            horizon *= 2

    # -- changes -----------------------------------------------------------------------------------------
    def _event(self, kind: str, actor_id: str | None, data: dict[str, Any]) -> None:
        self.record(
            DomainEvent(
                type=f"schedule.{kind}",
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.id,
                subject_type="schedule",
                data={"name": self.name, **data},
            )
        )

    def _summary(self) -> dict[str, Any]:
        return {
            "time_zone": self.time_zone,
            "layers": [layer.id for layer in self.layers],
            "members": sorted({m.user_id for layer in self.layers for m in layer.members}),
            "team_ids": list(self.team_ids),
        }

    @classmethod
    def create(cls, *, actor_id: str | None, **fields: Any) -> Schedule:
        schedule = cls(created_by_id=actor_id, **fields)
        schedule._event("created", actor_id, schedule._summary())
        return schedule

    def replace(
        self, actor_id: str | None, *, name: str, time_zone: str, layers: list[Layer], team_ids: list[str]
    ) -> None:
        self.name, self.time_zone, self.layers, self.team_ids = name, time_zone, layers, team_ids
        self.modified_at = utcnow()
        self.__dict__.pop("rotations", None)
        self._event("updated", actor_id, self._summary())

    def add_override(self, override: Override, actor_id: str | None) -> None:
        self.overrides.append(override)
        self.__dict__.pop("_override_segments", None)
        self._event(
            "override_added",
            actor_id,
            {
                "override_id": override.id,
                "user_id": override.user_id,
                "start": override.start.isoformat(),
                "end": override.end.isoformat(),
            },
        )

    def remove_override(self, override_id: str, actor_id: str | None) -> bool:
        kept = [o for o in self.overrides if o.id != override_id]
        if len(kept) == len(self.overrides):
            return False
        self.overrides = kept
        self.__dict__.pop("_override_segments", None)
        self._event("override_removed", actor_id, {"override_id": override_id})
        return True

    def record_deleted(self, actor_id: str | None) -> None:
        self._event("deleted", actor_id, {})


def validate_schedule_name(name: Any, pointer: str = "/data/attributes/name") -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name must be a non-empty string", pointer)
    if len(name) > NAME_MAX:
        raise InvalidInput(f"name is {len(name)} characters long; the limit is {NAME_MAX}", pointer)
    return name


def parse_layers(raw: Any, previous: Sequence[Layer] = (), pointer: str = "/data/attributes/layers") -> list[Layer]:
    """The layers of a request, in order. On update a layer naming the id of a stored one keeps that id."""
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("layers must list at least one layer", pointer)
    if len(raw) > MAX_LAYERS:
        raise InvalidInput(f"a schedule has at most {MAX_LAYERS} layers", pointer)
    stored = {layer.id: layer for layer in previous}
    layers = []
    for i, item in enumerate(raw):
        ident = item.get("id") if isinstance(item, dict) else None
        if ident is not None and ident not in stored:
            raise InvalidInput(f"layer {ident!r} is not a layer of this schedule", f"{pointer}/{i}/id")
        layers.append(parse_layer(item, f"{pointer}/{i}", previous=stored.get(ident) if ident else None))
    return layers
