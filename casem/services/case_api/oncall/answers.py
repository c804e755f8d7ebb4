"""Answer documents of the on-call routes, for the OpenAPI document (`@contract(returns=...)`).

Each model follows the serializer beside its route (schedules.py, policies.py, pages.py); the schemathesis
suite checks real answers against them. Included resources are of several types, so they are typed loosely.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from casem.services.case_api.schemas import Answer, ResourceIdentifier, ToMany, ToOne


class IncludedResource(Answer):
    id: str
    type: str
    attributes: dict[str, Any] | None = None
    relationships: dict[str, Any] | None = None


# -- schedules (schedules.py) ---------------------------------------------------------------------------------


class ScheduleAnswerAttributes(Answer):
    name: str
    time_zone: str
    tags: list[str]


class ScheduleAnswerRelationships(Answer):
    layers: ToMany | None = Field(None, description="On a single schedule; a listing names its teams only.")
    teams: ToMany


class ScheduleResource(Answer):
    id: str
    type: Literal["schedules"]
    attributes: ScheduleAnswerAttributes
    relationships: ScheduleAnswerRelationships


class ScheduleResponse(Answer):
    data: ScheduleResource
    included: list[IncludedResource]


class NumberSizePage(Answer):
    type: Literal["number_size"]
    number: int
    size: int
    total: int
    first_number: int
    last_number: int
    next_number: int | None
    prev_number: int | None


class SchedulesMeta(Answer):
    page: NumberSizePage


class SchedulesResponse(Answer):
    data: list[ScheduleResource]
    included: list[IncludedResource]
    meta: SchedulesMeta


class ShiftAttributes(Answer):
    start: str
    end: str


class ShiftRelationships(Answer):
    user: ToOne


class ShiftResource(Answer):
    id: str
    type: Literal["shifts"]
    attributes: ShiftAttributes
    relationships: ShiftRelationships


class ShiftResponse(Answer):
    data: ShiftResource | None = Field(None, description="Absent when nobody is on call at that time.")
    included: list[IncludedResource]


class RespondersAttributes(Answer):
    scheduled_at: str


class RespondersRelationships(Answer):
    responders: ToMany
    schedule: ToOne


class RespondersResource(Answer):
    id: str
    type: Literal["schedule_oncall_responders"]
    attributes: RespondersAttributes
    relationships: RespondersRelationships


class RespondersResponse(Answer):
    data: RespondersResource
    included: list[IncludedResource]


class OverrideAnswerAttributes(Answer):
    user_id: str
    start: str
    end: str
    created_at: str | None


class OverrideAnswerRelationships(Answer):
    schedule: ToOne


class OverrideResource(Answer):
    id: str
    type: Literal["overrides"]
    attributes: OverrideAnswerAttributes
    relationships: OverrideAnswerRelationships


class OverrideResponse(Answer):
    data: OverrideResource


class OverridesResponse(Answer):
    data: list[OverrideResource]


class TimelineRange(Answer):
    start: str
    end: str


class ScheduleTimelineResponse(Answer):
    data: list[ShiftResource]
    meta: TimelineRange


class CalendarFeedAttributes(Answer):
    url: str


class CalendarFeedResource(Answer):
    id: str
    type: Literal["calendar_feeds"]
    attributes: CalendarFeedAttributes


class CalendarFeedResponse(Answer):
    data: CalendarFeedResource


# -- escalation policies (policies.py) --------------------------------------------------------------------------


class PolicyAnswerAttributes(Answer):
    name: str
    resolve_page_on_policy_end: bool
    retries: int


class PolicyAnswerRelationships(Answer):
    steps: ToMany
    teams: ToMany


class PolicyResource(Answer):
    id: str
    type: Literal["policies"]
    attributes: PolicyAnswerAttributes
    relationships: PolicyAnswerRelationships


class PolicyResponse(Answer):
    data: PolicyResource
    included: list[IncludedResource]


# -- pages (pages.py) ---------------------------------------------------------------------------------------------


class PageCreatedResponse(Answer):
    data: ResourceIdentifier


class PageTargetAnswer(Answer):
    type: str
    identifier: str


class PageAnswerAttributes(Answer):
    key: str
    title: str
    description: str | None
    urgency: str
    tags: list[str]
    status: str
    target: PageTargetAnswer
    created_at: str
    acknowledged_at: str | None
    resolved_at: str | None
    escalations: int


class PageAnswerRelationships(Answer):
    team: ToOne
    policy: ToOne
    acknowledged_by: ToOne
    case: ToOne


class PageResource(Answer):
    id: str
    type: Literal["pages"]
    attributes: PageAnswerAttributes
    relationships: PageAnswerRelationships


class PageResponse(Answer):
    data: PageResource


class PagesPage(Answer):
    total: int
    size: int
    number: int


class PagesMeta(Answer):
    page: PagesPage


class PagesResponse(Answer):
    data: list[PageResource]
    meta: PagesMeta


class PageTimelineAttributes(Answer):
    cell_type: str
    content: Any
    created_at: str
    author_id: str | None


class PageTimelineCell(Answer):
    id: str
    type: Literal["timeline_cell"]
    attributes: PageTimelineAttributes


class PageTimelineResponse(Answer):
    data: list[PageTimelineCell]


class PageNotificationAttributes(Answer):
    idempotency_key: str
    user_id: str | None
    medium: str
    destination: str | None
    round: int
    step: int
    status: str
    attempts: int
    provider_ref: str | None
    detail: str | None
    created_at: str | None
    sent_at: str | None


class PageNotification(Answer):
    id: str
    type: Literal["page_notification"]
    attributes: PageNotificationAttributes


class PageNotificationsResponse(Answer):
    data: list[PageNotification]


# -- team routing rules and who a team pages (routing.py) --------------------------------------------------------


class RoutingRelationships(Answer):
    rules: ToMany


class RoutingResource(Answer):
    id: str = Field(description="The team's id.")
    type: Literal["team_routing_rules"]
    relationships: RoutingRelationships


class RoutingResponse(Answer):
    data: RoutingResource
    included: list[IncludedResource]


class TeamOnCallRelationships(Answer):
    responders: ToMany
    escalations: ToMany


class TeamOnCallResource(Answer):
    id: str
    type: Literal["team_oncall_responders"]
    relationships: TeamOnCallRelationships


class TeamOnCallResponse(Answer):
    data: TeamOnCallResource
    included: list[IncludedResource]


# -- a user's notification channels and rules (notifications.py) ------------------------------------------------


class ChannelAnswerAttributes(Answer):
    active: bool
    config: dict[str, Any] = Field(description="By its `type`: email, phone or push; a webhook URL is never shown.")


class ChannelResource(Answer):
    id: str
    type: Literal["notification_channels"]
    attributes: ChannelAnswerAttributes


class ChannelCreatedMeta(Answer):
    signing_secret: str
    created_at: str | None


class ChannelResponse(Answer):
    data: ChannelResource
    meta: ChannelCreatedMeta | None = Field(None, description="A push channel's signing secret, shown once.")


class ChannelsResponse(Answer):
    data: list[ChannelResource]


class ChannelSettings(Answer):
    type: str
    method: str


class NotificationRuleAnswerAttributes(Answer):
    category: str
    delay_minutes: int
    channel_settings: ChannelSettings | None = None


class NotificationRuleRelationships(Answer):
    channel: ToOne


class NotificationRuleResource(Answer):
    id: str
    type: Literal["notification_rules"]
    attributes: NotificationRuleAnswerAttributes
    relationships: NotificationRuleRelationships


class NotificationRuleResponse(Answer):
    data: NotificationRuleResource
    included: list[ChannelResource]


class NotificationRulesResponse(Answer):
    data: list[NotificationRuleResource]
    included: list[ChannelResource]
