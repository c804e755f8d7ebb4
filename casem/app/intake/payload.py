"""The canonical payload on the `case-intake` topic: versioned JSON, keyed by intake key.

    {"schema_version": 1, "org_id": ..., "user_id": ..., "accepted_at": ISO-8601,
     "intake": <CaseIntake as proto3 JSON>}

JSON rather than binary protobuf so any consumer (and an operator with kcat) can read it; the intake
itself keeps the proto3 JSON mapping so it round-trips into CaseIntake losslessly. `org_id`/`user_id`
come from the keys case-intake authenticated: the indexer acts as that user of that org.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf import json_format

from casem.adapters import fastjson
from casem.proto_gen.casem.v1 import intake_pb2, types_pb2

PAYLOAD_SCHEMA_VERSION = 1
CONTENT_TYPE_HEADER = ("content-type", b"application/vnd.casem.intake.v1+json")


# Intake fields whose proto3 JSON form is their plain JSON value, by the Python type that value has.
_PLAIN_FIELDS = {
    "schema_version": int,
    "intake_key": str,
    "project_id": str,
    "title": str,
    "description": str,
    "type_id": str,
}
_PRIORITIES = {name: number for name, number in types_pb2.CasePriority.items()}
_PRIORITY_NAMES = {number: name for name, number in _PRIORITIES.items()}
# The scalar fields in field-number order, the order the proto3 JSON mapping writes them in.
_SCALARS_IN_ORDER = ("schema_version", "intake_key", "project_id", "title", "description", "priority", "type_id")


def _intake_to_json(intake: intake_pb2.CaseIntake) -> dict[str, object]:
    """The intake's proto3 JSON form. Most intakes carry only scalar fields, whose form is written directly:
    the set ones (proto3 leaves out a default value) and the priority by name. Anything else (attributes, custom
    attributes, source, a priority number without a name) goes through the full mapping, which this agrees with
    key for key and is several times faster than."""
    if intake.attributes or intake.HasField("custom_attributes") or intake.HasField("source"):
        return json_format.MessageToDict(intake, preserving_proto_field_name=True)
    values: dict[str, object] = {}
    for name in _SCALARS_IN_ORDER:
        value = getattr(intake, name)
        if not value:
            continue
        if name == "priority":
            if value not in _PRIORITY_NAMES:
                return json_format.MessageToDict(intake, preserving_proto_field_name=True)
            value = _PRIORITY_NAMES[value]
        values[name] = value
    return values


def _intake_from_json(values: dict) -> intake_pb2.CaseIntake:  # type: ignore[type-arg]
    """The intake of a payload. Most carry only plain fields and a priority name, which are set directly;
    anything else (attributes, custom attributes, source, unknown names, odd values) goes through the full
    proto3 JSON mapping, which is what this shortcut agrees with (it is also several times slower)."""
    fields: dict[str, object] = {}
    for name, value in values.items():
        if type(value) is _PLAIN_FIELDS.get(name) and not (name == "schema_version" and value < 0):
            fields[name] = value
        elif name == "priority" and type(value) is str and value in _PRIORITIES:
            fields[name] = _PRIORITIES[value]
        else:
            return json_format.ParseDict(values, intake_pb2.CaseIntake())
    return intake_pb2.CaseIntake(**fields)  # type: ignore[arg-type]


class PayloadError(ValueError):
    """Not a payload this version understands: it can never be processed (dead-letter it)."""


@dataclass(frozen=True)
class IntakePayload:
    org_id: str
    user_id: str
    intake: intake_pb2.CaseIntake
    accepted_at: str

    @property
    def key(self) -> bytes:
        # Keyed by org and intake key: one intake's retries stay in order on one partition.
        return f"{self.org_id}/{self.intake.intake_key}".encode()

    def to_bytes(self) -> bytes:
        body = {
            "schema_version": PAYLOAD_SCHEMA_VERSION,
            "org_id": self.org_id,
            "user_id": self.user_id,
            "accepted_at": self.accepted_at,
            "intake": _intake_to_json(self.intake),
        }
        return fastjson.compact_bytes(body)

    @classmethod
    def new(cls, org_id: str, user_id: str, intake: intake_pb2.CaseIntake) -> IntakePayload:
        return cls(org_id, user_id, intake, datetime.now(UTC).isoformat())

    @classmethod
    def from_bytes(cls, raw: bytes) -> IntakePayload:
        try:
            body = fastjson.loads(raw)
            if body.get("schema_version") != PAYLOAD_SCHEMA_VERSION:
                raise PayloadError(f"unknown payload schema_version {body.get('schema_version')!r}")
            intake = _intake_from_json(body["intake"])
            return cls(str(body["org_id"]), str(body["user_id"]), intake, str(body.get("accepted_at", "")))
        except PayloadError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, json_format.ParseError) as exc:
            raise PayloadError(f"not a case-intake payload: {exc}") from exc
