"""Request documents of the notification-rule API (Datadog's CaseNotificationRule*) and casem's own
notification endpoints."""

from __future__ import annotations

from typing import Any, Literal

from casem.services.case_api.schemas import Answer, Strict


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
