"""Request documents of the Jira / ServiceNow routes: Datadog's shapes (the official client's models), and
casem's own for adding an account or instance. Values are checked by the use cases (with pointers)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from casem.services.case_api.schemas import Strict

# -- casem: add or update a Jira account / ServiceNow instance -------------------------------------------------


class JiraAccountAttributes(Strict):
    instance_url: Any = None
    auth: dict[str, Any] | None = None
    webhook_secret: Any = None


class JiraAccountData(Strict):
    type: Literal["jira-account"]
    attributes: JiraAccountAttributes


class JiraAccountRequest(Strict):
    data: JiraAccountData


class ServiceNowInstanceAttributes(Strict):
    instance_name: Any = None
    instance_url: Any = None
    auth: dict[str, Any] | None = None
    webhook_secret: Any = None


class ServiceNowInstanceData(Strict):
    type: Literal["instance"]
    attributes: ServiceNowInstanceAttributes


class ServiceNowInstanceRequest(Strict):
    data: ServiceNowInstanceData


class OAuthAuthorizeAttributes(Strict):
    redirect_uri: Any
    state: str | None = None


class OAuthAuthorizeData(Strict):
    type: Literal["jira_oauth_authorization"]
    attributes: OAuthAuthorizeAttributes


class OAuthAuthorizeRequest(Strict):
    data: OAuthAuthorizeData


# -- Datadog: Jira issue templates ---------------------------------------------------------------------------------


class JiraAccountRef(Strict):
    id: Any


class IssueTemplateCreateAttributes(Strict):
    fields: dict[str, Any] | None = None
    issue_type_id: Any = None
    jira_account: JiraAccountRef | None = Field(default=None, alias="jira-account")
    name: Any = None
    project_id: Any = None


class IssueTemplateCreateData(Strict):
    type: Literal["jira-issue-template"] | None = None
    attributes: IssueTemplateCreateAttributes | None = None


class IssueTemplateCreateRequest(Strict):
    data: IssueTemplateCreateData | None = None


class IssueTemplateUpdateAttributes(Strict):
    fields: dict[str, Any] | None = None
    name: Any = None


class IssueTemplateUpdateData(Strict):
    type: Literal["jira-issue-template"]
    attributes: IssueTemplateUpdateAttributes


class IssueTemplateUpdateRequest(Strict):
    data: IssueTemplateUpdateData


# -- Datadog: ServiceNow templates ("handles") ------------------------------------------------------------------


class ServiceNowTemplateAttributes(Strict):
    assignment_group_id: Any = None
    business_service_id: Any = None
    fields_mapping: dict[str, Any] | None = None
    handle_name: Any
    instance_id: Any
    servicenow_tablename: Any
    user_id: Any = None


class ServiceNowTemplateData(Strict):
    type: Literal["servicenow_templates"]
    attributes: ServiceNowTemplateAttributes


class ServiceNowTemplateRequest(Strict):
    data: ServiceNowTemplateData


# -- Datadog: the case operations -----------------------------------------------------------------------------------


class JiraIssueCreateAttributes(Strict):
    fields: dict[str, Any] | None = None
    issue_type_id: Any
    jira_account_id: Any
    project_id: Any


class JiraIssueCreateData(Strict):
    type: Literal["issues"]
    attributes: JiraIssueCreateAttributes


class JiraIssueCreateRequest(Strict):
    data: JiraIssueCreateData


class JiraIssueLinkAttributes(Strict):
    jira_issue_url: Any


class JiraIssueLinkData(Strict):
    type: Literal["issues"]
    attributes: JiraIssueLinkAttributes


class JiraIssueLinkRequest(Strict):
    data: JiraIssueLinkData


class ServiceNowTicketCreateAttributes(Strict):
    assignment_group: Any = None
    instance_name: Any


class ServiceNowTicketCreateData(Strict):
    type: Literal["tickets"]
    attributes: ServiceNowTicketCreateAttributes


class ServiceNowTicketCreateRequest(Strict):
    data: ServiceNowTicketCreateData


class IncidentRef(Strict):
    id: Any
    type: Literal["incidents"]


class IncidentLinkRequest(Strict):
    data: IncidentRef


class NotebookCreateData(Strict):
    type: Literal["notebook"]


class NotebookCreateRequest(Strict):
    data: NotebookCreateData
