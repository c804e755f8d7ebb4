"""Request documents of the Key Management API, in datadog-api-client's shapes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from casem.services.case_api.schemas import Answer, Strict, ToOne


class APIKeyAttributes(Strict):
    name: Any = None
    category: Any = None
    remote_config_read_enabled: Any = None


class APIKeyCreateData(Strict):
    type: Literal["api_keys"]
    attributes: APIKeyAttributes


class APIKeyCreateRequest(Strict):
    data: APIKeyCreateData


class APIKeyUpdateData(Strict):
    type: Literal["api_keys"]
    id: str
    attributes: APIKeyAttributes


class APIKeyUpdateRequest(Strict):
    data: APIKeyUpdateData


class ApplicationKeyAttributes(Strict):
    name: Any = None
    scopes: Any = None


class ApplicationKeyCreateData(Strict):
    type: Literal["application_keys"]
    attributes: ApplicationKeyAttributes


class ApplicationKeyCreateRequest(Strict):
    data: ApplicationKeyCreateData


class ApplicationKeyUpdateData(Strict):
    type: Literal["application_keys"]
    id: str
    attributes: ApplicationKeyAttributes


class ApplicationKeyUpdateRequest(Strict):
    data: ApplicationKeyUpdateData


# -- answers (the serializers in views.py) ------------------------------------------------------------------


class APIKeyAnswerAttributes(Answer):
    created_at: str
    last4: str = Field(min_length=4, max_length=4)
    modified_at: str
    name: str
    remote_config_read_enabled: bool
    category: str | None = None
    key: str | None = Field(None, description="The secret, in the answer to a create only.")


class APIKeyAnswerRelationships(Answer):
    created_by: ToOne | None = None
    modified_by: ToOne


class APIKeyResource(Answer):
    id: str
    type: Literal["api_keys"]
    attributes: APIKeyAnswerAttributes
    relationships: APIKeyAnswerRelationships


class APIKeyResponse(Answer):
    data: APIKeyResource
    included: list[dict[str, Any]] | None = None


class KeysPageMeta(Answer):
    total_filtered_count: int


class APIKeysMeta(Answer):
    max_allowed: int
    page: KeysPageMeta


class APIKeysResponse(Answer):
    data: list[APIKeyResource]
    included: list[dict[str, Any]]
    meta: APIKeysMeta


class ApplicationKeyAnswerAttributes(Answer):
    created_at: str
    last4: str = Field(min_length=4, max_length=4)
    name: str
    scopes: list[str] | None
    key: str | None = Field(None, description="The secret, in the answer to a create only.")


class ApplicationKeyAnswerRelationships(Answer):
    owned_by: ToOne


class ApplicationKeyResource(Answer):
    id: str
    type: Literal["application_keys"]
    attributes: ApplicationKeyAnswerAttributes
    relationships: ApplicationKeyAnswerRelationships


class ApplicationKeyResponse(Answer):
    data: ApplicationKeyResource
    included: list[dict[str, Any]] | None = None


class ApplicationKeysMeta(Answer):
    max_allowed_per_user: int
    page: KeysPageMeta


class ApplicationKeysResponse(Answer):
    data: list[ApplicationKeyResource]
    included: list[dict[str, Any]]
    meta: ApplicationKeysMeta


class ValidationResponseV1(Answer):
    """v1 `GET /api/v1/validate` (AuthenticationApi.validate)."""

    valid: bool


class ValidateV2Attributes(Answer):
    api_key_id: str
    api_key_scopes: list[str]
    valid: bool


class ValidateV2Resource(Answer):
    id: str = Field(description="The org the API key belongs to.")
    type: Literal["validate_v2"]
    attributes: ValidateV2Attributes


class ValidateV2Response(Answer):
    data: ValidateV2Resource


class ValidateKeysResponse(Answer):
    status: Literal["ok"]
