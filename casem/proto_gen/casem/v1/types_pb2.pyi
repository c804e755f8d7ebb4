from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class CaseStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CASE_STATUS_UNSPECIFIED: _ClassVar[CaseStatus]
    CASE_STATUS_OPEN: _ClassVar[CaseStatus]
    CASE_STATUS_IN_PROGRESS: _ClassVar[CaseStatus]
    CASE_STATUS_CLOSED: _ClassVar[CaseStatus]

class CasePriority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CASE_PRIORITY_UNSPECIFIED: _ClassVar[CasePriority]
    CASE_PRIORITY_NOT_DEFINED: _ClassVar[CasePriority]
    CASE_PRIORITY_P1: _ClassVar[CasePriority]
    CASE_PRIORITY_P2: _ClassVar[CasePriority]
    CASE_PRIORITY_P3: _ClassVar[CasePriority]
    CASE_PRIORITY_P4: _ClassVar[CasePriority]
    CASE_PRIORITY_P5: _ClassVar[CasePriority]
CASE_STATUS_UNSPECIFIED: CaseStatus
CASE_STATUS_OPEN: CaseStatus
CASE_STATUS_IN_PROGRESS: CaseStatus
CASE_STATUS_CLOSED: CaseStatus
CASE_PRIORITY_UNSPECIFIED: CasePriority
CASE_PRIORITY_NOT_DEFINED: CasePriority
CASE_PRIORITY_P1: CasePriority
CASE_PRIORITY_P2: CasePriority
CASE_PRIORITY_P3: CasePriority
CASE_PRIORITY_P4: CasePriority
CASE_PRIORITY_P5: CasePriority

class AttributeValues(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, values: _Optional[_Iterable[str]] = ...) -> None: ...
