"""Request documents of the Key Management API, in datadog-api-client's shapes."""

from __future__ import annotations

from typing import Any, Literal

from casem.services.case_api.schemas import Strict


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
