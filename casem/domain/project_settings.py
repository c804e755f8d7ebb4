"""A project's settings (Datadog's ProjectSettings) and the rules that make them act. Pure: no I/O.

Sections casem acts on:
- `auto_close_inactive_cases` (`enabled`, `max_inactive_time_in_secs`): the caseworker closes cases with no
  activity for that long (casem/app/automation/auto_close.py);
- `auto_transition_assigned_cases` (`auto_transition_assigned_cases_on_self_assigned`): a case someone assigns
  to themselves moves from OPEN to IN_PROGRESS;
- `notification` (`enabled`, `destinations`, `notify_on_*`): the listed events tell the case's assignee and
  watchers through the destinations (1 email, 2 Slack, 3 in-app).

Sections stored and echoed but without effect here: `integration_monitor` and `integration_incident` (casem
has no monitor or incident product to connect them to; the API says so in its answer). The integration
sections of the on-call, Jira and ServiceNow integrations are theirs to interpret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from casem.domain.errors import InvalidInput

AUTO_CLOSE = "auto_close_inactive_cases"
AUTO_TRANSITION = "auto_transition_assigned_cases"
NOTIFICATION = "notification"
INTEGRATION_MONITOR = "integration_monitor"
INTEGRATION_INCIDENT = "integration_incident"
# Accepted as given: their meaning belongs to the on-call and third-party integrations.
PASS_THROUGH_SECTIONS = ("integration_on_call", "integration_jira", "integration_service_now")
UNAVAILABLE_SECTIONS = {
    INTEGRATION_MONITOR: "casem has no monitor product: integration_monitor is stored and returned but creates "
    "or resolves no case",
    INTEGRATION_INCIDENT: "casem has no incident product: integration_incident is stored and returned but "
    "escalates no case to an incident",
}

MIN_INACTIVE_SECONDS = 60
MAX_INACTIVE_SECONDS = 10 * 365 * 86_400

DESTINATION_EMAIL, DESTINATION_SLACK, DESTINATION_IN_APP = 1, 2, 3
DESTINATIONS = {DESTINATION_EMAIL: "email", DESTINATION_SLACK: "slack", DESTINATION_IN_APP: "in-app"}
PRIORITIES = ("NOT_DEFINED", "P1", "P2", "P3", "P4", "P5")

NOTIFY_FLAGS = (
    "notify_on_case_assignment",
    "notify_on_case_closed",
    "notify_on_case_comment",
    "notify_on_case_comment_mention",
    "notify_on_case_priority_change",
    "notify_on_case_status_change",
    "notify_on_case_unassignment",
)
# The case events the notification settings can speak about.
NOTIFYING_EVENTS = frozenset(
    {"case.assigned", "case.unassigned", "case.status_changed", "case.priority_changed", "case.comment_added"}
)

SETTINGS_POINTER = "/data/attributes/settings"


def merge_settings(stored: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """PATCH semantics one level down: a section given replaces the members it names (null removes a member),
    a section given as null is removed, and sections not given are kept."""
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in stored.items()}
    for section, value in changes.items():
        if value is None:
            merged.pop(section, None)
        elif isinstance(value, dict) and section not in PASS_THROUGH_SECTIONS:
            current = merged.get(section) if isinstance(merged.get(section), dict) else {}
            updated = {**current, **value}
            merged[section] = {k: v for k, v in updated.items() if v is not None}
        else:
            merged[section] = value
    return merged


def validate_settings(settings: Mapping[str, Any], pointer: str = SETTINGS_POINTER) -> dict[str, Any]:
    """The value rules the shapes cannot say (ranges, known destinations and priorities); returns the settings."""
    auto_close = settings.get(AUTO_CLOSE) or {}
    seconds = auto_close.get("max_inactive_time_in_secs")
    where = f"{pointer}/{AUTO_CLOSE}/max_inactive_time_in_secs"
    if seconds is not None and not MIN_INACTIVE_SECONDS <= seconds <= MAX_INACTIVE_SECONDS:
        raise InvalidInput(
            f"max_inactive_time_in_secs must be from {MIN_INACTIVE_SECONDS} to {MAX_INACTIVE_SECONDS}", where
        )
    if auto_close.get("enabled") and seconds is None:
        raise InvalidInput("auto-close needs max_inactive_time_in_secs when enabled", where)
    notification = settings.get(NOTIFICATION) or {}
    for i, destination in enumerate(notification.get("destinations") or []):
        if destination not in DESTINATIONS:
            known = ", ".join(f"{k} ({v})" for k, v in DESTINATIONS.items())
            raise InvalidInput(
                f"unknown notification destination {destination}: must be one of {known}",
                f"{pointer}/{NOTIFICATION}/destinations/{i}",
            )
    severity = (settings.get(INTEGRATION_INCIDENT) or {}).get("severity_config") or {}
    for severity_name, priority in (severity.get("priority_mapping") or {}).items():
        if priority not in PRIORITIES:
            raise InvalidInput(
                f"priority {priority!r} is not a case priority: must be one of {', '.join(PRIORITIES)}",
                f"{pointer}/{INTEGRATION_INCIDENT}/severity_config/priority_mapping/{severity_name}",
            )
    return dict(settings)


def unavailable_notices(settings: Mapping[str, Any]) -> list[str]:
    """What the settings ask for that casem cannot do (said in the API's answer, never silently ignored)."""
    return [text for section, text in UNAVAILABLE_SECTIONS.items() if (settings.get(section) or {}).get("enabled")]


# -- auto-close ----------------------------------------------------------------------------------------------


def auto_close_after(settings: Mapping[str, Any]) -> int | None:
    """Seconds of inactivity after which the project's open cases are closed, or None when auto-close is off."""
    section = settings.get(AUTO_CLOSE) or {}
    if not section.get("enabled"):
        return None
    seconds = section.get("max_inactive_time_in_secs")
    return int(seconds) if isinstance(seconds, int) and seconds >= MIN_INACTIVE_SECONDS else None


def describe_duration(seconds: int) -> str:
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


# -- auto-transition -----------------------------------------------------------------------------------------


def auto_transition_on_self_assign(settings: Mapping[str, Any]) -> bool:
    return bool((settings.get(AUTO_TRANSITION) or {}).get("auto_transition_assigned_cases_on_self_assigned"))


# -- notifications -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotificationSettings:
    enabled: bool
    destinations: tuple[int, ...]
    flags: frozenset[str]

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> NotificationSettings:
        section = settings.get(NOTIFICATION) or {}
        return cls(
            enabled=bool(section.get("enabled")),
            destinations=tuple(d for d in section.get("destinations") or () if d in DESTINATIONS),
            flags=frozenset(f for f in NOTIFY_FLAGS if section.get(f)),
        )


MENTION = re.compile(r"(?<![\w.+-])@([A-Za-z0-9._%+-]+(?:@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)?)")


def mentions(text: str) -> set[str]:
    """The handles a comment mentions (`@ana`, `@ana@acme.example`), lower-cased."""
    return {m.group(1).rstrip(".").lower() for m in MENTION.finditer(text or "")}


@dataclass(frozen=True)
class Audience:
    """Who the notification settings tell about one case event: user ids, and which flag decided it."""

    user_ids: frozenset[str]
    reason: str


def settings_audience(
    settings: NotificationSettings,
    event_type: str,
    data: Mapping[str, Any],
    *,
    assignee_id: str | None,
    watcher_ids: Iterable[str],
    actor_id: str | None,
    mentioned_ids: Iterable[str] = (),
) -> list[Audience]:
    """The people the project's notification settings tell about an event (never its actor)."""
    if not settings.enabled or not settings.destinations or event_type not in NOTIFYING_EVENTS:
        return []
    changes = data.get("changes") or {}
    people = {*watcher_ids, *([assignee_id] if assignee_id else [])}
    audiences: list[Audience] = []

    def tell(flag: str, who: Iterable[str]) -> None:
        if flag in settings.flags:
            ids = frozenset(u for u in who if u and u != actor_id)
            if ids:
                audiences.append(Audience(ids, flag))

    if event_type == "case.assigned":
        tell("notify_on_case_assignment", people)
    elif event_type == "case.unassigned":
        previous = (changes.get("assignee_id") or {}).get("old")
        tell("notify_on_case_unassignment", {*people, *([previous] if previous else [])})
    elif event_type == "case.status_changed":
        if (changes.get("status") or {}).get("new") == "CLOSED":
            tell("notify_on_case_closed", people)
        tell("notify_on_case_status_change", people)
    elif event_type == "case.priority_changed":
        tell("notify_on_case_priority_change", people)
    elif event_type == "case.comment_added":
        tell("notify_on_case_comment_mention", mentioned_ids)
        tell("notify_on_case_comment", people)
    # One message per person and event: the first reason that names them wins.
    seen: set[str] = set()
    unique: list[Audience] = []
    for audience in audiences:
        fresh = audience.user_ids - seen
        if fresh:
            unique.append(Audience(frozenset(fresh), audience.reason))
            seen |= fresh
    return unique
