"""The rules of casem/domain/oncall_schedules.py evaluated literally, one instant at a time.

Slow on purpose and written without the resolver's shortcuts: no division to find the shift (handoffs are walked
one by one), no offset spans or week arithmetic for restrictions (each instant's local wall time is read and
compared), no flattening of overrides (they are scanned, newest first). The property tests and bench/oncall.py
compare the resolver with this, minute by minute. The one primitive shared with the resolver is `wall_to_utc`
(when a handoff wall time happens), which has its own brute-force check in the tests.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from casem.domain.oncall_schedules import DAY, Layer, Restriction, Schedule, wall_to_utc


def _inside(restriction: Restriction, wall: datetime) -> bool:
    position = wall.weekday() * DAY + wall.hour * 3600 + wall.minute * 60 + wall.second
    opens = restriction.start_day * DAY + restriction.start_time
    closes = restriction.end_day * DAY + restriction.end_time
    if opens < closes:
        return opens <= position < closes
    return position >= opens or position < closes  # runs over the end of the week


class _Walker:
    """Walks a layer's handoffs one at a time, remembering where it stopped (so a sweep stays linear)."""

    def __init__(self, layer: Layer, tz: ZoneInfo) -> None:
        self.layer = layer
        self.tz = tz
        self.start_wall = layer.rotation_start.astimezone(tz).replace(tzinfo=None)
        self.k = 0
        self._handoffs: dict[int, datetime] = {}

    def handoff(self, k: int) -> datetime:
        found = self._handoffs.get(k)
        if found is None:
            found = wall_to_utc(self.start_wall + self.layer.interval.step * k, self.tz)
            self._handoffs[k] = found
        return found

    def shift_at(self, instant: datetime) -> int:
        while self.handoff(self.k) > instant:
            self.k -= 1
        while self.handoff(self.k + 1) <= instant:
            self.k += 1
        return self.k


class Reference:
    """Who is on call, instant by instant, for one schedule."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.walkers = [_Walker(layer, ZoneInfo(layer.time_zone or schedule.time_zone)) for layer in schedule.layers]

    def on_call_at(self, instant: datetime) -> str | None:
        for override in reversed(self.schedule.overrides):
            if override.start <= instant < override.end:
                return override.user_id
        for walker in reversed(self.walkers):
            layer = walker.layer
            if instant < layer.effective_date:
                continue
            if layer.end_date is not None and instant >= layer.end_date:
                continue
            if layer.restrictions:
                wall = instant.astimezone(walker.tz).replace(tzinfo=None)
                if not any(_inside(r, wall) for r in layer.restrictions):
                    continue
            return layer.members[walker.shift_at(instant) % len(layer.members)].user_id
        return None

    def sweep(self, start: datetime, end: datetime, step: timedelta = timedelta(minutes=1)) -> list[str | None]:
        """Who is on call at start, start + step, ... (before end)."""
        found = []
        instant = start
        while instant < end:
            found.append(self.on_call_at(instant))
            instant += step
        return found
