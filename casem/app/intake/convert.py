"""casem.v1 values to the domain's plain values: enums, Struct and attribute maps.

Shared by every gRPC transport and by intake validation, so an intake is read exactly as CaseAPI reads it.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

from casem.domain.cases import Priority, Status
from casem.domain.errors import InvalidInput
from casem.proto_gen.casem.v1 import types_pb2

STATUS_PREFIX = "CASE_STATUS_"
PRIORITY_PREFIX = "CASE_PRIORITY_"


def status_from_proto(value: int, pointer: str = "/status") -> str | None:
    """The domain status, or None for UNSPECIFIED. Unknown numbers (proto3 enums are open) are invalid input."""
    if value == types_pb2.CASE_STATUS_UNSPECIFIED:
        return None
    try:
        return Status(types_pb2.CaseStatus.Name(value).removeprefix(STATUS_PREFIX)).value
    except ValueError:
        raise InvalidInput(f"unknown case status {value}", pointer) from None


def priority_from_proto(value: int, pointer: str = "/priority") -> str | None:
    if value == types_pb2.CASE_PRIORITY_UNSPECIFIED:
        return None
    try:
        return Priority(types_pb2.CasePriority.Name(value).removeprefix(PRIORITY_PREFIX)).value
    except ValueError:
        raise InvalidInput(f"unknown case priority {value}", pointer) from None


def _integral(value: Any) -> Any:
    """Struct numbers are doubles; give whole numbers back as ints so they read as they would in JSON."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    if not struct.fields:  # the common case, and MessageToDict is not cheap
        return {}
    return _integral(json_format.MessageToDict(struct))


def attributes_from_proto(attributes: Any) -> dict[str, list[str]]:
    return {key: list(entry.values) for key, entry in attributes.items()}
