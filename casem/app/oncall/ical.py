"""A schedule as an iCalendar feed (RFC 5545, written with `icalendar`): one event per stretch on call, so people
subscribe to it from their calendars and see who is on call, in their own time zone."""

from __future__ import annotations

from collections.abc import Mapping

from icalendar import Calendar, Event

from casem.app.oncall.schedules import FeedWindow, shift_id
from casem.domain.identity import User
from casem.domain.oncall_schedules import Schedule


def schedule_calendar(schedule: Schedule, people: Mapping[str, User], window: FeedWindow) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", "-//casem//on-call schedules//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"On call: {schedule.name}")
    calendar.add("x-wr-timezone", schedule.time_zone)
    for segment in schedule.timeline(window.start, window.end):
        person = people.get(segment.user_id)
        who = (person.name or person.email) if person else segment.user_id
        event = Event()
        event.add("uid", f"{shift_id(schedule.id, segment)}@casem")
        event.add("dtstamp", schedule.modified_at or schedule.created_at)
        event.add("dtstart", segment.start)
        event.add("dtend", segment.end)
        event.add("summary", f"{who} on call ({schedule.name})")
        event.add("description", f"{who} is on call for {schedule.name} in casem.")
        event.add("transp", "TRANSPARENT")  # being on call does not make anyone busy
        if person is not None:
            event.add("attendee", f"mailto:{person.email}")
        calendar.add_component(event)
    return calendar.to_ical()
