from __future__ import annotations

from typing import Any, Literal

from casem.services.case_api.schemas import Strict


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
