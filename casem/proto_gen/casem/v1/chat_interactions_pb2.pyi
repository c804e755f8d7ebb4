import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChatPlatform(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHAT_PLATFORM_UNSPECIFIED: _ClassVar[ChatPlatform]
    CHAT_PLATFORM_SLACK: _ClassVar[ChatPlatform]
    CHAT_PLATFORM_TEAMS: _ClassVar[ChatPlatform]

class ChatActionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHAT_ACTION_UNSPECIFIED: _ClassVar[ChatActionKind]
    CHAT_ACTION_ACKNOWLEDGE: _ClassVar[ChatActionKind]
    CHAT_ACTION_ASSIGN_TO_ME: _ClassVar[ChatActionKind]
    CHAT_ACTION_CLOSE: _ClassVar[ChatActionKind]
    CHAT_ACTION_SET_STATUS: _ClassVar[ChatActionKind]
    CHAT_ACTION_SET_PRIORITY: _ClassVar[ChatActionKind]
    CHAT_ACTION_COMMENT: _ClassVar[ChatActionKind]
CHAT_PLATFORM_UNSPECIFIED: ChatPlatform
CHAT_PLATFORM_SLACK: ChatPlatform
CHAT_PLATFORM_TEAMS: ChatPlatform
CHAT_ACTION_UNSPECIFIED: ChatActionKind
CHAT_ACTION_ACKNOWLEDGE: ChatActionKind
CHAT_ACTION_ASSIGN_TO_ME: ChatActionKind
CHAT_ACTION_CLOSE: ChatActionKind
CHAT_ACTION_SET_STATUS: ChatActionKind
CHAT_ACTION_SET_PRIORITY: ChatActionKind
CHAT_ACTION_COMMENT: ChatActionKind

class Conversation(_message.Message):
    __slots__ = ("platform", "workspace_id", "channel_id", "thread_id")
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    THREAD_ID_FIELD_NUMBER: _ClassVar[int]
    platform: ChatPlatform
    workspace_id: str
    channel_id: str
    thread_id: str
    def __init__(self, platform: _Optional[_Union[ChatPlatform, str]] = ..., workspace_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., thread_id: _Optional[str] = ...) -> None: ...

class ChatUser(_message.Message):
    __slots__ = ("user_id", "display_name", "email", "email_verified")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    EMAIL_VERIFIED_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    display_name: str
    email: str
    email_verified: bool
    def __init__(self, user_id: _Optional[str] = ..., display_name: _Optional[str] = ..., email: _Optional[str] = ..., email_verified: _Optional[bool] = ...) -> None: ...

class ChatMessage(_message.Message):
    __slots__ = ("message_id", "author", "sent_at", "text", "permalink")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PERMALINK_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    author: ChatUser
    sent_at: _timestamp_pb2.Timestamp
    text: str
    permalink: str
    def __init__(self, message_id: _Optional[str] = ..., author: _Optional[_Union[ChatUser, _Mapping]] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., text: _Optional[str] = ..., permalink: _Optional[str] = ...) -> None: ...

class ChatCase(_message.Message):
    __slots__ = ("id", "key", "title", "status", "priority", "assignee_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ASSIGNEE_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    key: str
    title: str
    status: str
    priority: str
    assignee_id: str
    def __init__(self, id: _Optional[str] = ..., key: _Optional[str] = ..., title: _Optional[str] = ..., status: _Optional[str] = ..., priority: _Optional[str] = ..., assignee_id: _Optional[str] = ...) -> None: ...

class AppendExcerptRequest(_message.Message):
    __slots__ = ("conversation", "case_id_or_key", "messages", "requested_by")
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_OR_KEY_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    conversation: Conversation
    case_id_or_key: str
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    requested_by: ChatUser
    def __init__(self, conversation: _Optional[_Union[Conversation, _Mapping]] = ..., case_id_or_key: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., requested_by: _Optional[_Union[ChatUser, _Mapping]] = ...) -> None: ...

class AppendExcerptResponse(_message.Message):
    __slots__ = ("appended", "cell_id", "added_message_ids", "already_present_message_ids", "case")
    APPENDED_FIELD_NUMBER: _ClassVar[int]
    CELL_ID_FIELD_NUMBER: _ClassVar[int]
    ADDED_MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    ALREADY_PRESENT_MESSAGE_IDS_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    appended: bool
    cell_id: str
    added_message_ids: _containers.RepeatedScalarFieldContainer[str]
    already_present_message_ids: _containers.RepeatedScalarFieldContainer[str]
    case: ChatCase
    def __init__(self, appended: _Optional[bool] = ..., cell_id: _Optional[str] = ..., added_message_ids: _Optional[_Iterable[str]] = ..., already_present_message_ids: _Optional[_Iterable[str]] = ..., case: _Optional[_Union[ChatCase, _Mapping]] = ...) -> None: ...

class LinkConversationRequest(_message.Message):
    __slots__ = ("conversation", "case_id_or_key", "requested_by")
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_OR_KEY_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    conversation: Conversation
    case_id_or_key: str
    requested_by: ChatUser
    def __init__(self, conversation: _Optional[_Union[Conversation, _Mapping]] = ..., case_id_or_key: _Optional[str] = ..., requested_by: _Optional[_Union[ChatUser, _Mapping]] = ...) -> None: ...

class LinkConversationResponse(_message.Message):
    __slots__ = ("link_id", "created", "case")
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    CASE_FIELD_NUMBER: _ClassVar[int]
    link_id: str
    created: bool
    case: ChatCase
    def __init__(self, link_id: _Optional[str] = ..., created: _Optional[bool] = ..., case: _Optional[_Union[ChatCase, _Mapping]] = ...) -> None: ...

class PerformActionRequest(_message.Message):
    __slots__ = ("conversation", "case_id_or_key", "chat_user", "action", "value")
    CONVERSATION_FIELD_NUMBER: _ClassVar[int]
    CASE_ID_OR_KEY_FIELD_NUMBER: _ClassVar[int]
    CHAT_USER_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    conversation: Conversation
    case_id_or_key: str
    chat_user: ChatUser
    action: ChatActionKind
    value: str
    def __init__(self, conversation: _Optional[_Union[Conversation, _Mapping]] = ..., case_id_or_key: _Optional[str] = ..., chat_user: _Optional[_Union[ChatUser, _Mapping]] = ..., action: _Optional[_Union[ChatActionKind, str]] = ..., value: _Optional[str] = ...) -> None: ...

class PerformActionResponse(_message.Message):
    __slots__ = ("case",)
    CASE_FIELD_NUMBER: _ClassVar[int]
    case: ChatCase
    def __init__(self, case: _Optional[_Union[ChatCase, _Mapping]] = ...) -> None: ...

class CreateUserLinkCodeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateUserLinkCodeResponse(_message.Message):
    __slots__ = ("code", "expires_at")
    CODE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    code: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, code: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RegisterWorkspaceRequest(_message.Message):
    __slots__ = ("platform", "workspace_id", "workspace_name", "default_project")
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_NAME_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PROJECT_FIELD_NUMBER: _ClassVar[int]
    platform: ChatPlatform
    workspace_id: str
    workspace_name: str
    default_project: str
    def __init__(self, platform: _Optional[_Union[ChatPlatform, str]] = ..., workspace_id: _Optional[str] = ..., workspace_name: _Optional[str] = ..., default_project: _Optional[str] = ...) -> None: ...

class Workspace(_message.Message):
    __slots__ = ("platform", "workspace_id", "workspace_name", "default_project_id")
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_ID_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_NAME_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    platform: ChatPlatform
    workspace_id: str
    workspace_name: str
    default_project_id: str
    def __init__(self, platform: _Optional[_Union[ChatPlatform, str]] = ..., workspace_id: _Optional[str] = ..., workspace_name: _Optional[str] = ..., default_project_id: _Optional[str] = ...) -> None: ...

class StartSlackInstallRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StartSlackInstallResponse(_message.Message):
    __slots__ = ("authorize_url",)
    AUTHORIZE_URL_FIELD_NUMBER: _ClassVar[int]
    authorize_url: str
    def __init__(self, authorize_url: _Optional[str] = ...) -> None: ...
