"""Request documents of the notification-rule API (Datadog's CaseNotificationRule*) and casem's own
notification endpoints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from casem.services.case_api.schemas import Answer, Strict, ToOne


class TriggerData(Strict):
    change_type: str | None = None
    field: str | None = None
    from_status: str | None = None
    from_status_name: str | None = None
    to_status: str | None = None
    to_status_name: str | None = None


class Trigger(Strict):
    type: str
    data: TriggerData | None = None


class RecipientData(Strict):
    channel: str | None = None
    channel_id: str | None = None
    channel_name: str | None = None
    connector_name: str | None = None
    email: str | None = None
    name: str | None = None
    service_name: str | None = None
    team_id: str | None = None
    team_name: str | None = None
    tenant_id: str | None = None
    tenant_name: str | None = None
    workspace: str | None = None
    workspace_id: str | None = None


class Recipient(Strict):
    type: str
    data: RecipientData | None = None


class RuleCreateAttributes(Strict):
    is_enabled: bool | None = None
    query: str | None = None
    recipients: list[Recipient]
    triggers: list[Trigger]


class RuleCreate(Strict):
    type: Literal["notification_rule"]
    attributes: RuleCreateAttributes


class RuleCreateRequest(Strict):
    data: RuleCreate


class RuleUpdateAttributes(Strict):
    is_enabled: bool | None = None
    query: str | None = None
    recipients: list[Recipient] | None = None
    triggers: list[Trigger] | None = None


class RuleUpdate(Strict):
    type: Literal["notification_rule"]
    attributes: RuleUpdateAttributes | None = None


class RuleUpdateRequest(Strict):
    data: RuleUpdate


class EndpointAttributes(Strict):
    kind: Literal["HTTP", "MS_TEAMS_CHANNEL"]
    name: str
    url: str
    secret: str | None = None


class EndpointCreate(Strict):
    type: Literal["notification_endpoint"]
    attributes: EndpointAttributes


class EndpointCreateRequest(Strict):
    data: EndpointCreate


# -- answers (serialize_rule in views.py) ----------------------------------------------------------------------


class NotificationRuleAnswerAttributes(Answer):
    is_enabled: bool
    query: str | None
    recipients: list[Any]
    triggers: list[Any]


class NotificationRuleResource(Answer):
    id: str
    type: Literal["notification_rule"]
    attributes: NotificationRuleAnswerAttributes


class NotificationRuleResponse(Answer):
    data: NotificationRuleResource


class NotificationRulesResponse(Answer):
    data: list[NotificationRuleResource]


# -- answers of casem's own notification routes (the inbox, endpoints, deliveries in views.py) ------------------


class InboxAttributes(Answer):
    summary: str | None
    event_type: str
    case_key: str | None
    created_at: str
    read_at: str | None


class InboxRelationships(Answer):
    case: ToOne
    actor: ToOne


class InboxNotification(Answer):
    id: str
    type: Literal["notification"]
    attributes: InboxAttributes
    relationships: InboxRelationships


class InboxPage(Answer):
    size: int
    number: int


class InboxMeta(Answer):
    unread_count: int
    page: InboxPage


class InboxResponse(Answer):
    data: list[InboxNotification]
    meta: InboxMeta


class EndpointAnswerAttributes(Answer):
    kind: str
    name: str
    url: str
    secret: str | None = Field(None, description="In the answer to a create only.")


class EndpointResource(Answer):
    id: str
    type: Literal["notification_endpoint"]
    attributes: EndpointAnswerAttributes


class EndpointResponse(Answer):
    data: EndpointResource


class EndpointsResponse(Answer):
    data: list[EndpointResource]


class DeliveryAttributes(Answer):
    channel: str
    target: Any
    status: str
    attempts: int
    last_error: str | None
    created_at: str
    sent_at: str | None


class DeliveryRelationships(Answer):
    case: ToOne
    rule: ToOne


class Delivery(Answer):
    id: str
    type: Literal["notification_delivery"]
    attributes: DeliveryAttributes
    relationships: DeliveryRelationships


class DeliveriesResponse(Answer):
    data: list[Delivery]
