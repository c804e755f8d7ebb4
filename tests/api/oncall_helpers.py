"""Builders for On-Call requests through the official client (datadog-api-client's OnCallApi and OnCallPagingApi)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from datadog_api_client.v2.api.on_call_api import OnCallApi
from datadog_api_client.v2.api.on_call_paging_api import OnCallPagingApi
from datadog_api_client.v2.model.create_page_request import CreatePageRequest
from datadog_api_client.v2.model.create_page_request_data import CreatePageRequestData
from datadog_api_client.v2.model.create_page_request_data_attributes import CreatePageRequestDataAttributes
from datadog_api_client.v2.model.create_page_request_data_attributes_target import (
    CreatePageRequestDataAttributesTarget,
)
from datadog_api_client.v2.model.create_page_request_data_type import CreatePageRequestDataType
from datadog_api_client.v2.model.data_relationships_teams import DataRelationshipsTeams
from datadog_api_client.v2.model.data_relationships_teams_data_items import DataRelationshipsTeamsDataItems
from datadog_api_client.v2.model.data_relationships_teams_data_items_type import DataRelationshipsTeamsDataItemsType
from datadog_api_client.v2.model.escalation_policy_create_request import EscalationPolicyCreateRequest
from datadog_api_client.v2.model.escalation_policy_create_request_data import EscalationPolicyCreateRequestData
from datadog_api_client.v2.model.escalation_policy_create_request_data_attributes import (
    EscalationPolicyCreateRequestDataAttributes,
)
from datadog_api_client.v2.model.escalation_policy_create_request_data_attributes_steps_items import (
    EscalationPolicyCreateRequestDataAttributesStepsItems,
)
from datadog_api_client.v2.model.escalation_policy_create_request_data_relationships import (
    EscalationPolicyCreateRequestDataRelationships,
)
from datadog_api_client.v2.model.escalation_policy_create_request_data_type import (
    EscalationPolicyCreateRequestDataType,
)
from datadog_api_client.v2.model.escalation_policy_step_attributes_assignment import (
    EscalationPolicyStepAttributesAssignment,
)
from datadog_api_client.v2.model.escalation_policy_step_target import EscalationPolicyStepTarget
from datadog_api_client.v2.model.escalation_policy_step_target_config import EscalationPolicyStepTargetConfig
from datadog_api_client.v2.model.escalation_policy_step_target_config_schedule import (
    EscalationPolicyStepTargetConfigSchedule,
)
from datadog_api_client.v2.model.escalation_policy_step_target_type import EscalationPolicyStepTargetType
from datadog_api_client.v2.model.layer_attributes_interval import LayerAttributesInterval
from datadog_api_client.v2.model.on_call_page_target_type import OnCallPageTargetType
from datadog_api_client.v2.model.page_urgency import PageUrgency
from datadog_api_client.v2.model.schedule_create_request import ScheduleCreateRequest
from datadog_api_client.v2.model.schedule_create_request_data import ScheduleCreateRequestData
from datadog_api_client.v2.model.schedule_create_request_data_attributes import ScheduleCreateRequestDataAttributes
from datadog_api_client.v2.model.schedule_create_request_data_attributes_layers_items import (
    ScheduleCreateRequestDataAttributesLayersItems,
)
from datadog_api_client.v2.model.schedule_create_request_data_relationships import (
    ScheduleCreateRequestDataRelationships,
)
from datadog_api_client.v2.model.schedule_create_request_data_type import ScheduleCreateRequestDataType
from datadog_api_client.v2.model.schedule_request_data_attributes_layers_items_members_items import (
    ScheduleRequestDataAttributesLayersItemsMembersItems,
)
from datadog_api_client.v2.model.schedule_request_data_attributes_layers_items_members_items_user import (
    ScheduleRequestDataAttributesLayersItemsMembersItemsUser,
)
from datadog_api_client.v2.model.schedule_target_position import ScheduleTargetPosition
from datadog_api_client.v2.model.time_restriction import TimeRestriction
from datadog_api_client.v2.model.weekday import Weekday

from tests.support.api_client import OrgClient


def on_call(org: OrgClient) -> OnCallApi:
    return OnCallApi(org.api_client)


def paging(org: OrgClient) -> OnCallPagingApi:
    return OnCallPagingApi(org.api_client)


def teams_relationship(team_ids: list[str]) -> DataRelationshipsTeams:
    return DataRelationshipsTeams(
        data=[DataRelationshipsTeamsDataItems(id=t, type=DataRelationshipsTeamsDataItemsType.TEAMS) for t in team_ids]
    )


def layer(
    name: str,
    members: list[str],
    start: datetime,
    *,
    days: int = 1,
    seconds: int | None = None,
    restrictions: list[tuple[str, str, str, str]] | None = None,
    end: datetime | None = None,
    time_zone: str | None = None,
) -> ScheduleCreateRequestDataAttributesLayersItems:
    extra: dict[str, Any] = {}
    if restrictions:
        extra["restrictions"] = [
            TimeRestriction(start_day=Weekday(a), start_time=b, end_day=Weekday(c), end_time=d)
            for a, b, c, d in restrictions
        ]
    if end is not None:
        extra["end_date"] = end
    if time_zone is not None:
        extra["time_zone"] = time_zone
    interval = (
        LayerAttributesInterval(days=days) if seconds is None else LayerAttributesInterval(days=days, seconds=seconds)
    )
    return ScheduleCreateRequestDataAttributesLayersItems(
        name=name,
        effective_date=start,
        rotation_start=start,
        interval=interval,
        members=[
            ScheduleRequestDataAttributesLayersItemsMembersItems(
                user=ScheduleRequestDataAttributesLayersItemsMembersItemsUser(id=m)
            )
            for m in members
        ],
        **extra,
    )


def schedule_request(
    name: str, layers: list[Any], time_zone: str = "UTC", team_ids: list[str] | None = None
) -> ScheduleCreateRequest:
    data: dict[str, Any] = {}
    if team_ids:
        data["relationships"] = ScheduleCreateRequestDataRelationships(teams=teams_relationship(team_ids))
    return ScheduleCreateRequest(
        data=ScheduleCreateRequestData(
            type=ScheduleCreateRequestDataType.SCHEDULES,
            attributes=ScheduleCreateRequestDataAttributes(name=name, time_zone=time_zone, layers=layers),
            **data,
        )
    )


def make_schedule(org: OrgClient, name: str, members: list[str], start: datetime, **kwargs: Any) -> Any:
    return on_call(org).create_on_call_schedule(
        body=schedule_request(name, [layer("primary", members, start)], **kwargs)
    )


def target(kind: str, ident: str, position: str | None = None) -> EscalationPolicyStepTarget:
    extra: dict[str, Any] = {}
    if position is not None:
        extra["config"] = EscalationPolicyStepTargetConfig(
            schedule=EscalationPolicyStepTargetConfigSchedule(position=ScheduleTargetPosition(position))
        )
    return EscalationPolicyStepTarget(id=ident, type=EscalationPolicyStepTargetType(kind), **extra)


def step(
    targets: list[EscalationPolicyStepTarget], after: int = 300, assignment: str = "default"
) -> EscalationPolicyCreateRequestDataAttributesStepsItems:
    return EscalationPolicyCreateRequestDataAttributesStepsItems(
        targets=targets,
        escalate_after_seconds=after,
        assignment=EscalationPolicyStepAttributesAssignment(assignment),
    )


def policy_request(
    name: str, steps: list[Any], *, retries: int = 0, resolve: bool = False, team_ids: list[str] | None = None
) -> EscalationPolicyCreateRequest:
    data: dict[str, Any] = {}
    if team_ids:
        data["relationships"] = EscalationPolicyCreateRequestDataRelationships(teams=teams_relationship(team_ids))
    return EscalationPolicyCreateRequest(
        data=EscalationPolicyCreateRequestData(
            type=EscalationPolicyCreateRequestDataType.POLICIES,
            attributes=EscalationPolicyCreateRequestDataAttributes(
                name=name, steps=steps, retries=retries, resolve_page_on_policy_end=resolve
            ),
            **data,
        )
    )


def page_request(
    title: str, target_type: str, identifier: str, urgency: str = "high", tags: list[str] | None = None, **extra: Any
) -> CreatePageRequest:
    return CreatePageRequest(
        data=CreatePageRequestData(
            type=CreatePageRequestDataType.PAGES,
            attributes=CreatePageRequestDataAttributes(
                title=title,
                urgency=PageUrgency(urgency),
                tags=tags or [],
                target=CreatePageRequestDataAttributesTarget(
                    identifier=identifier, type=OnCallPageTargetType(target_type)
                ),
                **extra,
            ),
        )
    )


def page_id(value: str) -> uuid.UUID:
    """The paging API's page ids are UUIDs in the client."""
    return uuid.UUID(value)


def make_team(org: OrgClient, handle: str, members: list[str] | None = None) -> str:
    relationships = {"users": {"data": [{"id": m, "type": "users"} for m in members or []]}}
    response = org.http.post(
        "/api/v2/team",
        json={
            "data": {
                "type": "team",
                "attributes": {"handle": handle, "name": handle.title()},
                "relationships": relationships,
            }
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def oneof_types(items: list[Any] | None) -> list[str]:
    """The model class each `included` item was read as (oneOf wrappers unwrapped)."""
    return [type(item.get_oneof_instance()).__name__ for item in items or []]


def oncall_outbox(org: OrgClient) -> list[dict]:
    """The org's on-call outbox envelopes in sequence order (the on-call tenant's `domain_events`)."""
    import sqlalchemy as sa

    from casem.adapters.storage.tables import domain_events
    from casem.topology.tenants import ON_CALL

    async def _read() -> list[dict]:
        async with org.server.context.uow(ON_CALL, read_only=True) as uow:
            rows = await uow.execute(
                sa.select(domain_events.c.envelope)
                .where(domain_events.c.org_id == org.org_id)
                .order_by(domain_events.c.seq)
            )
            return [row.envelope for row in rows]

    return org.server.call(_read())


def event_types_of(envelopes: list[dict]) -> list[str]:
    return [e["type"].removeprefix("com.casem.").rsplit(".v", 1)[0] for e in envelopes]
