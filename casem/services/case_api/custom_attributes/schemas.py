from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from casem.services.case_api.schemas import Answer, Strict


class SelectOption(Strict):
    value: Any


class TypeData(Strict):
    options: list[SelectOption] | None = None


class CustomAttributeCreateAttributes(Strict):
    display_name: Any
    is_multi: bool
    key: Any
    type: Any
    description: Any = None
    type_data: TypeData | None = None
    map_from: Any = None


class CustomAttributeCreate(Strict):
    type: Literal["custom_attribute"]
    attributes: CustomAttributeCreateAttributes


class CustomAttributeCreateRequest(Strict):
    data: CustomAttributeCreate


class CustomAttributeUpdateAttributes(Strict):
    description: Any = None
    display_name: Any = None
    map_from: Any = None
    type: Any = None
    type_data: TypeData | None = None


class CustomAttributeUpdate(Strict):
    type: Literal["custom_attribute"]
    attributes: CustomAttributeUpdateAttributes


class CustomAttributeUpdateRequest(Strict):
    data: CustomAttributeUpdate


# -- answers (serialize_config in views.py) ------------------------------------------------------------------


class SelectOptionAnswer(Answer):
    value: str


class TypeDataAnswer(Answer):
    options: list[SelectOptionAnswer]


class CustomAttributeAnswerAttributes(Answer):
    case_type_id: str
    key: str
    display_name: str
    description: str | None
    type: str
    is_multi: bool
    map_from: str | None
    type_data: TypeDataAnswer | None = Field(None, description="The allowed values of a SELECT attribute.")


class CustomAttributeResource(Answer):
    id: str
    type: Literal["custom_attribute"]
    attributes: CustomAttributeAnswerAttributes


class CustomAttributeResponse(Answer):
    data: CustomAttributeResource


class CustomAttributesResponse(Answer):
    data: list[CustomAttributeResource]
