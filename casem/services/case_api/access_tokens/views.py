"""HTTP views of Datadog's personal access tokens API (KeyManagementApi's *_personal_access_token* operations).

The whole token appears only in the answer to its creation: casem stores its hash; reads show its public portion.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from casem.app.access_tokens import service as tokens
from casem.app.identity.service import page_of
from casem.domain.errors import InvalidInput
from casem.domain.identity import Credential
from casem.services.case_api.access_tokens.schemas import (
    ListPersonalAccessTokensResponse,
    PersonalAccessTokenCreateRequest,
    PersonalAccessTokenCreateResponse,
    PersonalAccessTokenResponse,
    PersonalAccessTokenUpdateRequest,
)
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import iso, parse_body
from casem.services.case_api.openapi import contract
from casem.services.case_api.schemas import dump_set

router = APIRouter(tags=["key management"])

TYPE = "personal_access_tokens"
INCLUDES = {"leak_information"}
PAGE_NUMBER_MAX = 1_000_000


def _owner(token: Credential) -> dict[str, Any]:
    return {"data": {"id": token.user_id, "type": "users"}}


def serialize_token(token: Credential, *, leak_information: bool = False) -> dict[str, Any]:
    relationships: dict[str, Any] = {"owned_by": _owner(token)}
    if leak_information:
        relationships["leak_information"] = {"data": None}  # casem detects no leaks
    return {
        "id": token.id,
        "type": TYPE,
        "attributes": {
            "created_at": iso(token.created_at),
            "expires_at": iso(token.expires_at),
            "last_used_at": iso(token.last_used_at),
            "modified_at": iso(token.modified_at),
            "name": token.name,
            "public_portion": token.public_portion or "",
            "scopes": list(token.scopes or []),
        },
        "relationships": relationships,
    }


def _includes(include: str | None) -> set[str]:
    wanted = {part.strip() for part in (include or "").split(",") if part.strip()}
    unknown = sorted(wanted - INCLUDES)
    if unknown:
        raise InvalidInput(f"include {unknown[0]!r} is not supported; use {', '.join(sorted(INCLUDES))}")
    return wanted


def _owners(values: list[str] | None) -> tuple[str, ...]:
    # The client repeats filter[owned_by] per value; a comma-separated list is taken too.
    return tuple(part.strip() for value in values or () for part in value.split(",") if part.strip())


@router.get("/api/v2/personal_access_tokens")
@contract(returns=ListPersonalAccessTokensResponse)
async def list_personal_access_tokens(
    who: Caller = Depends(caller),
    page_size: int | None = Query(None, alias="page[size]"),
    page_number: int | None = Query(None, alias="page[number]"),
    sort: str | None = None,
    filter: str | None = None,
    owned_by: list[str] | None = Query(None, alias="filter[owned_by]"),
    leaked: bool | None = Query(None, alias="filter[leaked]"),
    include: str | None = None,
) -> dict[str, Any]:
    if page_number is not None and page_number > PAGE_NUMBER_MAX:
        raise InvalidInput(f"page[number] must be at most {PAGE_NUMBER_MAX}")
    page = page_of(page_number, page_size)
    wanted = _includes(include)
    filters = tokens.TokenFilters(text=filter, owned_by=_owners(owned_by), leaked=leaked)
    async with who.uow(read_only=True) as uow:
        found, total = await tokens.list_tokens(uow, who.org_id, page, sort=sort, filters=filters)
    leaks = "leak_information" in wanted
    return {
        "data": [serialize_token(t, leak_information=leaks) for t in found],
        **({"included": []} if wanted else {}),
        "meta": {"page": {"total_filtered_count": total}},
    }


@router.post("/api/v2/personal_access_tokens", status_code=201)
@contract(body=PersonalAccessTokenCreateRequest, returns=PersonalAccessTokenCreateResponse, errors={409})
async def create_personal_access_token(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    attrs = (await parse_body(request, PersonalAccessTokenCreateRequest)).data.attributes
    async with who.uow() as uow:
        created = await tokens.create_token(
            uow, who.org_id, who.user_id, attrs.name, attrs.expires_at, attrs.scopes, actor_id=who.user_id
        )
        await uow.commit()
    token = created.token
    return {
        "data": {
            "id": token.id,
            "type": TYPE,
            "attributes": {
                "created_at": iso(token.created_at),
                "expires_at": iso(token.expires_at),
                "key": created.secret,
                "name": token.name,
                "public_portion": token.public_portion,
                "scopes": list(token.scopes or []),
            },
            "relationships": {"owned_by": _owner(token)},
        }
    }


@router.get("/api/v2/personal_access_tokens/{token_id}")
@contract(returns=PersonalAccessTokenResponse)
async def get_personal_access_token(
    token_id: str, include: str | None = None, who: Caller = Depends(caller)
) -> dict[str, Any]:
    wanted = _includes(include)
    async with who.uow(read_only=True) as uow:
        token = await tokens.get_token(uow, who.org_id, token_id)
    leaks = "leak_information" in wanted
    return {"data": serialize_token(token, leak_information=leaks), **({"included": []} if wanted else {})}


@router.patch("/api/v2/personal_access_tokens/{token_id}")
@contract(body=PersonalAccessTokenUpdateRequest, returns=PersonalAccessTokenResponse)
async def update_personal_access_token(
    token_id: str, request: Request, who: Caller = Depends(caller)
) -> dict[str, Any]:
    data = (await parse_body(request, PersonalAccessTokenUpdateRequest)).data
    if data.id.lower() != token_id.lower():
        raise InvalidInput(f"data.id {data.id!r} does not match the token id in the path ({token_id})", "/data/id")
    async with who.uow() as uow:
        token = await tokens.update_token(
            uow, who.org_id, token_id, actor_id=who.user_id, changes=dump_set(data.attributes)
        )
        await uow.commit()
    return {"data": serialize_token(token)}


@router.delete("/api/v2/personal_access_tokens/{token_id}", status_code=204)
async def revoke_personal_access_token(token_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await tokens.revoke_token(uow, who.org_id, token_id, actor_id=who.user_id)
        await uow.commit()
    return Response(status_code=204)
