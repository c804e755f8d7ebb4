"""Builders for requests through the official client, shared by the API suites."""

from __future__ import annotations

from typing import Any

from datadog_api_client.v2.model.case_create import CaseCreate
from datadog_api_client.v2.model.case_create_attributes import CaseCreateAttributes
from datadog_api_client.v2.model.case_create_relationships import CaseCreateRelationships
from datadog_api_client.v2.model.case_create_request import CaseCreateRequest
from datadog_api_client.v2.model.case_priority import CasePriority
from datadog_api_client.v2.model.case_resource_type import CaseResourceType
from datadog_api_client.v2.model.project_create import ProjectCreate
from datadog_api_client.v2.model.project_create_attributes import ProjectCreateAttributes
from datadog_api_client.v2.model.project_create_request import ProjectCreateRequest
from datadog_api_client.v2.model.project_relationship import ProjectRelationship
from datadog_api_client.v2.model.project_relationship_data import ProjectRelationshipData
from datadog_api_client.v2.model.project_resource_type import ProjectResourceType

from casem.domain.cases import STANDARD_TYPE_ID
from tests.support.api_client import OrgClient, unique_key


def make_project(org: OrgClient, key: str | None = None, name: str = "Security Investigation"):
    body = ProjectCreateRequest(
        data=ProjectCreate(
            attributes=ProjectCreateAttributes(key=key or unique_key(), name=name),
            type=ProjectResourceType.PROJECT,
        )
    )
    return org.cases.create_project(body=body).data


def case_request(
    project_id: str,
    title: str = "Disk full on web-1",
    priority: str = "NOT_DEFINED",
    type_id: str = STANDARD_TYPE_ID,
    **attrs,
) -> CaseCreateRequest:
    return CaseCreateRequest(
        data=CaseCreate(
            attributes=CaseCreateAttributes(title=title, type_id=type_id, priority=CasePriority(priority), **attrs),
            relationships=CaseCreateRelationships(
                project=ProjectRelationship(
                    data=ProjectRelationshipData(id=project_id, type=ProjectResourceType.PROJECT)
                )
            ),
            type=CaseResourceType.CASE,
        )
    )


def make_case(org: OrgClient, project_id: str, title: str = "Disk full on web-1", **kwargs):
    return org.cases.create_case(body=case_request(project_id, title, **kwargs)).data


# -- comments, users and the outbox (timeline / watcher / isolation suites) ---------------------------------------


def comment_request(text: str):
    from datadog_api_client.v2.model.case_comment import CaseComment
    from datadog_api_client.v2.model.case_comment_attributes import CaseCommentAttributes
    from datadog_api_client.v2.model.case_comment_request import CaseCommentRequest

    return CaseCommentRequest(
        data=CaseComment(attributes=CaseCommentAttributes(comment=text), type=CaseResourceType.CASE)
    )


def update_comment_request(text: str):
    from datadog_api_client.v2.model.case_update_comment import CaseUpdateComment
    from datadog_api_client.v2.model.case_update_comment_attributes import CaseUpdateCommentAttributes
    from datadog_api_client.v2.model.case_update_comment_request import CaseUpdateCommentRequest

    return CaseUpdateCommentRequest(
        data=CaseUpdateComment(attributes=CaseUpdateCommentAttributes(comment=text), type=CaseResourceType.CASE)
    )


def make_comment(org: OrgClient, case_id: str, text: str = "Looking into it"):
    """The comment's timeline cell (comment_case answers a TimelineResponse holding it)."""
    return org.cases.comment_case(case_id=case_id, body=comment_request(text)).data[0]


def add_user(org: OrgClient, email: str, name: str | None = None) -> str:
    """A further user of the org; returns its id."""
    from casem.app.identity.service import create_user

    async def _create() -> str:
        async with org.server.context.uow() as uow:
            user = await create_user(uow, org.org_id, email, name=name)
            await uow.commit()
            return user.id

    return org.server.call(_create())


def as_user(org: OrgClient, user_id: str) -> OrgClient:
    """A client of the same org acting as another of its users (the org's API key, the user's own app key)."""
    from casem.app.identity.service import BootstrapCredentials, issue_key
    from casem.domain.identity import APP_KEY
    from tests.support.api_client import client_for

    async def _issue() -> str:
        async with org.server.context.uow() as uow:
            key = issue_key(uow, org.org_id, APP_KEY, "test", user_id=user_id)
            await uow.commit()
            return key.secret

    app_key = org.server.call(_issue())
    creds = BootstrapCredentials(org.org_id, user_id, org.creds.api_key, app_key)
    return client_for(org.server, creds)


def outbox(org: OrgClient) -> list[dict]:
    """The org's outbox envelopes in sequence order, read straight from `domain_events`."""
    import sqlalchemy as sa

    from casem.adapters.storage.tables import domain_events

    async def _read() -> list[dict]:
        async with org.server.context.uow(read_only=True) as uow:
            rows = await uow.execute(
                sa.select(domain_events.c.envelope)
                .where(domain_events.c.org_id == org.org_id)
                .order_by(domain_events.c.seq)
            )
            return [row.envelope for row in rows]

    return org.server.call(_read())


def event_types(envelopes: list[dict]) -> list[str]:
    """Short event types (`case.created`) of CloudEvents envelopes (`com.casem.case.created.v1`)."""
    return [e["type"].removeprefix("com.casem.").rsplit(".v", 1)[0] for e in envelopes]


# -- fixtures the API does not cover yet --------------------------------------------------------------


def add_case_type_with_attribute(
    org: OrgClient, key: str, kind: str = "TEXT", is_multi: bool = False, options: list[str] | None = None
) -> str:
    """A custom case type with one custom attribute config; returns the type id."""
    import uuid

    from casem.domain.case_types import CaseType, CustomAttributeConfig

    async def _add() -> str:
        async with org.server.context.uow() as uow:
            case_type = CaseType(id=str(uuid.uuid4()), org_id=org.org_id, name=f"type-{key}")
            uow.add(case_type)
            await uow.session.flush()
            uow.add(
                CustomAttributeConfig(
                    id=str(uuid.uuid4()),
                    org_id=org.org_id,
                    case_type_id=case_type.id,
                    key=key,
                    display_name=key,
                    type=kind,
                    is_multi=is_multi,
                    options=options or [],
                )
            )
            await uow.commit()
            return case_type.id

    return org.server.call(_add())


def make_case_type(org: OrgClient, name: str = "Investigation", description: str = "", emoji: str = "🕵️"):
    from datadog_api_client.v2.model.case_type_create import CaseTypeCreate
    from datadog_api_client.v2.model.case_type_create_request import CaseTypeCreateRequest
    from datadog_api_client.v2.model.case_type_resource_attributes import CaseTypeResourceAttributes
    from datadog_api_client.v2.model.case_type_resource_type import CaseTypeResourceType

    body = CaseTypeCreateRequest(
        data=CaseTypeCreate(
            attributes=CaseTypeResourceAttributes(name=name, description=description, emoji=emoji),
            type=CaseTypeResourceType.CASE_TYPE,
        )
    )
    return org.types.create_case_type(body=body).data


def make_custom_attribute(
    org: OrgClient, case_type_id: str, key: str, type: str = "TEXT", is_multi: bool = False, **extra
):
    from datadog_api_client.v2.model.custom_attribute_config_attributes_create import (
        CustomAttributeConfigAttributesCreate,
    )
    from datadog_api_client.v2.model.custom_attribute_config_create import CustomAttributeConfigCreate
    from datadog_api_client.v2.model.custom_attribute_config_create_request import (
        CustomAttributeConfigCreateRequest,
    )
    from datadog_api_client.v2.model.custom_attribute_config_resource_type import CustomAttributeConfigResourceType
    from datadog_api_client.v2.model.custom_attribute_type import CustomAttributeType

    body = CustomAttributeConfigCreateRequest(
        data=CustomAttributeConfigCreate(
            attributes=CustomAttributeConfigAttributesCreate(
                display_name=extra.pop("display_name", key.replace("_", " ").title()),
                is_multi=is_multi,
                key=key,
                type=CustomAttributeType(type),
                **extra,
            ),
            type=CustomAttributeConfigResourceType.CUSTOM_ATTRIBUTE,
        )
    )
    return org.attributes.create_custom_attribute_config(case_type_id=case_type_id, body=body).data


def assert_bad_request(response: Any, pointer: str | None = None) -> dict[str, Any]:
    """A 400 with a JSON:API error that says what is wrong, and (when given) the pointer of the member at fault."""
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["status"] == "400" and error["detail"]
    if pointer:
        assert error["source"]["pointer"] == pointer
    return error
