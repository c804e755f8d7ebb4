"""Case types and their custom attribute configurations, and validation of custom attribute values."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from casem.domain.cases import STANDARD_TYPE_ID, STANDARD_TYPE_NAME
from casem.domain.errors import InvalidInput
from casem.domain.events import DomainEvent, EventRecorder, utcnow

ATTRIBUTE_KEY = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


class CustomAttributeType(StrEnum):
    URL = "URL"
    TEXT = "TEXT"
    NUMBER = "NUMBER"
    SELECT = "SELECT"


@dataclass(eq=False)
class CaseType(EventRecorder):
    id: str
    org_id: str | None  # None for the built-in STANDARD type, shared by every org
    name: str
    description: str = ""
    emoji: str = ""
    created_at: datetime = field(default_factory=utcnow)
    deleted_at: datetime | None = None

    @property
    def builtin(self) -> bool:
        return self.id == STANDARD_TYPE_ID

    def event(self, kind: str, actor_id: str | None, org_id: str, data: dict[str, Any] | None = None) -> None:
        self.record(
            DomainEvent(
                type=f"case_type.{kind}",
                org_id=org_id,
                actor_id=actor_id,
                subject_id=self.id,
                subject_type="case_type",
                data={"name": self.name, **(data or {})},
            )
        )


def standard_type() -> CaseType:
    return CaseType(id=STANDARD_TYPE_ID, org_id=None, name=STANDARD_TYPE_NAME, description="Standard case type")


@dataclass(eq=False)
class CustomAttributeConfig(EventRecorder):
    id: str
    org_id: str
    case_type_id: str
    key: str
    display_name: str
    type: str
    is_multi: bool = False
    description: str = ""
    options: list[str] = field(default_factory=list)  # allowed values of a SELECT attribute
    created_at: datetime = field(default_factory=utcnow)
    deleted_at: datetime | None = None
    map_from: str | None = None  # an external field that fills this attribute

    def event(self, kind: str, actor_id: str | None, data: dict[str, Any] | None = None) -> None:
        self.record(
            DomainEvent(
                type=f"custom_attribute.{kind}",
                org_id=self.org_id,
                actor_id=actor_id,
                subject_id=self.id,
                subject_type="custom_attribute_config",
                data={"key": self.key, "case_type_id": self.case_type_id, **(data or {})},
            )
        )

    def coerce(self, value: Any, pointer: str) -> dict[str, Any]:
        """Validate a value for this attribute; return it as Datadog's CustomAttributeValue shape."""
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not self.is_multi:
            raise InvalidInput(f"custom attribute {self.key!r} takes a single value, not a list", pointer)
        checked = [self._check_one(v, pointer) for v in values]
        return {
            "type": self.type,
            "is_multi": self.is_multi,
            "value": checked if self.is_multi else (checked[0] if checked else None),
        }

    def _check_one(self, value: Any, pointer: str) -> Any:
        kind = CustomAttributeType(self.type)
        if kind is CustomAttributeType.NUMBER:
            # NaN and infinities are not JSON numbers (Python's json reads them, but they cannot be stored or sent).
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or (isinstance(value, float) and not math.isfinite(value))
            ):
                raise InvalidInput(f"custom attribute {self.key!r} is a NUMBER: got {value!r}", pointer)
            return value
        if not isinstance(value, str):
            raise InvalidInput(f"custom attribute {self.key!r} is {kind.value}: expected a string", pointer)
        if len(value) > 4096:
            raise InvalidInput(f"custom attribute {self.key!r} value is longer than 4096 characters", pointer)
        if kind is CustomAttributeType.URL and not URL.match(value):
            raise InvalidInput(f"custom attribute {self.key!r} is a URL: {value!r} is not an http(s) URL", pointer)
        if kind is CustomAttributeType.SELECT and self.options and value not in self.options:
            raise InvalidInput(f"custom attribute {self.key!r} must be one of: {', '.join(self.options)}", pointer)
        return value


def validate_attribute_key(key: Any, pointer: str = "/data/attributes/key") -> str:
    if not isinstance(key, str) or not ATTRIBUTE_KEY.match(key):
        raise InvalidInput(
            "key must start with a lower-case letter and hold only lower-case letters, digits and _ "
            "(at most 63 characters)",
            pointer,
        )
    return key
