"""Builders for requests through the official client, shared by the API suites."""

from __future__ import annotations

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
from tests.api.conftest import OrgClient, unique_key


def make_project(org: OrgClient, key: str | None = None, name: str = "Security Investigation"):
    body = ProjectCreateRequest(
        data=ProjectCreate(
            attributes=ProjectCreateAttributes(key=key or unique_key(), name=name),
            type=ProjectResourceType.PROJECT,
        )
    )
    return org.cases.create_project(body=body).data


def case_request(project_id: str, title: str = "Disk full on web-1", priority: str = "NOT_DEFINED",
                 type_id: str = STANDARD_TYPE_ID, **attrs) -> CaseCreateRequest:
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
