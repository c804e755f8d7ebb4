"""casem.v1.ChatInteractionsService: authenticate, resolve the workspace's org and the chat user's casem user,
open one unit of work and call the chat use cases (casem/app/chat). It decides nothing about cases."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import timestamp_pb2

from casem.app.auth import AuthenticationFailed, Principal, authenticate
from casem.app.cases.service import get_case
from casem.app.chat import installations, oauth, service, users
from casem.app.chat.access import ChatIdentity, acting_user, mapped_user, workspace_scope
from casem.app.context import AppContext
from casem.app.internal_auth import (
    ACT_AS_ORG_METADATA,
    ACT_AS_USER_METADATA,
    INTERNAL_TOKEN_METADATA,
    authenticate_internal,
    configured_token,
)
from casem.domain.cases import Case
from casem.domain.chat import (
    ACTIONS,
    PLATFORMS,
    ChatMessage,
    Conversation,
    chat_message,
    validate_action,
)
from casem.domain.errors import DomainError, InvalidInput
from casem.proto_gen.casem.v1 import chat_interactions_pb2 as pb
from casem.proto_gen.casem.v1 import chat_interactions_pb2_grpc as pb_grpc
from casem.services.case_chat_interactions.bridge.settings import BridgeSettings
from casem.services.common.grpc_auth import invocation_metadata, key_pair
from casem.services.common.grpc_errors import rpc

PLATFORM_NAMES = {pb.CHAT_PLATFORM_SLACK: PLATFORMS[0], pb.CHAT_PLATFORM_TEAMS: PLATFORMS[1]}
PLATFORM_VALUES = {name: value for value, name in PLATFORM_NAMES.items()}
ACTION_NAMES = {pb.ChatActionKind.Value(f"CHAT_ACTION_{name}"): name for name in ACTIONS}


def platform_of(value: int, pointer: str) -> str:
    if value not in PLATFORM_NAMES:
        raise InvalidInput("platform must be CHAT_PLATFORM_SLACK or CHAT_PLATFORM_TEAMS", pointer)
    return PLATFORM_NAMES[value]


def conversation_of(msg: pb.Conversation, pointer: str = "/conversation") -> Conversation:
    return Conversation.of(
        platform_of(msg.platform, f"{pointer}/platform"), msg.workspace_id, msg.channel_id, msg.thread_id, pointer
    )


def identity_of(msg: pb.ChatUser) -> ChatIdentity | None:
    if not msg.user_id:
        return None
    return ChatIdentity(msg.user_id, msg.display_name, msg.email, msg.email_verified)


def messages_of(request: pb.AppendExcerptRequest) -> list[ChatMessage]:
    found = []
    for i, m in enumerate(request.messages):
        sent = m.sent_at.ToDatetime(tzinfo=UTC) if m.HasField("sent_at") else datetime.now(UTC)
        found.append(
            chat_message(
                message_id=m.message_id,
                author_id=m.author.user_id,
                author_name=m.author.display_name or m.author.user_id,
                text=m.text,
                sent_at=sent,
                permalink=m.permalink,
                pointer=f"/messages/{i}",
            )
        )
    return found


def case_to_proto(case: Case) -> pb.ChatCase:
    return pb.ChatCase(
        id=case.id,
        key=case.key,
        title=case.title,
        status=case.status,
        priority=case.priority,
        assignee_id=case.assignee_id,
    )


class Caller:
    """An authenticated caller: the trusted bridge (internal token; `org_id` only when it names one) or an org's
    keys (`org_id` and `user_id` of the key)."""

    def __init__(self, org_id: str | None, user_id: str | None, internal: bool) -> None:
        self.org_id, self.user_id, self.internal = org_id, user_id, internal


class ChatInteractionsServicer(pb_grpc.ChatInteractionsServiceServicer):
    def __init__(
        self, context: AppContext, internal_token: str | None = None, settings: BridgeSettings | None = None
    ) -> None:
        self.ctx = context
        self.internal_token = internal_token or configured_token()
        self.settings = settings or BridgeSettings.from_env()

    async def _caller(self, context: grpc.aio.ServicerContext) -> Caller:
        metadata = invocation_metadata(context)
        if token := metadata.get(INTERNAL_TOKEN_METADATA):
            if self.internal_token is None:
                raise AuthenticationFailed("internal credentials are not enabled on this server")
            if not hmac.compare_digest(token.encode(), self.internal_token.encode()):
                raise AuthenticationFailed("invalid internal credentials")
            return Caller(metadata.get(ACT_AS_ORG_METADATA) or None, None, internal=True)
        api_key, app_key = key_pair(metadata)
        async with self.ctx.uow(read_only=True) as uow:
            who = await authenticate(uow, api_key, app_key)
        return Caller(who.org_id, who.user_id, internal=False)

    async def _user_principal(self, context: grpc.aio.ServicerContext) -> Principal:
        """A casem user calling for themself: their keys, or the internal token acting as them."""
        metadata = invocation_metadata(context)
        async with self.ctx.uow(read_only=True) as uow:
            if token := metadata.get(INTERNAL_TOKEN_METADATA):
                return await authenticate_internal(
                    uow,
                    self.internal_token,
                    token,
                    metadata.get(ACT_AS_ORG_METADATA),
                    metadata.get(ACT_AS_USER_METADATA),
                )
            api_key, app_key = key_pair(metadata)
            return await authenticate(uow, api_key, app_key)

    @rpc()
    async def AppendExcerpt(self, request: pb.AppendExcerptRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        caller = await self._caller(context)
        conversation = conversation_of(request.conversation)
        if not request.case_id_or_key:
            raise InvalidInput("case_id_or_key is required", "/case_id_or_key")
        messages = messages_of(request)
        async with self.ctx.uow() as uow:
            installation = await workspace_scope(uow, conversation, caller.org_id)
            author = await mapped_user(uow, installation, identity_of(request.requested_by))
            if author is None and not caller.internal:
                author = caller.user_id
            outcome = await service.append_excerpt(
                uow, installation.org_id, author, request.case_id_or_key, conversation, messages
            )
            await uow.commit()
        return pb.AppendExcerptResponse(
            appended=outcome.cell is not None,
            cell_id=outcome.cell.id if outcome.cell else "",
            added_message_ids=outcome.added,
            already_present_message_ids=outcome.already_there,
            case=case_to_proto(outcome.case),
        )

    @rpc()
    async def LinkConversation(self, request: pb.LinkConversationRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        caller = await self._caller(context)
        conversation = conversation_of(request.conversation)
        if not request.case_id_or_key:
            raise InvalidInput("case_id_or_key is required", "/case_id_or_key")
        async with self.ctx.uow() as uow:
            installation = await workspace_scope(uow, conversation, caller.org_id)
            actor = await mapped_user(uow, installation, identity_of(request.requested_by))
            if actor is None and not caller.internal:
                actor = caller.user_id
            link, created = await service.link_case(
                uow, installation.org_id, actor, request.case_id_or_key, conversation
            )
            case = await get_case(uow, installation.org_id, link.case_id)
            await uow.commit()
        return pb.LinkConversationResponse(link_id=link.id, created=created, case=case_to_proto(case))

    @rpc()
    async def PerformAction(self, request: pb.PerformActionRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        caller = await self._caller(context)
        conversation = conversation_of(request.conversation)
        if not request.case_id_or_key:
            raise InvalidInput("case_id_or_key is required", "/case_id_or_key")
        if request.action not in ACTION_NAMES:
            raise InvalidInput("action must be one of the CHAT_ACTION_ values", "/action")
        action = validate_action(ACTION_NAMES[request.action], request.value, "/value")
        who = identity_of(request.chat_user)
        async with self.ctx.uow() as uow:
            installation = await workspace_scope(uow, conversation, caller.org_id)
            if who is None and not caller.internal and caller.user_id:
                actor = caller.user_id  # an org's own keys act as the key's user
            else:
                actor = await acting_user(uow, installation, who)
            case = await service.perform_action(
                uow,
                installation.org_id,
                actor,
                request.case_id_or_key,
                action,
                conversation,
                who.user_id if who else "",
            )
            await uow.commit()
        return pb.PerformActionResponse(case=case_to_proto(case))

    @rpc()
    async def CreateUserLinkCode(self, request: pb.CreateUserLinkCodeRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        who = await self._user_principal(context)
        async with self.ctx.uow() as uow:
            code, expires = await users.create_link_code(uow, who.org_id, who.user_id)
            await uow.commit()
        stamp = timestamp_pb2.Timestamp()
        stamp.FromDatetime(expires)
        return pb.CreateUserLinkCodeResponse(code=code, expires_at=stamp)

    @rpc(conflict=grpc.StatusCode.ALREADY_EXISTS)
    async def RegisterWorkspace(self, request: pb.RegisterWorkspaceRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        caller = await self._caller(context)
        if caller.internal:
            raise AuthenticationFailed("a workspace is registered with the org's own keys, not the internal token")
        assert caller.org_id is not None
        platform = platform_of(request.platform, "/platform")
        async with self.ctx.uow() as uow:
            found = await installations.install(
                uow,
                caller.org_id,
                caller.user_id,
                platform=platform,
                workspace_id=request.workspace_id.strip(),
                workspace_name=request.workspace_name or None,
                default_project_id=request.default_project or None,
            )
            await uow.commit()
        return pb.Workspace(
            platform=PLATFORM_VALUES[found.platform],
            workspace_id=found.workspace_id,
            workspace_name=found.workspace_name or "",
            default_project_id=found.default_project_id or "",
        )

    @rpc()
    async def StartSlackInstall(self, request: pb.StartSlackInstallRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        caller = await self._caller(context)
        if caller.internal or caller.org_id is None or caller.user_id is None:
            raise AuthenticationFailed("a Slack install is started with the org's own keys, not the internal token")
        secret = self.settings.state_secret or self.settings.slack_signing_secret
        if not secret or not self.settings.slack_client_id:
            raise DomainError("Slack installs are not configured (CASEM_SLACK_CLIENT_ID, CASEM_SLACK_SIGNING_SECRET)")
        state = oauth.issue_state(secret, caller.org_id, caller.user_id)
        url = oauth.authorize_url(
            self.settings.slack_client_id, self.settings.slack_scopes, state, self.settings.slack_redirect_uri
        )
        return pb.StartSlackInstallResponse(authorize_url=url)
