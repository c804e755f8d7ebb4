import datetime

from . import types_pb2 as _types_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IntakeSource(_message.Message):
    __slots__ = ("system", "reference_id", "url", "received_at")
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    system: str
    reference_id: str
    url: str
    received_at: _timestamp_pb2.Timestamp
    def __init__(self, system: _Optional[str] = ..., reference_id: _Optional[str] = ..., url: _Optional[str] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CaseIntake(_message.Message):
    __slots__ = ("schema_version", "intake_key", "project_id", "title", "description", "priority", "type_id", "attributes", "custom_attributes", "source")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.AttributeValues
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.AttributeValues, _Mapping]] = ...) -> None: ...
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    INTAKE_KEY_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    TYPE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    schema_version: int
    intake_key: str
    project_id: str
    title: str
    description: str
    priority: _types_pb2.CasePriority
    type_id: str
    attributes: _containers.MessageMap[str, _types_pb2.AttributeValues]
    custom_attributes: _struct_pb2.Struct
    source: IntakeSource
    def __init__(self, schema_version: _Optional[int] = ..., intake_key: _Optional[str] = ..., project_id: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., priority: _Optional[_Union[_types_pb2.CasePriority, str]] = ..., type_id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, _types_pb2.AttributeValues]] = ..., custom_attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., source: _Optional[_Union[IntakeSource, _Mapping]] = ...) -> None: ...
