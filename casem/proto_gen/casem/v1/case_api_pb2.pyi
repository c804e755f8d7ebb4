import datetime

from . import intake_pb2 as _intake_pb2
from . import types_pb2 as _types_pb2
from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Case(_message.Message):
    __slots__ = ("id", "key", "project_id", "number", "title", "description", "status", "priority", "type_id", "assignee_id", "attributes", "custom_attributes", "created_by_id", "modified_by_id", "created_at", "modified_at", "closed_at", "archived_at", "intake_key", "resolved_reason", "due_date")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.AttributeValues
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.AttributeValues, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    TYPE_ID_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_ID_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_BY_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    ARCHIVED_AT_FIELD_NUMBER: _ClassVar[int]
    INTAKE_KEY_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_REASON_FIELD_NUMBER: _ClassVar[int]
    DUE_DATE_FIELD_NUMBER: _ClassVar[int]
    id: str
    key: str
    project_id: str
    number: int
    title: str
    description: str
    status: _types_pb2.CaseStatus
    priority: _types_pb2.CasePriority
    type_id: str
    assignee_id: str
    attributes: _containers.MessageMap[str, _types_pb2.AttributeValues]
    custom_attributes: _struct_pb2.Struct
    created_by_id: str
    modified_by_id: str
    created_at: _timestamp_pb2.Timestamp
    modified_at: _timestamp_pb2.Timestamp
    closed_at: _timestamp_pb2.Timestamp
    archived_at: _timestamp_pb2.Timestamp
    intake_key: str
    resolved_reason: str
    due_date: str
    def __init__(self, id: _Optional[str] = ..., key: _Optional[str] = ..., project_id: _Optional[str] = ..., number: _Optional[int] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., status: _Optional[_Union[_types_pb2.CaseStatus, str]] = ..., priority: _Optional[_Union[_types_pb2.CasePriority, str]] = ..., type_id: _Optional[str] = ..., assignee_id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, _types_pb2.AttributeValues]] = ..., custom_attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_by_id: _Optional[str] = ..., modified_by_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., modified_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., archived_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., intake_key: _Optional[str] = ..., resolved_reason: _Optional[str] = ..., due_date: _Optional[str] = ...) -> None: ...

class CreateCaseRequest(_message.Message):
    __slots__ = ("project_id", "title", "description", "priority", "status", "type_id", "assignee_id", "attributes", "custom_attributes", "intake_key")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.AttributeValues
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.AttributeValues, _Mapping]] = ...) -> None: ...
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TYPE_ID_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    INTAKE_KEY_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    title: str
    description: str
    priority: _types_pb2.CasePriority
    status: _types_pb2.CaseStatus
    type_id: str
    assignee_id: str
    attributes: _containers.MessageMap[str, _types_pb2.AttributeValues]
    custom_attributes: _struct_pb2.Struct
    intake_key: str
    def __init__(self, project_id: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., priority: _Optional[_Union[_types_pb2.CasePriority, str]] = ..., status: _Optional[_Union[_types_pb2.CaseStatus, str]] = ..., type_id: _Optional[str] = ..., assignee_id: _Optional[str] = ..., attributes: _Optional[_Mapping[str, _types_pb2.AttributeValues]] = ..., custom_attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., intake_key: _Optional[str] = ...) -> None: ...

class CreateCaseResponse(_message.Message):
    __slots__ = ("case", "created")
    CASE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    case: Case
    created: bool
    def __init__(self, case: _Optional[_Union[Case, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class IngestCasesRequest(_message.Message):
    __slots__ = ("items", "indexed_by_caller")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    INDEXED_BY_CALLER_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[IngestItem]
    indexed_by_caller: bool
    def __init__(self, items: _Optional[_Iterable[_Union[IngestItem, _Mapping]]] = ..., indexed_by_caller: _Optional[bool] = ...) -> None: ...

class IngestItem(_message.Message):
    __slots__ = ("org_id", "user_id", "intake", "trace")
    class TraceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    INTAKE_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    user_id: str
    intake: _intake_pb2.CaseIntake
    trace: _containers.ScalarMap[str, str]
    def __init__(self, org_id: _Optional[str] = ..., user_id: _Optional[str] = ..., intake: _Optional[_Union[_intake_pb2.CaseIntake, _Mapping]] = ..., trace: _Optional[_Mapping[str, str]] = ...) -> None: ...

class IngestCasesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[IngestResult]
    def __init__(self, results: _Optional[_Iterable[_Union[IngestResult, _Mapping]]] = ...) -> None: ...

class IngestResult(_message.Message):
    __slots__ = ("case_id", "case_key", "created", "error_code", "error_message", "error_field", "document", "document_version")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    CASE_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    case_key: str
    created: bool
    error_code: int
    error_message: str
    error_field: str
    document: str
    document_version: int
    def __init__(self, case_id: _Optional[str] = ..., case_key: _Optional[str] = ..., created: _Optional[bool] = ..., error_code: _Optional[int] = ..., error_message: _Optional[str] = ..., error_field: _Optional[str] = ..., document: _Optional[str] = ..., document_version: _Optional[int] = ...) -> None: ...

class GetCaseRequest(_message.Message):
    __slots__ = ("id_or_key",)
    ID_OR_KEY_FIELD_NUMBER: _ClassVar[int]
    id_or_key: str
    def __init__(self, id_or_key: _Optional[str] = ...) -> None: ...

class ListCasesRequest(_message.Message):
    __slots__ = ("filter", "page_size", "page_token", "sort_field", "sort_asc")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_FIELD_NUMBER: _ClassVar[int]
    SORT_ASC_FIELD_NUMBER: _ClassVar[int]
    filter: str
    page_size: int
    page_token: str
    sort_field: str
    sort_asc: bool
    def __init__(self, filter: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., sort_field: _Optional[str] = ..., sort_asc: _Optional[bool] = ...) -> None: ...

class ListCasesResponse(_message.Message):
    __slots__ = ("cases", "next_page_token", "total_count")
    CASES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    cases: _containers.RepeatedCompositeFieldContainer[Case]
    next_page_token: str
    total_count: int
    def __init__(self, cases: _Optional[_Iterable[_Union[Case, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_count: _Optional[int] = ...) -> None: ...

class AttributesUpdate(_message.Message):
    __slots__ = ("attributes",)
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.AttributeValues
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.AttributeValues, _Mapping]] = ...) -> None: ...
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    attributes: _containers.MessageMap[str, _types_pb2.AttributeValues]
    def __init__(self, attributes: _Optional[_Mapping[str, _types_pb2.AttributeValues]] = ...) -> None: ...

class UpdateCaseRequest(_message.Message):
    __slots__ = ("id_or_key", "title", "description", "status", "priority", "assignee_id", "unassign", "attributes", "custom_attributes")
    ID_OR_KEY_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_ID_FIELD_NUMBER: _ClassVar[int]
    UNASSIGN_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    id_or_key: str
    title: str
    description: str
    status: _types_pb2.CaseStatus
    priority: _types_pb2.CasePriority
    assignee_id: str
    unassign: _empty_pb2.Empty
    attributes: AttributesUpdate
    custom_attributes: _struct_pb2.Struct
    def __init__(self, id_or_key: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., status: _Optional[_Union[_types_pb2.CaseStatus, str]] = ..., priority: _Optional[_Union[_types_pb2.CasePriority, str]] = ..., assignee_id: _Optional[str] = ..., unassign: _Optional[_Union[_empty_pb2.Empty, _Mapping]] = ..., attributes: _Optional[_Union[AttributesUpdate, _Mapping]] = ..., custom_attributes: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class TimelineCell(_message.Message):
    __slots__ = ("id", "case_id", "type", "author_id", "content", "created_at", "modified_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    case_id: str
    type: str
    author_id: str
    content: _struct_pb2.Struct
    created_at: _timestamp_pb2.Timestamp
    modified_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., case_id: _Optional[str] = ..., type: _Optional[str] = ..., author_id: _Optional[str] = ..., content: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., modified_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AddCommentRequest(_message.Message):
    __slots__ = ("case_id_or_key", "message")
    CASE_ID_OR_KEY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    case_id_or_key: str
    message: str
    def __init__(self, case_id_or_key: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ListTimelineRequest(_message.Message):
    __slots__ = ("case_id_or_key", "page_size", "page_token")
    CASE_ID_OR_KEY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    case_id_or_key: str
    page_size: int
    page_token: str
    def __init__(self, case_id_or_key: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTimelineResponse(_message.Message):
    __slots__ = ("cells", "next_page_token")
    CELLS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    cells: _containers.RepeatedCompositeFieldContainer[TimelineCell]
    next_page_token: str
    def __init__(self, cells: _Optional[_Iterable[_Union[TimelineCell, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Project(_message.Message):
    __slots__ = ("id", "key", "name", "team_id", "enabled_custom_case_types", "created_by_id", "created_at", "modified_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    ENABLED_CUSTOM_CASE_TYPES_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    key: str
    name: str
    team_id: str
    enabled_custom_case_types: _containers.RepeatedScalarFieldContainer[str]
    created_by_id: str
    created_at: _timestamp_pb2.Timestamp
    modified_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., key: _Optional[str] = ..., name: _Optional[str] = ..., team_id: _Optional[str] = ..., enabled_custom_case_types: _Optional[_Iterable[str]] = ..., created_by_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., modified_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateProjectRequest(_message.Message):
    __slots__ = ("key", "name", "enabled_custom_case_types", "team_id")
    KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENABLED_CUSTOM_CASE_TYPES_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_FIELD_NUMBER: _ClassVar[int]
    key: str
    name: str
    enabled_custom_case_types: _containers.RepeatedScalarFieldContainer[str]
    team_id: str
    def __init__(self, key: _Optional[str] = ..., name: _Optional[str] = ..., enabled_custom_case_types: _Optional[_Iterable[str]] = ..., team_id: _Optional[str] = ...) -> None: ...

class GetProjectRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListProjectsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListProjectsResponse(_message.Message):
    __slots__ = ("projects",)
    PROJECTS_FIELD_NUMBER: _ClassVar[int]
    projects: _containers.RepeatedCompositeFieldContainer[Project]
    def __init__(self, projects: _Optional[_Iterable[_Union[Project, _Mapping]]] = ...) -> None: ...
