"""On-call: escalation policies, team routing rules, notification channels and rules, and pages (pure rules).

People and teams are referred to by their ids (they live in the case-management tenant); schedules are in
casem/domain/oncall_schedules.py. A page is a case of the on-call tenant: its `Page` record carries what paging
needs (target, policy, acknowledgement), and its events land on that case's timeline.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from casem.domain.errors import InvalidInput
from casem.domain.events import DomainEvent, EventRecorder, utcnow
from casem.domain.notifications import CaseView, query_matches
from casem.domain.oncall_schedules import (
    POSITIONS,
    Restriction,
    local_wall,
    parse_restrictions,
    week_position,
    zone,
)
from casem.domain.search_query import QuerySyntaxError, parse_query

NAME_MAX = 255
MAX_STEPS = 10
MAX_TARGETS = 50
MAX_RETRIES = 10
ESCALATE_AFTER_MIN, ESCALATE_AFTER_MAX = 60, 36_000
DEFAULT_ESCALATE_AFTER = 1_800
MAX_RULES = 50
MAX_DELAY_MINUTES = 24 * 60
TITLE_MAX = 255
DESCRIPTION_MAX = 30_000
MAX_TAGS = 50
TAG_MAX = 200

DEFAULT, ROUND_ROBIN = "default", "round-robin"
USERS, SCHEDULES, TEAMS = "users", "schedules", "teams"
HIGH, LOW, DYNAMIC = "high", "low", "dynamic"
URGENCY_CATEGORY = {HIGH: "high_urgency", LOW: "low_urgency"}
EMAIL, PHONE, PUSH = "email", "phone", "push"
SMS, VOICE = "sms", "voice"
TRIGGERED, ACKNOWLEDGED, RESOLVED = "triggered", "acknowledged", "resolved"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


def _enum(value: Any, allowed: Sequence[str], pointer: str) -> str:
    if value not in allowed:
        raise InvalidInput(f"invalid value {value!r}: must be one of {', '.join(allowed)}", pointer)
    return str(value)


def _name(value: Any, pointer: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("name must be a non-empty string", pointer)
    if len(value) > NAME_MAX:
        raise InvalidInput(f"name is {len(value)} characters long; the limit is {NAME_MAX}", pointer)
    return value


def _int(value: Any, lo: int, hi: int, pointer: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidInput(f"must be a whole number from {lo} to {hi}", pointer)
    return value


def _unknown(raw: Mapping[str, Any], known: set[str], pointer: str) -> None:
    extra = sorted(set(raw) - known)
    if extra:
        raise InvalidInput(f"{pointer}/{extra[0]} is not a known field", f"{pointer}/{extra[0]}")


def new_id() -> str:
    return str(uuid.uuid4())


# -- escalation policies ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepTarget:
    """A user, a team (its members) or a schedule (who is on call at its `position`: current, previous, next)."""

    type: str
    id: str
    position: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {"type": self.type, "id": self.id, "position": self.position}


@dataclass(frozen=True)
class EscalationStep:
    id: str
    escalate_after_seconds: int
    assignment: str
    targets: tuple[StepTarget, ...]

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "escalate_after_seconds": self.escalate_after_seconds,
            "assignment": self.assignment,
            "targets": [t.to_record() for t in self.targets],
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> EscalationStep:
        return cls(
            id=record["id"],
            escalate_after_seconds=record["escalate_after_seconds"],
            assignment=record["assignment"],
            targets=tuple(StepTarget(t["type"], t["id"], t.get("position")) for t in record["targets"]),
        )


def parse_target(raw: Any, pointer: str) -> StepTarget:
    if not isinstance(raw, dict):
        raise InvalidInput("a target is an object with id and type", pointer)
    _unknown(raw, {"id", "type", "config"}, pointer)
    kind = _enum(raw.get("type"), (USERS, SCHEDULES, TEAMS), f"{pointer}/type")
    ident = raw.get("id")
    if not isinstance(ident, str) or not ident:
        raise InvalidInput("id is required", f"{pointer}/id")
    position = None
    config = raw.get("config")
    if config is not None:
        if kind != SCHEDULES:
            raise InvalidInput("config applies to schedule targets only", f"{pointer}/config")
        schedule = config.get("schedule") if isinstance(config, dict) else None
        if not isinstance(schedule, dict):
            raise InvalidInput('config is {"schedule": {"position": ...}}', f"{pointer}/config")
        position = _enum(schedule.get("position"), POSITIONS, f"{pointer}/config/schedule/position")
    return StepTarget(kind, ident.lower(), position)  # a schedule without a position: whoever is on call now


def parse_steps(
    raw: Any, previous: Sequence[EscalationStep] = (), pointer: str = "/data/attributes/steps"
) -> list[EscalationStep]:
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("steps must list at least one step", pointer)
    if len(raw) > MAX_STEPS:
        raise InvalidInput(f"a policy has at most {MAX_STEPS} steps", pointer)
    stored = {s.id for s in previous}
    steps = []
    for i, item in enumerate(raw):
        where = f"{pointer}/{i}"
        if not isinstance(item, dict):
            raise InvalidInput("a step is an object", where)
        _unknown(item, {"id", "assignment", "escalate_after_seconds", "targets"}, where)
        ident = item.get("id")
        if ident is not None and ident not in stored:
            raise InvalidInput(f"step {ident!r} is not a step of this policy", f"{where}/id")
        after = item.get("escalate_after_seconds")
        after = DEFAULT_ESCALATE_AFTER if after is None else after
        targets_raw = item.get("targets")
        if not isinstance(targets_raw, list) or not targets_raw:
            raise InvalidInput("targets must list at least one target", f"{where}/targets")
        if len(targets_raw) > MAX_TARGETS:
            raise InvalidInput(f"a step has at most {MAX_TARGETS} targets", f"{where}/targets")
        steps.append(
            EscalationStep(
                id=ident or new_id(),
                escalate_after_seconds=_int(
                    after, ESCALATE_AFTER_MIN, ESCALATE_AFTER_MAX, f"{where}/escalate_after_seconds"
                ),
                assignment=_enum(item.get("assignment") or DEFAULT, (DEFAULT, ROUND_ROBIN), f"{where}/assignment"),
                targets=tuple(parse_target(t, f"{where}/targets/{j}") for j, t in enumerate(targets_raw)),
            )
        )
    return steps


@dataclass(eq=False)
class EscalationPolicy(EventRecorder):
    id: str
    org_id: str
    name: str
    steps: list[EscalationStep]
    retries: int = 0
    resolve_page_on_policy_end: bool = False
    team_ids: list[str] = field(default_factory=list)
    created_by_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None

    def _event(self, kind: str, actor_id: str | None, data: dict[str, Any] | None = None) -> None:
        self.record(
            DomainEvent(
                type=f"escalation_policy.{kind}",
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.id,
                subject_type="escalation_policy",
                data={"name": self.name, **(data or {})},
            )
        )

    def _summary(self) -> dict[str, Any]:
        return {
            "retries": self.retries,
            "resolve_page_on_policy_end": self.resolve_page_on_policy_end,
            "steps": [s.to_record() for s in self.steps],
            "team_ids": list(self.team_ids),
        }

    @classmethod
    def create(cls, *, actor_id: str | None, **fields: Any) -> EscalationPolicy:
        policy = cls(created_by_id=actor_id, **fields)
        policy._event("created", actor_id, policy._summary())
        return policy

    def replace(self, actor_id: str | None, **fields: Any) -> None:
        for name, value in fields.items():
            setattr(self, name, value)
        self.modified_at = utcnow()
        self._event("updated", actor_id, self._summary())

    def record_deleted(self, actor_id: str | None) -> None:
        self._event("deleted", actor_id)


def parse_policy_attributes(attrs: Mapping[str, Any], previous: Sequence[EscalationStep] = ()) -> dict[str, Any]:
    base = "/data/attributes"
    retries = attrs.get("retries")
    resolve = attrs.get("resolve_page_on_policy_end")
    if resolve is not None and not isinstance(resolve, bool):
        raise InvalidInput("resolve_page_on_policy_end must be true or false", f"{base}/resolve_page_on_policy_end")
    return {
        "name": _name(attrs.get("name"), f"{base}/name"),
        "retries": 0 if retries is None else _int(retries, 0, MAX_RETRIES, f"{base}/retries"),
        "resolve_page_on_policy_end": bool(resolve),
        "steps": parse_steps(attrs.get("steps"), previous),
    }


# -- routing rules ---------------------------------------------------------------------------------------------

ACTION_FIELDS: dict[str, set[str]] = {
    "send_slack_message": {"channel", "workspace"},
    "send_teams_message": {"channel", "team", "tenant"},
    "workflow": {"handle"},
    "escalation_policy": {"policy_id"},
    "reroute_to_team": {"destination_team_id"},
}
ACTION_OPTIONAL: dict[str, set[str]] = {"escalation_policy": {"ack_timeout_minutes", "support_hours", "urgency"}}


@dataclass(frozen=True)
class TimeRestrictions:
    time_zone: str
    restrictions: tuple[Restriction, ...]

    def covers(self, instant: datetime) -> bool:
        if not self.restrictions:
            return True
        position = week_position(local_wall(instant, ZoneInfo(self.time_zone)))
        return any(r.covers(position) for r in self.restrictions)

    def to_json(self) -> dict[str, Any]:
        return {"time_zone": self.time_zone, "restrictions": [r.to_json() for r in self.restrictions]}


def parse_time_restrictions(raw: Any, pointer: str) -> TimeRestrictions | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidInput("time_restriction is an object with time_zone and restrictions", pointer)
    _unknown(raw, {"time_zone", "restrictions"}, pointer)
    name = raw.get("time_zone") or "UTC"  # an empty zone reads the restrictions in UTC
    zone(name, f"{pointer}/time_zone")
    return TimeRestrictions(name, parse_restrictions(raw.get("restrictions") or [], f"{pointer}/restrictions"))


@dataclass(frozen=True)
class RoutingRule:
    id: str
    query: str
    urgency: str | None
    policy_id: str | None
    actions: tuple[dict[str, Any], ...] = ()
    time_restriction: TimeRestrictions | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "query": self.query,
            "urgency": self.urgency,
            "policy_id": self.policy_id,
            "actions": list(self.actions),
            "time_restriction": self.time_restriction.to_json() if self.time_restriction else None,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RoutingRule:
        restriction = record.get("time_restriction")
        return cls(
            id=record["id"],
            query=record["query"],
            urgency=record.get("urgency"),
            policy_id=record.get("policy_id"),
            actions=tuple(record.get("actions") or ()),
            time_restriction=parse_time_restrictions(restriction, "") if restriction else None,
        )

    def applies(self, page: CaseView, instant: datetime) -> bool:
        if self.time_restriction is not None and not self.time_restriction.covers(instant):
            return False
        return query_matches(self.query, page)

    @property
    def policy_ids(self) -> list[str]:
        found = [self.policy_id] if self.policy_id else []
        found += [a["policy_id"] for a in self.actions if a.get("type") == "escalation_policy"]
        return list(dict.fromkeys(found))


def parse_action(raw: Any, pointer: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidInput("an action is an object with a type", pointer)
    kind = _enum(raw.get("type"), tuple(ACTION_FIELDS), f"{pointer}/type")
    _unknown(raw, {"type", *ACTION_FIELDS[kind], *ACTION_OPTIONAL.get(kind, set())}, pointer)
    action: dict[str, Any] = {"type": kind}
    for name in sorted(ACTION_FIELDS[kind]):
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{name} is required", f"{pointer}/{name}")
        action[name] = value
    if kind == "escalation_policy":
        if raw.get("ack_timeout_minutes") is not None:
            action["ack_timeout_minutes"] = _int(raw["ack_timeout_minutes"], 1, 1440, f"{pointer}/ack_timeout_minutes")
        if raw.get("urgency") is not None:
            action["urgency"] = _enum(raw["urgency"], (HIGH, LOW, DYNAMIC), f"{pointer}/urgency")
        if raw.get("support_hours") is not None:
            hours = parse_time_restrictions(raw["support_hours"], f"{pointer}/support_hours")
            assert hours is not None
            action["support_hours"] = hours.to_json()
    return action


def parse_routing_rules(raw: Any, pointer: str = "/data/attributes/rules") -> list[RoutingRule]:
    if not isinstance(raw, list):
        raise InvalidInput("rules must be a list", pointer)
    if len(raw) > MAX_RULES:
        raise InvalidInput(f"a team has at most {MAX_RULES} routing rules", pointer)
    rules = []
    for i, item in enumerate(raw):
        where = f"{pointer}/{i}"
        if not isinstance(item, dict):
            raise InvalidInput("a rule is an object", where)
        _unknown(item, {"id", "actions", "policy_id", "query", "time_restriction", "urgency"}, where)
        query = item.get("query") or ""
        if not isinstance(query, str):
            raise InvalidInput("query must be a string", f"{where}/query")
        try:
            parse_query(query)
        except QuerySyntaxError as exc:
            raise InvalidInput(f"query: {exc}", f"{where}/query") from None
        urgency = item.get("urgency")
        actions_raw = item.get("actions") or []
        if not isinstance(actions_raw, list):
            raise InvalidInput("actions must be a list", f"{where}/actions")
        policy_id = item.get("policy_id") or None
        if policy_id is not None and not isinstance(policy_id, str):
            raise InvalidInput("policy_id must be a string", f"{where}/policy_id")
        rules.append(
            RoutingRule(
                id=item.get("id") or new_id(),
                query=query,
                urgency=_enum(urgency, (HIGH, LOW, DYNAMIC), f"{where}/urgency") if urgency is not None else None,
                policy_id=policy_id.lower() if policy_id else None,
                actions=tuple(parse_action(a, f"{where}/actions/{j}") for j, a in enumerate(actions_raw)),
                time_restriction=parse_time_restrictions(item.get("time_restriction"), f"{where}/time_restriction"),
            )
        )
    return rules


@dataclass(eq=False)
class TeamRouting(EventRecorder):
    org_id: str
    team_id: str
    rules: list[RoutingRule] = field(default_factory=list)
    modified_by_id: str | None = None
    modified_at: datetime | None = None

    def set_rules(self, rules: list[RoutingRule], actor_id: str | None) -> None:
        self.rules = rules
        self.modified_by_id = actor_id
        self.modified_at = utcnow()
        self.record(
            DomainEvent(
                type="routing_rules.set",
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.team_id,
                subject_type="team_routing_rules",
                data={"team_id": self.team_id, "rules": [r.to_record() for r in rules]},
            )
        )

    def route(self, page: CaseView, instant: datetime) -> RoutingRule | None:
        """The first rule (in order) whose time restriction and query match the page."""
        return next((rule for rule in self.rules if rule.applies(page, instant)), None)


# -- notification channels and rules ---------------------------------------------------------------------------

# Country calling codes casem names a region for (the rest report "ZZ", unknown region).
CALLING_CODES = {
    "1": "US", "7": "RU", "20": "EG", "27": "ZA", "31": "NL", "32": "BE", "33": "FR", "34": "ES", "36": "HU",
    "39": "IT", "41": "CH", "43": "AT", "44": "GB", "45": "DK", "46": "SE", "47": "NO", "48": "PL", "49": "DE",
    "52": "MX", "55": "BR", "61": "AU", "64": "NZ", "65": "SG", "81": "JP", "82": "KR", "86": "CN", "91": "IN",
    "351": "PT", "353": "IE", "358": "FI", "420": "CZ", "972": "IL",
}  # fmt: skip


def phone_region(number: str) -> str:
    digits = number[1:]
    for length in (3, 2, 1):
        region = CALLING_CODES.get(digits[:length])
        if region:
            return region
    return "ZZ"


def parse_channel_config(raw: Any, pointer: str = "/data/attributes/config") -> tuple[str, dict[str, Any]]:
    """(kind, config) of a new channel: email {address, formats}, phone {number} (E.164), or casem's push webhook
    {application_name, device_name, url} (the signing secret is made by the application layer)."""
    if not isinstance(raw, dict):
        raise InvalidInput("config is required: an email, phone or push channel", pointer)
    kind = _enum(raw.get("type"), (EMAIL, PHONE, PUSH), f"{pointer}/type")
    if kind == EMAIL:
        _unknown(raw, {"type", "address", "formats"}, pointer)
        address = raw.get("address")
        if not isinstance(address, str) or not EMAIL_RE.match(address) or len(address) > 255:
            raise InvalidInput(f"{address!r} is not an email address", f"{pointer}/address")
        formats = raw.get("formats") or ["html"]
        if not isinstance(formats, list) or not formats:
            raise InvalidInput("formats lists html and/or text", f"{pointer}/formats")
        formats = [_enum(f, ("html", "text"), f"{pointer}/formats/{i}") for i, f in enumerate(formats)]
        return kind, {"address": address.lower(), "formats": list(dict.fromkeys(formats))}
    if kind == PHONE:
        _unknown(raw, {"type", "number"}, pointer)
        number = raw.get("number")
        compact = re.sub(r"[\s().-]", "", number) if isinstance(number, str) else None
        if not compact or not E164.match(compact):
            raise InvalidInput(
                f"{number!r} is not a phone number in E.164 form such as +14155550100", f"{pointer}/number"
            )
        return kind, {"number": compact, "region": phone_region(compact)}
    _unknown(raw, {"type", "application_name", "device_name", "url"}, pointer)
    config = {}
    for name in ("application_name", "device_name", "url"):
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > 2048:
            raise InvalidInput(f"{name} is required", f"{pointer}/{name}")
        config[name] = value
    return kind, config


@dataclass(eq=False)
class NotificationChannel(EventRecorder):
    id: str
    org_id: str
    user_id: str
    kind: str
    config: dict[str, Any]
    secret: str | None = None  # push: the sealed signing secret
    active: bool = True
    created_at: datetime = field(default_factory=utcnow)

    def _event(self, kind: str, actor_id: str | None) -> None:
        self.record(
            DomainEvent(
                type=f"notification_channel.{kind}",
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.id,
                subject_type="notification_channel",
                data={"user_id": self.user_id, "kind": self.kind},
            )
        )

    @classmethod
    def create(cls, *, actor_id: str | None, **fields: Any) -> NotificationChannel:
        channel = cls(**fields)
        channel._event("created", actor_id)
        return channel

    def record_deleted(self, actor_id: str | None) -> None:
        self._event("deleted", actor_id)


@dataclass(eq=False)
class OnCallNotificationRule(EventRecorder):
    id: str
    org_id: str
    user_id: str
    channel_id: str
    category: str
    method: str | None
    delay_minutes: int
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime | None = None

    def _event(self, kind: str, actor_id: str | None) -> None:
        self.record(
            DomainEvent(
                type=f"notification_rule.{kind}",
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.id,
                subject_type="oncall_notification_rule",
                data={
                    "user_id": self.user_id,
                    "channel_id": self.channel_id,
                    "category": self.category,
                    "method": self.method,
                    "delay_minutes": self.delay_minutes,
                },
            )
        )

    @classmethod
    def create(cls, *, actor_id: str | None, **fields: Any) -> OnCallNotificationRule:
        rule = cls(**fields)
        rule._event("created", actor_id)
        return rule

    def change(self, actor_id: str | None, **fields: Any) -> None:
        for name, value in fields.items():
            setattr(self, name, value)
        self.modified_at = utcnow()
        self._event("updated", actor_id)

    def record_deleted(self, actor_id: str | None) -> None:
        self._event("deleted", actor_id)


def parse_rule_attributes(
    attrs: Mapping[str, Any], channel_kind: str, current: OnCallNotificationRule | None = None
) -> dict[str, Any]:
    """category, method (phone channels: sms or voice) and delay_minutes of a notification rule."""
    base = "/data/attributes"
    _unknown(attrs, {"category", "channel_settings", "delay_minutes"}, base)
    category = attrs.get("category", current.category if current else None)
    if category is None:
        raise InvalidInput("category is required: high_urgency or low_urgency", f"{base}/category")
    delay = attrs.get("delay_minutes", current.delay_minutes if current else 0)
    settings = attrs.get("channel_settings")
    method = current.method if current and channel_kind == PHONE else None
    if settings is not None:
        if channel_kind != PHONE:
            raise InvalidInput("channel_settings apply to phone channels only", f"{base}/channel_settings")
        if not isinstance(settings, dict):
            raise InvalidInput('channel_settings is {"type": "phone", "method": ...}', f"{base}/channel_settings")
        _enum(settings.get("type"), (PHONE,), f"{base}/channel_settings/type")
        method = _enum(settings.get("method"), (SMS, VOICE), f"{base}/channel_settings/method")
    if channel_kind == PHONE and method is None:
        method = SMS
    return {
        "category": _enum(category, tuple(URGENCY_CATEGORY.values()), f"{base}/category"),
        "method": method,
        "delay_minutes": _int(0 if delay is None else delay, 0, MAX_DELAY_MINUTES, f"{base}/delay_minutes"),
    }


@dataclass(frozen=True)
class PlannedNotification:
    """One notification of a responder: through `channel` (None: the account's email address) after `delay`."""

    user_id: str
    rule_id: str | None
    channel_id: str | None
    medium: str  # email, sms, voice or push
    delay_minutes: int


def plan_notifications(
    user_id: str,
    urgency: str,
    rules: Sequence[OnCallNotificationRule],
    channels: Mapping[str, NotificationChannel],
) -> list[PlannedNotification]:
    """How a responder is notified of a page of `urgency`: each of their rules of that category on an active
    channel, by delay; with none, an email to their account address at once (nobody paged goes unnotified)."""
    category = URGENCY_CATEGORY.get(urgency, URGENCY_CATEGORY[HIGH])
    planned = []
    for rule in rules:
        channel = channels.get(rule.channel_id)
        if rule.category != category or channel is None or not channel.active:
            continue
        medium = (rule.method or SMS) if channel.kind == PHONE else channel.kind
        planned.append(PlannedNotification(user_id, rule.id, channel.id, medium, rule.delay_minutes))
    if not planned:
        planned.append(PlannedNotification(user_id, None, None, EMAIL, 0))
    return sorted(planned, key=lambda p: (p.delay_minutes, p.medium, p.rule_id or ""))


def notification_key(page_id: str, round_: int, step_index: int, planned: PlannedNotification) -> str:
    """The idempotency key of one notification: the same page, round, step, person and rule are one send."""
    return f"{page_id}/{round_}/{step_index}/{planned.user_id}/{planned.rule_id or 'account-email'}"


# -- pages -----------------------------------------------------------------------------------------------------


def parse_tags(raw: Any, pointer: str = "/data/attributes/tags") -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(t, str) and t.strip() for t in raw):
        raise InvalidInput("tags must be a list of non-empty strings", pointer)
    if len(raw) > MAX_TAGS or any(len(t) > TAG_MAX for t in raw):
        raise InvalidInput(f"at most {MAX_TAGS} tags of at most {TAG_MAX} characters", pointer)
    return list(dict.fromkeys(raw))


def tag_attributes(tags: Sequence[str]) -> dict[str, list[str]]:
    """`service:web` tags as attributes: {"service": ["web"], "tags.service": ["web"]}; a bare tag is {"tags": [t]}.

    Routing rule queries name tags either way (`service:web` or Datadog's `tags.service:web`)."""
    attributes: dict[str, list[str]] = {}
    for tag in tags:
        key, sep, value = tag.partition(":")
        pairs = [(key, value), (f"tags.{key}", value)] if sep else [("tags", tag)]
        for name, val in pairs:
            attributes.setdefault(name, [])
            if val not in attributes[name]:
                attributes[name].append(val)
    return attributes


@dataclass(eq=False)
class Page(EventRecorder):
    id: str
    org_id: str
    key: str
    title: str
    urgency: str
    target_type: str
    target_id: str
    description: str = ""
    tags: list[str] = field(default_factory=list)
    team_id: str | None = None
    policy_id: str | None = None
    routing_rule_id: str | None = None
    status: str = TRIGGERED
    created_by_id: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    acknowledged_at: datetime | None = None
    acknowledged_by_id: str | None = None
    resolved_at: datetime | None = None
    resolved_by_id: str | None = None
    escalations: int = 0
    source_tenant: str | None = None
    source_case_id: str | None = None
    source_case_key: str | None = None

    def _event(self, kind: str, actor_id: str | None, data: dict[str, Any], **extra: Any) -> DomainEvent:
        event = DomainEvent(
            type=f"page.{kind}",
            org_id=self.org_id,
            actor_id=actor_id,
            subject_id=self.id,
            subject_type="page",
            case_id=self.id,  # a page is a case of the on-call tenant: its events are that case's timeline
            data={
                "page_id": self.id,
                "key": self.key,
                "team_id": self.team_id,
                "source_case_id": self.source_case_id,
                "source_tenant": self.source_tenant,
                **data,
            },
            **extra,
        )
        self.record(event)
        return event

    @classmethod
    def trigger(cls, *, actor_id: str | None, **fields: Any) -> Page:
        page = cls(created_by_id=actor_id, **fields)
        page._event(
            "triggered",
            actor_id,
            {
                "title": page.title,
                "urgency": page.urgency,
                "tags": page.tags,
                "target": {"type": page.target_type, "id": page.target_id},
                "policy_id": page.policy_id,
                "routing_rule_id": page.routing_rule_id,
                "source_case_key": page.source_case_key,
            },
            time=page.created_at,
        )
        return page

    @property
    def open(self) -> bool:
        return self.status == TRIGGERED

    def acknowledge(self, actor_id: str | None) -> bool:
        """Stops the escalation; False when already acknowledged or resolved (nothing recorded)."""
        if self.status != TRIGGERED:
            return False
        self.status = ACKNOWLEDGED
        self.acknowledged_at, self.acknowledged_by_id = utcnow(), actor_id
        self._event("acknowledged", actor_id, {"acknowledged_by_id": actor_id})
        return True

    def escalate(self, actor_id: str | None, *, to_step: int | None = None, reason: str = "requested") -> bool:
        """Moves on to the next step now; False when the page is no longer open."""
        if self.status != TRIGGERED:
            return False
        self.escalations += 1
        self._event("escalated", actor_id, {"reason": reason, "step": to_step, "escalations": self.escalations})
        return True

    def resolve(self, actor_id: str | None, *, reason: str = "resolved") -> bool:
        if self.status == RESOLVED:
            return False
        self.status = RESOLVED
        self.resolved_at, self.resolved_by_id = utcnow(), actor_id
        self._event("resolved", actor_id, {"resolved_by_id": actor_id, "reason": reason})
        return True

    def record_step(self, round_: int, step_index: int, step_id: str | None, user_ids: Sequence[str]) -> None:
        """The escalation reached a step: who it targets now."""
        self._event(
            "step_reached", None, {"round": round_, "step": step_index, "step_id": step_id, "user_ids": list(user_ids)}
        )

    def record_notified(self, *, user_id: str, medium: str, outcome: str, key: str, detail: str | None = None) -> None:
        """One notification went out (or could not): who, through what, with what outcome."""
        self._event(
            "notified", None, {"user_id": user_id, "medium": medium, "outcome": outcome, "key": key, "detail": detail}
        )


def page_view(page: Page, team_handle: str | None = None) -> CaseView:
    """What a routing rule query sees of a page: title, description, urgency and its tags as attributes."""
    attributes = tag_attributes(page.tags)
    attributes["urgency"] = [page.urgency]
    if team_handle:
        attributes["team"] = [team_handle]
    return CaseView(
        id=page.id,
        key=page.key,
        title=page.title,
        description=page.description,
        status="OPEN",
        priority=URGENCY_PRIORITY.get(page.urgency, "NOT_DEFINED"),
        project_id="",
        project_key=page.key.split("-")[0],
        type_id="",
        type_name=None,
        assignee_id=None,
        assignee_email=None,
        attributes=attributes,
        archived=False,
    )


# A page's case gets a priority from its urgency, so case queries (priority:P1) find urgent pages.
URGENCY_PRIORITY = {HIGH: "P1", LOW: "P3"}
PAGE_STATUS_CASE_STATUS = {TRIGGERED: "OPEN", ACKNOWLEDGED: "IN_PROGRESS", RESOLVED: "CLOSED"}


def validate_page_text(title: Any, description: Any) -> tuple[str, str]:
    base = "/data/attributes"
    if not isinstance(title, str) or not title.strip():
        raise InvalidInput("title must be a non-empty string", f"{base}/title")
    if len(title) > TITLE_MAX:
        raise InvalidInput(f"title is {len(title)} characters long; the limit is {TITLE_MAX}", f"{base}/title")
    description = description or ""
    if not isinstance(description, str) or len(description) > DESCRIPTION_MAX:
        raise InvalidInput(
            f"description must be a string of at most {DESCRIPTION_MAX} characters", f"{base}/description"
        )
    return title, description


# -- the source case (case-management) and its page ---------------------------------------------------------------


def record_page_opened(case: Any, page: Page, *, event_id: str) -> None:
    """The paging flavor paged for this case: its timeline shows the page (`event_id`: made from the cause, so a
    redelivered cause records nothing twice)."""
    case.record_fact(
        "case.page_triggered",
        None,
        {"message": f"paged the on-call team ({page.key})", "page_id": page.id, "page_key": page.key,
         "team_id": page.team_id, "urgency": page.urgency},
        id=event_id,
    )  # fmt: skip


def record_page_progress(
    case: Any, *, kind: str, page_id: str, page_key: str, actor_id: str | None, event_id: str
) -> None:
    """The case's page was acknowledged or resolved (`kind`), by `actor_id`."""
    case.record_fact(
        f"case.page_{kind}",
        actor_id,
        {"message": f"page {page_key} {kind}", "page_id": page_id, "page_key": page_key, "by": actor_id},
        id=event_id,
    )


# -- analytics -------------------------------------------------------------------------------------------------


def out_of_hours(instant: datetime, tz: ZoneInfo, opens: int = 9, closes: int = 18) -> bool:
    """Outside Monday to Friday, `opens`:00 to `closes`:00, on the wall clock of `tz`."""
    wall = local_wall(instant, tz)
    return wall.weekday() >= 5 or not opens <= wall.hour < closes


# -- paging for cases: a project's paging rule --------------------------------------------------------------------

PAGING_TRIGGERS = frozenset(
    {
        "case.created",
        "case.priority_changed",
        "case.status_changed",
        "case.attributes_changed",
        "case.title_changed",
        "case.description_changed",
        "case.assigned",
        "case.unassigned",
        "case.unarchived",
    }
)
_VIEW_FIELDS = {"status", "priority", "title", "description", "attributes", "assignee_id"}


def view_before(after: CaseView, changes: Mapping[str, Any]) -> CaseView:
    """The case as it was before an event's changes ({field: {old, new}})."""
    old = {name: change.get("old") for name, change in changes.items() if name in _VIEW_FIELDS}
    if "archived_at" in changes:
        old["archived"] = changes["archived_at"].get("old") is not None
    if "attributes" in old and old["attributes"] is None:
        old["attributes"] = {}
    return replace(after, **old)


def should_page(query: str, event_type: str, after: CaseView, before: CaseView | None) -> bool:
    """A project's paging rule pages when a case comes to match its query: created matching, or changed (raised to
    P1, say) from not matching to matching. A case that already matched does not page again."""
    if event_type not in PAGING_TRIGGERS or after.archived or not query_matches(query, after):
        return False
    return before is None or not query_matches(query, before)


@dataclass(frozen=True)
class PagingRule:
    """Which of a project's cases page which on-call team, with what urgency."""

    project_id: str
    org_id: str
    team_id: str
    query: str
    urgency: str = HIGH
    enabled: bool = True


def parse_paging_rule(attrs: Mapping[str, Any], project_id: str, org_id: str) -> PagingRule:
    base = "/data/attributes"
    _unknown(attrs, {"team_id", "query", "urgency", "enabled"}, base)
    team_id = attrs.get("team_id")
    if not isinstance(team_id, str) or not team_id:
        raise InvalidInput("team_id names the on-call team to page", f"{base}/team_id")
    query = attrs.get("query")
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("query says which cases page (for example priority:P1)", f"{base}/query")
    try:
        parse_query(query)
    except QuerySyntaxError as exc:
        raise InvalidInput(f"query: {exc}", f"{base}/query") from None
    enabled = attrs.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidInput("enabled must be true or false", f"{base}/enabled")
    urgency = _enum(attrs.get("urgency") or HIGH, (HIGH, LOW), f"{base}/urgency")
    return PagingRule(project_id, org_id, team_id.lower(), query, urgency, enabled)
