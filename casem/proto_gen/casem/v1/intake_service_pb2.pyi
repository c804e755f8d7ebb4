from . import intake_pb2 as _intake_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitResponse(_message.Message):
    __slots__ = ("intake_key", "partition", "offset")
    INTAKE_KEY_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    intake_key: str
    partition: int
    offset: int
    def __init__(self, intake_key: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class SubmitBatchRequest(_message.Message):
    __slots__ = ("intakes",)
    INTAKES_FIELD_NUMBER: _ClassVar[int]
    intakes: _containers.RepeatedCompositeFieldContainer[_intake_pb2.CaseIntake]
    def __init__(self, intakes: _Optional[_Iterable[_Union[_intake_pb2.CaseIntake, _Mapping]]] = ...) -> None: ...

class SubmitBatchResponse(_message.Message):
    __slots__ = ("accepted",)
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    accepted: _containers.RepeatedCompositeFieldContainer[SubmitResponse]
    def __init__(self, accepted: _Optional[_Iterable[_Union[SubmitResponse, _Mapping]]] = ...) -> None: ...
