"""HTTP views of Datadog's Key Management API: API keys, application keys, and the caller's own application keys.

Secrets appear only in the answer to a create: casem stores their hashes, so a read shows `last4`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.identity import keys
from casem.app.identity.service import Page, page_of
from casem.domain.errors import InvalidInput
from casem.domain.identity import API_KEY, APP_KEY, Credential
from casem.services.case_api.http import Caller, OrgKey, api_key_caller, caller
from casem.services.case_api.identity.views import serialize_user
from casem.services.case_api.jsonapi import iso, parse_body
from casem.services.case_api.keys.schemas import (
    APIKeyCreateRequest,
    APIKeyResponse,
    APIKeysResponse,
    APIKeyUpdateRequest,
    ApplicationKeyCreateRequest,
    ApplicationKeyResponse,
    ApplicationKeysResponse,
    ApplicationKeyUpdateRequest,
    ValidateKeysResponse,
    ValidateV2Response,
    ValidationResponseV1,
)
from casem.services.case_api.openapi import contract
from casem.services.case_api.schemas import dump_set

router = APIRouter(tags=["key management"])

PAGE_NUMBER_MAX = 1_000_000  # far past any real listing, and far from the database's integer range
API_KEY_INCLUDES = {"created_by", "modified_by"}
APP_KEY_INCLUDES = {"owned_by"}


def _user(user_id: str | None) -> dict[str, Any] | None:
    return {"id": user_id, "type": "users"} if user_id else None


def _last4(key: Credential) -> str:
    # A key imported by its hash alone has no known tail; Datadog's model wants exactly four characters.
    return (key.last4 or "").rjust(4, "*")


def serialize_api_key(key: Credential, secret: str | None = None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "created_at": iso(key.created_at),
        "last4": _last4(key),
        "modified_at": iso(key.modified_at or key.created_at),
        "name": key.name,
        "remote_config_read_enabled": key.remote_config_read_enabled,
        "private_action_runner_enroll_enabled": False,
    }
    if key.category is not None:
        attributes["category"] = key.category
    if secret is not None:
        attributes["key"] = secret
    relationships: dict[str, Any] = {"modified_by": {"data": _user(key.modified_by)}}
    if key.created_by:
        relationships["created_by"] = {"data": _user(key.created_by)}
    return {"id": key.id, "type": "api_keys", "attributes": attributes, "relationships": relationships}


def serialize_app_key(key: Credential, secret: str | None = None) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "created_at": iso(key.created_at),
        "last4": _last4(key),
        "name": key.name,
        "scopes": None,  # unscoped: casem refuses scopes it could not enforce
    }
    if secret is not None:
        attributes["key"] = secret
    return {
        "id": key.id,
        "type": "application_keys",
        "attributes": attributes,
        "relationships": {"owned_by": {"data": _user(key.user_id)}},
    }


def _includes(include: str | None, allowed: set[str]) -> set[str]:
    wanted = {part.strip() for part in (include or "").split(",") if part.strip()}
    unknown = sorted(wanted - allowed)
    if unknown:
        raise InvalidInput(f"include {unknown[0]!r} is not supported; use {', '.join(sorted(allowed))}")
    return wanted


async def _included(uow: UnitOfWork, org_id: str, found: list[Credential], wanted: set[str]) -> list[dict[str, Any]]:
    """The users the keys' relationships name, for `include=` (only the caller's org's users exist here)."""
    columns = {"created_by": "created_by", "modified_by": "modified_by", "owned_by": "user_id"}
    ids = {getattr(k, columns[name]) for k in found for name in wanted} - {None}
    return [serialize_user(u) for u in await keys.users_by_id(uow, org_id, ids)]


def _page(number: int | None, size: int | None) -> Page:
    if number is not None and number > PAGE_NUMBER_MAX:
        raise InvalidInput(f"page[number] must be at most {PAGE_NUMBER_MAX}")
    return page_of(number, size)


def _same_id(path_id: str, body_id: str) -> None:
    if body_id.lower() != path_id.lower():
        raise InvalidInput(f"data.id {body_id!r} does not match the key id in the path ({path_id})", "/data/id")


# -- API keys -------------------------------------------------------------------------------------------


@router.get("/api/v2/api_keys")
@contract(returns=APIKeysResponse)
async def list_api_keys(
    who: Caller = Depends(caller),
    page_size: int | None = Query(None, alias="page[size]"),
    page_number: int | None = Query(None, alias="page[number]"),
    sort: str | None = None,
    filter: str | None = None,
    created_start: str | None = Query(None, alias="filter[created_at][start]"),
    created_end: str | None = Query(None, alias="filter[created_at][end]"),
    modified_start: str | None = Query(None, alias="filter[modified_at][start]"),
    modified_end: str | None = Query(None, alias="filter[modified_at][end]"),
    include: str | None = None,
    remote_config: bool | None = Query(None, alias="filter[remote_config_read_enabled]"),
    category: str | None = Query(None, alias="filter[category]"),
) -> dict[str, Any]:
    page = _page(page_number, page_size)
    wanted = _includes(include, API_KEY_INCLUDES)
    filters = keys.KeyFilters(
        text=filter,
        created_start=created_start,
        created_end=created_end,
        modified_start=modified_start,
        modified_end=modified_end,
        category=category,
        remote_config_read_enabled=remote_config,
    )
    async with who.uow(read_only=True) as uow:
        found, total = await keys.list_keys(uow, who.org_id, API_KEY, page, sort=sort, filters=filters)
        included = await _included(uow, who.org_id, found, wanted)
    return {
        "data": [serialize_api_key(k) for k in found],
        "included": included,
        "meta": {"max_allowed": keys.MAX_API_KEYS_PER_ORG, "page": {"total_filtered_count": total}},
    }


@router.post("/api/v2/api_keys", status_code=201)
@contract(body=APIKeyCreateRequest, returns=APIKeyResponse, errors={409})
async def create_api_key(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    attrs = (await parse_body(request, APIKeyCreateRequest)).data.attributes
    async with who.uow() as uow:
        created = await keys.create_key(
            uow,
            who.org_id,
            API_KEY,
            attrs.name,
            actor_id=who.user_id,
            category=attrs.category,
            remote_config_read_enabled=attrs.remote_config_read_enabled,
        )
        await uow.commit()
    return {"data": serialize_api_key(created.key, created.secret)}


@router.get("/api/v2/api_keys/{api_key_id}")
@contract(returns=APIKeyResponse)
async def get_api_key(api_key_id: str, include: str | None = None, who: Caller = Depends(caller)) -> dict[str, Any]:
    wanted = _includes(include, API_KEY_INCLUDES)
    async with who.uow(read_only=True) as uow:
        key = await keys.get_key(uow, who.org_id, api_key_id, API_KEY)
        included = await _included(uow, who.org_id, [key], wanted)
    return {"data": serialize_api_key(key), **({"included": included} if wanted else {})}


@router.patch("/api/v2/api_keys/{api_key_id}")
@contract(body=APIKeyUpdateRequest, returns=APIKeyResponse)
async def update_api_key(api_key_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    data = (await parse_body(request, APIKeyUpdateRequest)).data
    _same_id(api_key_id, data.id)
    async with who.uow() as uow:
        key = await keys.update_key(
            uow, who.org_id, api_key_id, API_KEY, actor_id=who.user_id, changes=dump_set(data.attributes)
        )
        await uow.commit()
    return {"data": serialize_api_key(key)}


@router.delete("/api/v2/api_keys/{api_key_id}", status_code=204)
async def delete_api_key(api_key_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await keys.revoke_key(uow, who.org_id, api_key_id, API_KEY, actor_id=who.user_id)
        await uow.commit()
    return Response(status_code=204)


# -- application keys: every user's (org-wide) and the caller's own ----------------------------------------


async def _list_app_keys(
    who: Caller,
    owner_id: str | None,
    page_size: int | None,
    page_number: int | None,
    sort: str | None,
    filters: keys.KeyFilters,
    include: str | None,
) -> dict[str, Any]:
    page = _page(page_number, page_size)
    wanted = _includes(include, APP_KEY_INCLUDES)
    async with who.uow(read_only=True) as uow:
        found, total = await keys.list_keys(
            uow, who.org_id, APP_KEY, page, sort=sort, filters=filters, owner_id=owner_id
        )
        included = await _included(uow, who.org_id, found, wanted)
    return {
        "data": [serialize_app_key(k) for k in found],
        "included": included,
        "meta": {"max_allowed_per_user": keys.MAX_APP_KEYS_PER_USER, "page": {"total_filtered_count": total}},
    }


@router.get("/api/v2/application_keys")
@contract(returns=ApplicationKeysResponse)
async def list_application_keys(
    who: Caller = Depends(caller),
    page_size: int | None = Query(None, alias="page[size]"),
    page_number: int | None = Query(None, alias="page[number]"),
    sort: str | None = None,
    filter: str | None = None,
    created_start: str | None = Query(None, alias="filter[created_at][start]"),
    created_end: str | None = Query(None, alias="filter[created_at][end]"),
    owned_by: str | None = Query(None, alias="filter[owned_by]"),
    include: str | None = None,
) -> dict[str, Any]:
    filters = keys.KeyFilters(text=filter, created_start=created_start, created_end=created_end, owned_by=owned_by)
    return await _list_app_keys(who, None, page_size, page_number, sort, filters, include)


@router.get("/api/v2/current_user/application_keys")
@contract(returns=ApplicationKeysResponse)
async def list_current_user_application_keys(
    who: Caller = Depends(caller),
    page_size: int | None = Query(None, alias="page[size]"),
    page_number: int | None = Query(None, alias="page[number]"),
    sort: str | None = None,
    filter: str | None = None,
    created_start: str | None = Query(None, alias="filter[created_at][start]"),
    created_end: str | None = Query(None, alias="filter[created_at][end]"),
    include: str | None = None,
) -> dict[str, Any]:
    filters = keys.KeyFilters(text=filter, created_start=created_start, created_end=created_end)
    return await _list_app_keys(who, who.user_id, page_size, page_number, sort, filters, include)


@router.post("/api/v2/current_user/application_keys", status_code=201)
@contract(body=ApplicationKeyCreateRequest, returns=ApplicationKeyResponse, errors={409})
async def create_current_user_application_key(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    attrs = (await parse_body(request, ApplicationKeyCreateRequest)).data.attributes
    async with who.uow() as uow:
        created = await keys.create_key(
            uow, who.org_id, APP_KEY, attrs.name, owner_id=who.user_id, actor_id=who.user_id, scopes=attrs.scopes
        )
        await uow.commit()
    return {"data": serialize_app_key(created.key, created.secret)}


async def _get_app_key(who: Caller, key_id: str, owner_id: str | None, include: str | None) -> dict[str, Any]:
    wanted = _includes(include, APP_KEY_INCLUDES)
    async with who.uow(read_only=True) as uow:
        key = await keys.get_key(uow, who.org_id, key_id, APP_KEY, owner_id=owner_id)
        included = await _included(uow, who.org_id, [key], wanted)
    return {"data": serialize_app_key(key), **({"included": included} if wanted else {})}


async def _update_app_key(who: Caller, key_id: str, owner_id: str | None, request: Request) -> dict[str, Any]:
    data = (await parse_body(request, ApplicationKeyUpdateRequest)).data
    _same_id(key_id, data.id)
    async with who.uow() as uow:
        key = await keys.update_key(
            uow, who.org_id, key_id, APP_KEY, actor_id=who.user_id, owner_id=owner_id, changes=dump_set(data.attributes)
        )
        await uow.commit()
    return {"data": serialize_app_key(key)}


async def _revoke_app_key(who: Caller, key_id: str, owner_id: str | None) -> Response:
    async with who.uow() as uow:
        await keys.revoke_key(uow, who.org_id, key_id, APP_KEY, actor_id=who.user_id, owner_id=owner_id)
        await uow.commit()
    return Response(status_code=204)


@router.get("/api/v2/application_keys/{app_key_id}")
@contract(returns=ApplicationKeyResponse)
async def get_application_key(
    app_key_id: str, include: str | None = None, who: Caller = Depends(caller)
) -> dict[str, Any]:
    return await _get_app_key(who, app_key_id, None, include)


@router.patch("/api/v2/application_keys/{app_key_id}")
@contract(body=ApplicationKeyUpdateRequest, returns=ApplicationKeyResponse)
async def update_application_key(app_key_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    return await _update_app_key(who, app_key_id, None, request)


@router.delete("/api/v2/application_keys/{app_key_id}", status_code=204)
async def delete_application_key(app_key_id: str, who: Caller = Depends(caller)) -> Response:
    return await _revoke_app_key(who, app_key_id, None)


@router.get("/api/v2/current_user/application_keys/{app_key_id}")
@contract(returns=ApplicationKeyResponse)
async def get_current_user_application_key(app_key_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    return await _get_app_key(who, app_key_id, who.user_id, None)


@router.patch("/api/v2/current_user/application_keys/{app_key_id}")
@contract(body=ApplicationKeyUpdateRequest, returns=ApplicationKeyResponse)
async def update_current_user_application_key(
    app_key_id: str, request: Request, who: Caller = Depends(caller)
) -> dict[str, Any]:
    return await _update_app_key(who, app_key_id, who.user_id, request)


@router.delete("/api/v2/current_user/application_keys/{app_key_id}", status_code=204)
async def delete_current_user_application_key(app_key_id: str, who: Caller = Depends(caller)) -> Response:
    return await _revoke_app_key(who, app_key_id, who.user_id)


# -- validation: does this key (or pair of keys) authenticate? -------------------------------------------


@router.get("/api/v1/validate", dependencies=[Depends(api_key_caller)])
@contract(returns=ValidationResponseV1)
async def validate_api_key_v1() -> dict[str, Any]:
    """Datadog's AuthenticationApi.validate: DD-API-KEY alone; a bad one is the usual 403."""
    return {"valid": True}


@router.get("/api/v2/validate")
@contract(returns=ValidateV2Response)
async def validate_api_key_v2(org_key: OrgKey = Depends(api_key_caller)) -> dict[str, Any]:
    """KeyManagementApi.validate: DD-API-KEY alone. casem's API keys carry no scopes."""
    attributes = {"api_key_id": org_key.key_id, "api_key_scopes": [], "valid": True}
    return {"data": {"id": org_key.org_id, "type": "validate_v2", "attributes": attributes}}


@router.get("/api/v2/validate_keys", dependencies=[Depends(caller)])
@contract(returns=ValidateKeysResponse)
async def validate_keys() -> dict[str, Any]:
    """KeyManagementApi.validate_api_key: both keys, as every other route takes them."""
    return {"status": "ok"}
