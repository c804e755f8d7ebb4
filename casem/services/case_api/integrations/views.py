"""HTTP views for Jira and ServiceNow: Datadog's JiraIntegrationApi and ServiceNowIntegrationApi, the case
operations of CaseManagementApi (create_case_jira_issue, link_jira_issue_to_case, unlink_jira_issue,
create_case_service_now_ticket, link_incident, create_case_notebook), and casem's own routes to add,
rotate and remove an account or instance (see docs/integrations.md).

Credentials and webhook secrets are never in an answer; a webhook secret casem generated is shown once,
in the answer that created it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from casem.adapters.storage.conflicts import duplicate_is_conflict
from casem.app.cases.service import get_case
from casem.app.integrations import accounts, links
from casem.app.integrations.errors import RemoteFailure
from casem.app.integrations.oauth import authorization_url
from casem.app.integrations.remotes import RemoteSystems, remote_systems_from_env
from casem.domain.errors import InvalidInput
from casem.domain.integrations import JIRA, SERVICENOW, IntegrationAccount, JiraIssueTemplate, ServiceNowTemplate
from casem.services.case_api.cases.schemas import CaseResponse
from casem.services.case_api.cases.views import serialize_case
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.integrations import schemas
from casem.services.case_api.jsonapi import error_response, iso, parse_body
from casem.services.case_api.openapi import contract

jira_router = APIRouter(prefix="/api/v2/integration/jira", tags=["jira integration"])
servicenow_router = APIRouter(prefix="/api/v2/integration/servicenow", tags=["servicenow integration"])
case_router = APIRouter(prefix="/api/v2/cases/{case_id}/relationships", tags=["case integrations"])


def remotes_of(request: Request) -> RemoteSystems:
    """The app's RemoteSystems (tests set one with their allow-list); built from the environment once."""
    state = request.app.state
    found = getattr(state, "integrations", None)
    if found is None:
        found = remote_systems_from_env()
        state.integrations = found
    return found


async def remote_failure_answer(_: Request, exc: Exception) -> JSONResponse:
    """How every route answers a remote Jira or ServiceNow failing it: 502 while it may come back, else 400."""
    assert isinstance(exc, RemoteFailure)
    if exc.transient:
        return error_response(502, "Bad Gateway", exc.detail)
    return error_response(400, "Bad Request", exc.detail, "/data/attributes")


def _webhook_path(account: IntegrationAccount) -> str:
    return f"/webhooks/{account.system}/{account.id}"


def jira_account_json(account: IntegrationAccount) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "consumer_key": account.principal,
        "instance_url": account.base_url,
        "auth_type": account.auth_type,
        "webhook_path": _webhook_path(account),
    }
    if account.last_webhook_at is not None:
        attributes["last_webhook_timestamp"] = iso(account.last_webhook_at)
    return {"id": account.id, "type": "jira-account", "attributes": attributes}


def instance_json(account: IntegrationAccount) -> dict[str, Any]:
    return {
        "id": account.id,
        "type": "instance",
        "attributes": {
            "instance_name": account.name,
            "instance_url": account.base_url,
            "auth_type": account.auth_type,
            "principal": account.principal,
            "webhook_path": _webhook_path(account),
        },
    }


def _created(data: dict[str, Any], secret: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"data": data}
    if secret is not None:
        body["meta"] = {"webhook_secret": secret, "note": "shown once: configure it on the remote's webhook now"}
    return body


# -- Jira accounts ---------------------------------------------------------------------------------------------


@jira_router.get("/accounts")
@contract(returns=schemas.JiraAccountsResponse)
async def list_jira_accounts(who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        found = await accounts.list_accounts(uow, who.org_id, JIRA)
    return {"data": [jira_account_json(a) for a in found]}


@jira_router.post("/accounts", status_code=201)
@contract(body=schemas.JiraAccountRequest, returns=schemas.JiraAccountResponse, errors={409, 502})
async def add_jira_account(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, schemas.JiraAccountRequest)
    new = await accounts.prepare_jira_account(
        remotes_of(request), who.org_id, who.user_id, body.data.attributes.model_dump()
    )
    async with who.uow() as uow:
        await accounts.save_account(uow, new.account)
        await uow.commit()
    return _created(jira_account_json(new.account), new.generated_webhook_secret)


@jira_router.patch("/accounts/{account_id}")
@contract(body=schemas.JiraAccountRequest, returns=schemas.JiraAccountResponse, errors={502})
async def update_jira_account(account_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, schemas.JiraAccountRequest)
    attrs = body.data.attributes.model_dump(exclude_unset=True)
    async with who.uow() as uow:
        account, secret = await accounts.update_credentials(
            uow, remotes_of(request), who.org_id, JIRA, account_id, attrs
        )
        await uow.commit()
    return _created(jira_account_json(account), secret)


@jira_router.delete("/accounts/{account_id}", status_code=204)
async def delete_jira_account(account_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await accounts.delete_account(uow, who.org_id, JIRA, account_id)
        await uow.commit()
    return Response(status_code=204)


@jira_router.post("/oauth/authorize")
@contract(body=schemas.OAuthAuthorizeRequest, returns=schemas.OAuthAuthorizationResponse, errors={502})
async def jira_oauth_authorize(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    """Where to send a person to let casem act on their Jira site (OAuth 2.0 3LO with the operator's app)."""
    body = await parse_body(request, schemas.OAuthAuthorizeRequest)
    attrs = body.data.attributes
    if not isinstance(attrs.redirect_uri, str) or not attrs.redirect_uri.startswith(("https://", "http://")):
        raise InvalidInput(
            "redirect_uri must be the absolute URL Atlassian sends the code to", "/data/attributes/redirect_uri"
        )
    url = authorization_url(remotes_of(request), attrs.redirect_uri, attrs.state or who.org_id)
    return {"data": {"id": "jira-oauth", "type": "jira_oauth_authorization", "attributes": {"url": url}}}


# -- Jira issue templates --------------------------------------------------------------------------------------


def template_json(template: JiraIssueTemplate, account: IntegrationAccount) -> dict[str, Any]:
    return {
        "id": template.id,
        "type": "jira-issue-template",
        "attributes": {
            "fields": template.fields,
            "issue_type_id": template.issue_type_id,
            "name": template.name,
            "project_id": template.project_id,
        },
        "relationships": {"jira-account": {"data": jira_account_json(account)}},
    }


@jira_router.post("/issue-templates", status_code=201)
@contract(body=schemas.IssueTemplateCreateRequest, returns=schemas.IssueTemplateResponse)
async def create_jira_issue_template(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, schemas.IssueTemplateCreateRequest)
    if body.data is None or body.data.attributes is None:
        raise InvalidInput("data.attributes is required", "/data/attributes")
    attrs = body.data.attributes.model_dump(by_alias=True)
    async with who.uow() as uow:
        template = await accounts.create_issue_template(uow, who.org_id, who.user_id, attrs)
        account = await accounts.get_account(uow, who.org_id, JIRA, template.account_id)
        await uow.commit()
    return {"data": template_json(template, account)}


@jira_router.get("/issue-templates")
@contract(returns=schemas.IssueTemplatesResponse)
async def list_jira_issue_templates(who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        templates = await accounts.list_issue_templates(uow, who.org_id)
        by_id = {a.id: a for a in await accounts.list_accounts(uow, who.org_id, JIRA)}
    shown = [t for t in templates if t.account_id in by_id]
    used = {t.account_id for t in shown}
    return {
        "data": [template_json(t, by_id[t.account_id]) for t in shown],
        "included": [jira_account_json(by_id[a]) for a in sorted(used)],
    }


@jira_router.get("/issue-templates/{issue_template_id}")
@contract(returns=schemas.IssueTemplateResponse)
async def get_jira_issue_template(issue_template_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        template = await accounts.get_issue_template(uow, who.org_id, issue_template_id)
        account = await accounts.get_account(uow, who.org_id, JIRA, template.account_id)
    return {"data": template_json(template, account)}


@jira_router.patch("/issue-templates/{issue_template_id}")
@contract(body=schemas.IssueTemplateUpdateRequest, returns=schemas.IssueTemplateResponse)
async def update_jira_issue_template(
    issue_template_id: str, request: Request, who: Caller = Depends(caller)
) -> dict[str, Any]:
    body = await parse_body(request, schemas.IssueTemplateUpdateRequest)
    async with who.uow() as uow:
        template = await accounts.update_issue_template(
            uow, who.org_id, issue_template_id, body.data.attributes.model_dump()
        )
        account = await accounts.get_account(uow, who.org_id, JIRA, template.account_id)
        await uow.commit()
    return {"data": template_json(template, account)}


@jira_router.delete("/issue-templates/{issue_template_id}", status_code=204)
async def delete_jira_issue_template(issue_template_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await accounts.delete_issue_template(uow, who.org_id, issue_template_id)
        await uow.commit()
    return Response(status_code=204)


# -- ServiceNow instances ------------------------------------------------------------------------------------


@servicenow_router.get("/instances")
@contract(returns=schemas.InstancesResponse)
async def list_service_now_instances(who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        found = await accounts.list_accounts(uow, who.org_id, SERVICENOW)
    return {"data": [instance_json(a) for a in found]}


@servicenow_router.post("/instances", status_code=201)
@contract(body=schemas.ServiceNowInstanceRequest, returns=schemas.InstanceResponse, errors={409, 502})
async def add_service_now_instance(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, schemas.ServiceNowInstanceRequest)
    new = await accounts.prepare_servicenow_instance(
        remotes_of(request), who.org_id, who.user_id, body.data.attributes.model_dump()
    )
    async with who.uow() as uow:
        await accounts.save_account(uow, new.account)
        await uow.commit()
    return _created(instance_json(new.account), new.generated_webhook_secret)


@servicenow_router.patch("/instances/{instance_id}")
@contract(body=schemas.ServiceNowInstanceRequest, returns=schemas.InstanceResponse, errors={502})
async def update_service_now_instance(
    instance_id: str, request: Request, who: Caller = Depends(caller)
) -> dict[str, Any]:
    body = await parse_body(request, schemas.ServiceNowInstanceRequest)
    attrs = body.data.attributes.model_dump(exclude_unset=True)
    async with who.uow() as uow:
        account, secret = await accounts.update_credentials(
            uow, remotes_of(request), who.org_id, SERVICENOW, instance_id, attrs
        )
        await uow.commit()
    return _created(instance_json(account), secret)


@servicenow_router.delete("/instances/{instance_id}", status_code=204)
async def delete_service_now_instance(instance_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await accounts.delete_account(uow, who.org_id, SERVICENOW, instance_id)
        await uow.commit()
    return Response(status_code=204)


# -- ServiceNow templates ("handles") ------------------------------------------------------------------------


def servicenow_template_json(t: ServiceNowTemplate) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "handle_name": t.handle_name,
        "instance_id": t.instance_id,
        "servicenow_tablename": t.table_name,
        "fields_mapping": t.fields_mapping,
    }
    for name in ("assignment_group_id", "business_service_id", "user_id"):
        if getattr(t, name) is not None:
            attributes[name] = getattr(t, name)
    return {"id": t.id, "type": "servicenow_templates", "attributes": attributes}


@servicenow_router.post("/handles", status_code=201)
@contract(body=schemas.ServiceNowTemplateRequest, returns=schemas.ServiceNowTemplateResponse, errors={409})
async def create_service_now_template(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, schemas.ServiceNowTemplateRequest)
    with duplicate_is_conflict("a ServiceNow template with this handle_name was just created"):
        async with who.uow() as uow:
            template = await accounts.create_servicenow_template(
                uow, who.org_id, who.user_id, body.data.attributes.model_dump()
            )
            await uow.commit()
    return {"data": servicenow_template_json(template)}


@servicenow_router.get("/handles")
@contract(returns=schemas.ServiceNowTemplatesResponse)
async def list_service_now_templates(who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        found = await accounts.list_servicenow_templates(uow, who.org_id)
    return {"data": [servicenow_template_json(t) for t in found]}


@servicenow_router.get("/handles/{template_id}")
@contract(returns=schemas.ServiceNowTemplateResponse)
async def get_service_now_template(template_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        template = await accounts.get_servicenow_template(uow, who.org_id, template_id)
    return {"data": servicenow_template_json(template)}


@servicenow_router.put("/handles/{template_id}")
@contract(body=schemas.ServiceNowTemplateRequest, returns=schemas.ServiceNowTemplateResponse, errors={409})
async def update_service_now_template(
    template_id: str, request: Request, who: Caller = Depends(caller)
) -> dict[str, Any]:
    body = await parse_body(request, schemas.ServiceNowTemplateRequest)
    async with who.uow() as uow:
        template = await accounts.update_servicenow_template(
            uow, who.org_id, template_id, body.data.attributes.model_dump()
        )
        await uow.commit()
    return {"data": servicenow_template_json(template)}


@servicenow_router.delete("/handles/{template_id}", status_code=204)
async def delete_service_now_template(template_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await accounts.delete_servicenow_template(uow, who.org_id, template_id)
        await uow.commit()
    return Response(status_code=204)


# -- what an instance offers --------------------------------------------------------------------------------------


async def _listing(request: Request, who: Caller, instance_id: str, kind: str) -> list[accounts.InstanceRecord]:
    async with who.uow(read_only=True) as uow:
        account = await accounts.get_account(uow, who.org_id, SERVICENOW, instance_id)
    return await accounts.list_instance_records(remotes_of(request), account, kind)


def _named_records(found: Any, kind: str, prefix: str, instance_id: str) -> dict[str, Any]:
    """Assignment groups and business services: Datadog names their two attributes `<prefix>_name` and
    `<prefix>_sys_id`."""
    return {
        "data": [
            {
                "id": r.id,
                "type": kind,
                "attributes": {
                    f"{prefix}_name": str(r.values.get("name") or ""),
                    f"{prefix}_sys_id": r.sys_id,
                    "instance_id": instance_id.lower(),
                },
            }
            for r in found
        ]
    }


@servicenow_router.get("/assignment_groups/{instance_id}", response_model=None)
@contract(returns=schemas.AssignmentGroupsResponse, errors={502})
async def list_service_now_assignment_groups(
    instance_id: str, request: Request, who: Caller = Depends(caller)
) -> dict[str, Any] | JSONResponse:
    found = await _listing(request, who, instance_id, "assignment_groups")
    return _named_records(found, "assignment_groups", "assignment_group", instance_id)


@servicenow_router.get("/business_services/{instance_id}", response_model=None)
@contract(returns=schemas.BusinessServicesResponse, errors={502})
async def list_service_now_business_services(
    instance_id: str, request: Request, who: Caller = Depends(caller)
) -> dict[str, Any] | JSONResponse:
    found = await _listing(request, who, instance_id, "business_services")
    return _named_records(found, "business_services", "service", instance_id)


@servicenow_router.get("/users/{instance_id}", response_model=None)
@contract(returns=schemas.ServiceNowUsersResponse, errors={502})
async def list_service_now_users(
    instance_id: str, request: Request, who: Caller = Depends(caller)
) -> dict[str, Any] | JSONResponse:
    found = await _listing(request, who, instance_id, "users")
    data = []
    for r in found:
        attributes = {
            "email": str(r.values.get("email") or ""),
            "instance_id": instance_id.lower(),
            "user_name": str(r.values.get("user_name") or ""),
            "user_sys_id": r.sys_id,
        }
        if r.values.get("name"):
            attributes["full_name"] = str(r.values["name"])
        data.append({"id": r.id, "type": "users", "attributes": attributes})
    return {"data": data}


# -- the case operations --------------------------------------------------------------------------------------


def _creation_answer(result: links.CreationResult) -> Response:
    """202 once the remote issue exists or will be retried; 400 naming the remote's refusal."""
    error = result.error
    if error is not None and not error.transient:
        return error_response(
            400,
            "Bad Request",
            result.link.error if result.link and result.link.error else error.explanation,
            "/data/attributes",
        )
    assert result.case is not None
    return JSONResponse({"data": serialize_case(result.case)}, status_code=202)


@case_router.post("/jira_issues", status_code=202, response_model=None)
@contract(body=schemas.JiraIssueCreateRequest, returns=CaseResponse, errors={409, 502})
async def create_case_jira_issue(case_id: str, request: Request, who: Caller = Depends(caller)) -> Response:
    body = await parse_body(request, schemas.JiraIssueCreateRequest)
    asked = links.jira_request(body.data.attributes.model_dump())
    with duplicate_is_conflict("an issue for this case is being created by another request"):
        async with who.uow() as uow:
            result = await links.create_remote_issue(
                uow, remotes_of(request), who.org_id, who.user_id, case_id, JIRA, asked, f"api:{who.user_id}", api=True
            )
            await uow.commit()
    return _creation_answer(result)


@case_router.patch("/jira_issues", status_code=204, response_model=None)
@contract(body=schemas.JiraIssueLinkRequest, errors={409, 502})
async def link_jira_issue_to_case(case_id: str, request: Request, who: Caller = Depends(caller)) -> Response:
    body = await parse_body(request, schemas.JiraIssueLinkRequest)
    with duplicate_is_conflict("the case's Jira link was just changed by another request"):
        async with who.uow() as uow:
            await links.link_jira_issue(
                uow, remotes_of(request), who.org_id, who.user_id, case_id, body.data.attributes.jira_issue_url
            )
            await uow.commit()
    return Response(status_code=204)


@case_router.delete("/jira_issues", status_code=204)
async def unlink_jira_issue(case_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await links.unlink(uow, who.org_id, who.user_id, case_id, JIRA)
        await uow.commit()
    return Response(status_code=204)


@case_router.post("/servicenow_tickets", status_code=202, response_model=None)
@contract(body=schemas.ServiceNowTicketCreateRequest, returns=CaseResponse, errors={409, 502})
async def create_case_service_now_ticket(case_id: str, request: Request, who: Caller = Depends(caller)) -> Response:
    body = await parse_body(request, schemas.ServiceNowTicketCreateRequest)
    asked = links.servicenow_request(body.data.attributes.model_dump())
    with duplicate_is_conflict("a ticket for this case is being created by another request"):
        async with who.uow() as uow:
            result = await links.create_remote_issue(
                uow,
                remotes_of(request),
                who.org_id,
                who.user_id,
                case_id,
                SERVICENOW,
                asked,
                f"api:{who.user_id}",
                api=True,
            )
            await uow.commit()
    return _creation_answer(result)


@case_router.post("/incidents")
@contract(body=schemas.IncidentLinkRequest, returns=schemas.CaseWithIncidentsResponse)
async def link_incident(case_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = await parse_body(request, schemas.IncidentLinkRequest)
    async with who.uow() as uow:
        case, incidents = await links.link_incident(uow, who.org_id, who.user_id, case_id, body.data.id)
        await uow.commit()
    data = serialize_case(case)
    data["relationships"]["incidents"] = {"data": [{"id": i, "type": "incidents"} for i in incidents]}
    return {"data": data}


@case_router.post("/notebook", status_code=501, response_model=None)
@contract(body=schemas.NotebookCreateRequest, errors=(501,))
async def create_case_notebook(case_id: str, request: Request, who: Caller = Depends(caller)) -> JSONResponse:
    await parse_body(request, schemas.NotebookCreateRequest)
    async with who.uow(read_only=True) as uow:
        case = await get_case(uow, who.org_id, case_id)  # another org's case stays a 404
    return error_response(
        501,
        "Not Implemented",
        f"casem has no notebooks: case {case.key} cannot get one. Datadog creates it in its Notebooks product, "
        "which casem does not include; keep investigation notes as case comments or attachments instead.",
    )
