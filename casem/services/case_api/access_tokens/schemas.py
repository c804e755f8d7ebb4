"""Request and answer documents of Datadog's personal access tokens API, in datadog-api-client's shapes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from casem.services.case_api.schemas import Answer, Strict, ToOne


class PersonalAccessTokenAttributes(Strict):
    name: Any = None
    expires_at: Any = None
    scopes: Any = None


class PersonalAccessTokenCreateData(Strict):
    type: Literal["personal_access_tokens"]
    attributes: PersonalAccessTokenAttributes


class PersonalAccessTokenCreateRequest(Strict):
    data: PersonalAccessTokenCreateData


class PersonalAccessTokenUpdateAttributes(Strict):
    name: Any = None
    scopes: Any = None


class PersonalAccessTokenUpdateData(Strict):
    type: Literal["personal_access_tokens"]
    id: str
    attributes: PersonalAccessTokenUpdateAttributes


class PersonalAccessTokenUpdateRequest(Strict):
    data: PersonalAccessTokenUpdateData


# -- answers (the serializers in views.py) ------------------------------------------------------------------


class TokenAnswerAttributes(Answer):
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    modified_at: str | None
    name: str
    public_portion: str
    scopes: list[str]


class CreatedTokenAnswerAttributes(Answer):
    created_at: str
    expires_at: str | None
    key: str = Field(description="The whole token: in the answer to its creation only.")
    name: str
    public_portion: str
    scopes: list[str]


class TokenAnswerRelationships(Answer):
    owned_by: ToOne
    leak_information: ToOne | None = Field(None, description="With include=leak_information: casem detects no leaks.")


class PersonalAccessTokenResource(Answer):
    id: str
    type: Literal["personal_access_tokens"]
    attributes: TokenAnswerAttributes
    relationships: TokenAnswerRelationships


class CreatedTokenRelationships(Answer):
    owned_by: ToOne


class CreatedPersonalAccessTokenResource(Answer):
    id: str
    type: Literal["personal_access_tokens"]
    attributes: CreatedTokenAnswerAttributes
    relationships: CreatedTokenRelationships


class PersonalAccessTokenCreateResponse(Answer):
    data: CreatedPersonalAccessTokenResource


class PersonalAccessTokenResponse(Answer):
    data: PersonalAccessTokenResource
    included: list[dict[str, Any]] | None = None


class TokensPageMeta(Answer):
    total_filtered_count: int


class TokensMeta(Answer):
    page: TokensPageMeta


class ListPersonalAccessTokensResponse(Answer):
    data: list[PersonalAccessTokenResource]
    included: list[dict[str, Any]] | None = None
    meta: TokensMeta
