"""Fuzzing every casem.v1.CaseAPI method with messages generated from the proto descriptors (Hypothesis), on
SQLite and PostgreSQL: whatever the fields hold, the answer is a result or a status the caller can act on,
never INTERNAL or UNKNOWN.

Strings come with NUL, non-ASCII and digit-like characters ("²"), numbers span their type's whole range,
enums include values no .proto names, and id fields are drawn half the time from ids that exist, so
the fuzz reaches past "not found" into the use cases. Derandomized and bounded (CASEM_FUZZ_EXAMPLES).
"""

from __future__ import annotations

import os
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casem.proto_gen.casem.v1 import case_api_pb2 as pb
from casem.proto_gen.casem.v1 import case_api_pb2_grpc
from tests.support.grpc_case_api import Org, unique_key

FUZZ_EXAMPLES = int(os.environ.get("CASEM_FUZZ_EXAMPLES", "8")) * 3
SERVER_FAULTS = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
MAX_DEPTH = 3

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
TRICKY_TEXT = st.sampled_from(["", "\x00", "a\x00b", "\u00b2", "\u0663", "9" * 30, "-1", "((((", "é" * 300, "P1"])
JSON_SCALARS = st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)


def _text(known: list[str], name: str) -> st.SearchStrategy[str]:
    base = st.text(max_size=60) | TRICKY_TEXT
    if known and (name.endswith("id") or name.endswith("key") or "id_or" in name):
        return st.sampled_from(known) | base
    return base


def _scalar(field: FieldDescriptor, known: list[str]) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return _text(known, field.name)
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=40)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        return st.integers(low, high) | st.sampled_from([0, 1, -1 if low < 0 else 2, low, high])
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(width=64 if kind == FieldDescriptor.TYPE_DOUBLE else 32)
    if kind == FieldDescriptor.TYPE_ENUM:
        named = [value.number for value in field.enum_type.values]
        return st.sampled_from(named) | st.integers(-5, 100)  # open enums: unknown numbers travel too
    raise AssertionError(f"no strategy for field type {kind} of {field.full_name}")


def _well_known(descriptor: Descriptor) -> st.SearchStrategy[Message] | None:
    from google.protobuf import struct_pb2, timestamp_pb2

    if descriptor.full_name == "google.protobuf.Struct":
        values = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3), max_leaves=6)

        def build(data: dict[str, Any]) -> Message:
            message = struct_pb2.Struct()
            message.update(data)
            return message

        return st.dictionaries(st.text(max_size=20), values, max_size=4).map(build)
    if descriptor.full_name == "google.protobuf.Timestamp":
        return st.builds(timestamp_pb2.Timestamp, seconds=st.integers(-62135596800, 253402300799))
    return None


def message_strategy(descriptor: Descriptor, known: list[str], depth: int = 0) -> st.SearchStrategy[Message]:
    special = _well_known(descriptor)
    if special is not None:
        return special
    cls = _message_class(descriptor)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= MAX_DEPTH:
                continue
            if field.message_type.GetOptions().map_entry:
                key = _scalar(field.message_type.fields_by_name["key"], known)
                value_field = field.message_type.fields_by_name["value"]
                value = (
                    message_strategy(value_field.message_type, known, depth + 1)
                    if value_field.type == FieldDescriptor.TYPE_MESSAGE
                    else _scalar(value_field, known)
                )
                fields[field.name] = st.dictionaries(key, value, max_size=3)
                continue
            inner = message_strategy(field.message_type, known, depth + 1)
        else:
            inner = _scalar(field, known)
        repeated = field.is_repeated
        fields[field.name] = st.lists(inner, max_size=3) if repeated else inner

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        message = cls()
        for name, strategy in fields.items():
            if not draw(st.booleans()):
                continue  # left unset: presence matters (optional fields, oneofs)
            value = draw(strategy)
            field = descriptor.fields_by_name[name]
            if isinstance(value, dict):
                target = getattr(message, name)
                for k, v in value.items():
                    if isinstance(v, Message):
                        target[k].CopyFrom(v)
                    else:
                        target[k] = v
            elif isinstance(value, list):
                target = getattr(message, name)
                for item in value:
                    target.add().CopyFrom(item) if isinstance(item, Message) else target.append(item)
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                getattr(message, name).CopyFrom(value)
            else:
                setattr(message, name, value)
        return message

    return build()


def _message_class(descriptor: Descriptor) -> type[Message]:
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(descriptor)


METHODS = [method for method in pb.DESCRIPTOR.services_by_name["CaseAPI"].methods]


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_no_message_makes_a_server_fault(stub: case_api_pb2_grpc.CaseAPIStub, org: Org, method: Any) -> None:
    project = stub.CreateProject(pb.CreateProjectRequest(key=unique_key(), name="Fuzz"), metadata=org.metadata)
    case = stub.CreateCase(pb.CreateCaseRequest(project_id=project.id, title="fuzzed"), metadata=org.metadata).case
    known = [project.id, project.key, case.id, case.key, org.user_id]
    call = getattr(stub, method.name)
    faults: list[str] = []

    @given(request=message_strategy(method.input_type, known))
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def fuzz(request: Message) -> None:
        try:
            call(request, metadata=org.metadata, timeout=30)
        except grpc.RpcError as err:
            if err.code() in SERVER_FAULTS:
                faults.append(f"{err.code().name} {err.details()!r} for {request!r}"[:600])
            assert err.code() not in SERVER_FAULTS
            assert len(err.details() or "") <= 1200  # messages never echo unbounded input

    fuzz()
    assert not faults, "\n".join(dict.fromkeys(faults))
