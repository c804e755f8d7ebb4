"""casem.v1.ChatInteractionsService over a live gRPC server: excerpts, links, actions, the org scoping, the chat
user mapping and the errors a bridge sees."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from casem.adapters.storage.tables import domain_events, timeline_cells
from casem.app.cases.service import NewCase, create_case
from casem.app.chat import users
from casem.proto_gen.casem.v1 import chat_interactions_pb2 as pb
from tests.support.chat_grpc import STATE_SECRET, ChatOrg, LiveChatGrpc, internal, make_chat_org


def new_case(server: LiveChatGrpc, org: ChatOrg, title: str = "Payments failing") -> str:
    async def _create() -> str:
        async with server.context.uow() as uow:
            case = await create_case(uow, org.org_id, org.creds.user_id, NewCase(org.project_id, title))
            await uow.commit()
        return case.key

    return server.call(_create())


def conversation(org: ChatOrg, channel: str = "C0INC", thread: str = "") -> pb.Conversation:
    return pb.Conversation(
        platform=pb.CHAT_PLATFORM_SLACK, workspace_id=org.workspace_id, channel_id=channel, thread_id=thread
    )


def message(ts: str, text: str, user: str = "U100", name: str = "Ada") -> pb.ChatMessage:
    sent = timestamp_pb2.Timestamp()
    sent.FromDatetime(datetime.fromtimestamp(float(ts), UTC))
    return pb.ChatMessage(
        message_id=ts,
        author=pb.ChatUser(user_id=user, display_name=name),
        sent_at=sent,
        text=text,
        permalink=f"https://acme.slack.com/archives/C0INC/p{ts.replace('.', '')}",
    )


def cells_of(server: LiveChatGrpc, case_key: str) -> list[sa.Row]:
    async def _rows() -> list[sa.Row]:
        async with server.context.uow(read_only=True) as uow:
            from casem.adapters.storage.tables import cases

            return list(
                (
                    await uow.execute(
                        sa.select(timeline_cells)
                        .join(cases, cases.c.id == timeline_cells.c.case_id)
                        .where(cases.c.key == case_key)
                        .order_by(timeline_cells.c.created_at)
                    )
                ).all()
            )

    return server.call(_rows())


def events_of(server: LiveChatGrpc, org: ChatOrg, type_: str) -> list[sa.Row]:
    async def _rows() -> list[sa.Row]:
        async with server.context.uow(read_only=True) as uow:
            return list(
                (
                    await uow.execute(
                        sa.select(domain_events).where(
                            domain_events.c.org_id == org.org_id, domain_events.c.type == f"com.casem.{type_}.v1"
                        )
                    )
                ).all()
            )

    return server.call(_rows())


def code_of(err: grpc.RpcError) -> grpc.StatusCode:
    return err.code()  # type: ignore[no-any-return]


@pytest.fixture
def org(chat_server: LiveChatGrpc) -> ChatOrg:
    return chat_server.call(make_chat_org(chat_server.context))


@pytest.fixture
def other_org(chat_server: LiveChatGrpc) -> ChatOrg:
    return chat_server.call(make_chat_org(chat_server.context))


def test_an_excerpt_becomes_one_timeline_cell_with_its_event_and_a_retry_adds_nothing(
    chat_server: LiveChatGrpc, chat_stub, org: ChatOrg
) -> None:
    key = new_case(chat_server, org)
    request = pb.AppendExcerptRequest(
        conversation=conversation(org, thread="1700000000.000100"),
        case_id_or_key=key,
        messages=[message("1700000001.000200", "db is at 100% cpu"), message("1700000000.000100", "SEV-2: checkout")],
        requested_by=pb.ChatUser(user_id="U100", display_name="Ada"),
    )
    first = chat_stub.AppendExcerpt(request, metadata=internal())
    assert first.appended and first.cell_id
    assert list(first.added_message_ids) == ["1700000000.000100", "1700000001.000200"]  # in the order said
    assert first.case.key == key and first.case.status == "OPEN"

    again = chat_stub.AppendExcerpt(request, metadata=internal())
    assert not again.appended and again.cell_id == ""
    assert sorted(again.already_present_message_ids) == ["1700000000.000100", "1700000001.000200"]

    excerpts = [c for c in cells_of(chat_server, key) if c.type == "CHAT_EXCERPT"]
    assert len(excerpts) == 1 and excerpts[0].id == first.cell_id
    content = excerpts[0].content
    assert content["conversation"]["thread_id"] == "1700000000.000100"
    assert [m["text"] for m in content["messages"]] == ["SEV-2: checkout", "db is at 100% cpu"]
    assert "**Ada**" in content["message"] and "> SEV-2: checkout" in content["message"]
    assert "https://acme.slack.com/archives/C0INC/p1700000000000100" in content["message"]
    assert excerpts[0].author_id is None  # U100 maps to no casem user
    [event] = events_of(chat_server, org, "case.chat_excerpt_added")
    assert event.envelope["data"]["cell_id"] == first.cell_id
    assert event.envelope["data"]["case_status"] == "OPEN"

    # A later excerpt with one known and one new message appends only the new one.
    more = pb.AppendExcerptRequest(
        conversation=conversation(org, thread="1700000000.000100"),
        case_id_or_key=key,
        messages=[message("1700000001.000200", "db is at 100% cpu"), message("1700000002.000300", "rolled back")],
    )
    third = chat_stub.AppendExcerpt(more, metadata=internal())
    assert third.appended and list(third.added_message_ids) == ["1700000002.000300"]
    assert list(third.already_present_message_ids) == ["1700000001.000200"]


def test_another_orgs_case_or_workspace_is_not_found(
    chat_server: LiveChatGrpc, chat_stub, org: ChatOrg, other_org: ChatOrg
) -> None:
    theirs = new_case(chat_server, other_org, "their case")
    # Through our workspace, their case does not exist.
    with pytest.raises(grpc.RpcError) as err:
        chat_stub.AppendExcerpt(
            pb.AppendExcerptRequest(
                conversation=conversation(org), case_id_or_key=theirs, messages=[message("1.0", "hi")]
            ),
            metadata=internal(),
        )
    assert code_of(err.value) == grpc.StatusCode.NOT_FOUND
    # Their workspace, with our keys (or our org named by the bridge): not found either.
    for md in (org.keys, internal(org)):
        with pytest.raises(grpc.RpcError) as err:
            chat_stub.LinkConversation(
                pb.LinkConversationRequest(conversation=conversation(other_org), case_id_or_key=theirs), metadata=md
            )
        assert code_of(err.value) == grpc.StatusCode.NOT_FOUND
        detail = rpc_status.from_call(err.value)
        info = error_details_pb2.ResourceInfo()
        detail.details[0].Unpack(info)
        assert info.resource_type == "chat workspace"
    # A workspace nobody installed.
    unknown = pb.Conversation(platform=pb.CHAT_PLATFORM_SLACK, workspace_id="TNOBODY", channel_id="C1")
    with pytest.raises(grpc.RpcError) as err:
        chat_stub.AppendExcerpt(
            pb.AppendExcerptRequest(conversation=unknown, case_id_or_key=theirs, messages=[message("1.0", "x")]),
            metadata=internal(),
        )
    assert code_of(err.value) == grpc.StatusCode.NOT_FOUND
    assert not [c for c in cells_of(chat_server, theirs) if c.type == "CHAT_EXCERPT"]


def test_callers_must_authenticate(chat_stub, org: ChatOrg) -> None:
    request = pb.LinkConversationRequest(conversation=conversation(org), case_id_or_key="X-1")
    with pytest.raises(grpc.RpcError) as err:
        chat_stub.LinkConversation(request)
    assert code_of(err.value) == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as err:
        chat_stub.LinkConversation(request, metadata=(("x-casem-internal-token", "wrong"),))
    assert code_of(err.value) == grpc.StatusCode.PERMISSION_DENIED


def test_bad_input_names_the_field(chat_stub, org: ChatOrg, chat_server: LiveChatGrpc) -> None:
    key = new_case(chat_server, org)
    cases = [
        (pb.AppendExcerptRequest(case_id_or_key=key, messages=[message("1.0", "x")]), "/conversation/platform"),
        (pb.AppendExcerptRequest(conversation=conversation(org), case_id_or_key=key), "/messages"),
        (
            pb.AppendExcerptRequest(
                conversation=conversation(org), case_id_or_key=key, messages=[pb.ChatMessage(text="no id")]
            ),
            "/messages/0/message_id",
        ),
        (
            pb.AppendExcerptRequest(
                conversation=conversation(org),
                case_id_or_key=key,
                messages=[pb.ChatMessage(message_id="1.0", text="x", permalink="javascript:alert(1)")],
            ),
            "/messages/0/permalink",
        ),
    ]
    for request, field in cases:
        with pytest.raises(grpc.RpcError) as err:
            chat_stub.AppendExcerpt(request, metadata=internal())
        assert code_of(err.value) == grpc.StatusCode.INVALID_ARGUMENT
        bad = error_details_pb2.BadRequest()
        rpc_status.from_call(err.value).details[0].Unpack(bad)
        assert bad.field_violations[0].field == field
    with pytest.raises(grpc.RpcError) as err:
        chat_stub.PerformAction(
            pb.PerformActionRequest(
                conversation=conversation(org),
                case_id_or_key=key,
                chat_user=pb.ChatUser(user_id="U1"),
                action=pb.CHAT_ACTION_SET_PRIORITY,
                value="P9",
            ),
            metadata=internal(),
        )
    assert code_of(err.value) == grpc.StatusCode.INVALID_ARGUMENT


def test_actions_act_as_the_mapped_user_and_an_unmapped_one_is_told_to_link(
    chat_server: LiveChatGrpc, chat_stub, org: ChatOrg
) -> None:
    key = new_case(chat_server, org)
    tag = org.project_key[1:].lower()

    def act(action: int, user: pb.ChatUser, value: str = "") -> pb.PerformActionResponse:
        return chat_stub.PerformAction(
            pb.PerformActionRequest(
                conversation=conversation(org), case_id_or_key=key, chat_user=user, action=action, value=value
            ),
            metadata=internal(),
        )

    stranger = pb.ChatUser(user_id="U999", email=f"nobody@{tag}.example", email_verified=True)
    with pytest.raises(grpc.RpcError) as err:
        act(pb.CHAT_ACTION_ACKNOWLEDGE, stranger)
    assert code_of(err.value) == grpc.StatusCode.PERMISSION_DENIED
    assert "link" in err.value.details()
    # Bob's address, but the platform does not vouch for it: still unmapped.
    unverified = pb.ChatUser(user_id="U200", email=f"bob@{tag}.example", email_verified=False)
    with pytest.raises(grpc.RpcError):
        act(pb.CHAT_ACTION_ACKNOWLEDGE, unverified)

    bob = pb.ChatUser(user_id="U200", email=f"BOB@{tag}.example", email_verified=True)
    assert act(pb.CHAT_ACTION_ACKNOWLEDGE, bob).case.status == "IN_PROGRESS"
    assert act(pb.CHAT_ACTION_ASSIGN_TO_ME, pb.ChatUser(user_id="U200")).case.assignee_id == org.bob  # now linked
    assert act(pb.CHAT_ACTION_SET_PRIORITY, bob, "p1").case.priority == "P1"
    act(pb.CHAT_ACTION_COMMENT, bob, "on it")
    assert act(pb.CHAT_ACTION_CLOSE, bob).case.status == "CLOSED"

    changes = {c.type: c for c in cells_of(chat_server, key)}
    assert changes["STATUS_CHANGE"].author_id == org.bob and changes["COMMENT"].author_id == org.bob
    actions = [e.envelope["data"]["action"] for e in events_of(chat_server, org, "case.chat_action")]
    assert actions == ["ACKNOWLEDGE", "ASSIGN_TO_ME", "SET_PRIORITY", "COMMENT", "CLOSE"]
    assert all(e.actor_id == org.bob for e in events_of(chat_server, org, "case.chat_action"))


def test_link_codes_link_a_chat_user_explicitly(chat_server: LiveChatGrpc, chat_stub, org: ChatOrg) -> None:
    issued = chat_stub.CreateUserLinkCode(pb.CreateUserLinkCodeRequest(), metadata=org.keys)
    assert issued.code and issued.expires_at.seconds > 0

    async def redeem(code: str) -> str:
        async with chat_server.context.uow() as uow:
            user = await users.redeem_link_code(uow, org.org_id, "slack", org.workspace_id, "U777", code)
            await uow.commit()
        return user

    assert chat_server.call(redeem(issued.code.lower())) == org.creds.user_id
    with pytest.raises(Exception, match="unknown, used or expired"):
        chat_server.call(redeem(issued.code))  # one-time
    key = new_case(chat_server, org)
    done = chat_stub.PerformAction(
        pb.PerformActionRequest(
            conversation=conversation(org),
            case_id_or_key=key,
            chat_user=pb.ChatUser(user_id="U777"),
            action=pb.CHAT_ACTION_ASSIGN_TO_ME,
        ),
        metadata=internal(),
    )
    assert done.case.assignee_id == org.creds.user_id


def test_linking_a_conversation_is_idempotent_and_on_the_timeline(
    chat_server: LiveChatGrpc, chat_stub, org: ChatOrg
) -> None:
    key = new_case(chat_server, org)
    request = pb.LinkConversationRequest(conversation=conversation(org, thread="1700.1"), case_id_or_key=key)
    first = chat_stub.LinkConversation(request, metadata=org.keys)
    second = chat_stub.LinkConversation(request, metadata=internal(org))
    assert first.created and not second.created and first.link_id == second.link_id
    links = [c for c in cells_of(chat_server, key) if c.type == "CHAT_LINK"]
    assert len(links) == 1 and links[0].content["conversation"]["thread_id"] == "1700.1"
    assert links[0].author_id == org.creds.user_id  # the key's user linked it


def test_workspaces_register_with_org_keys(chat_stub, org: ChatOrg, other_org: ChatOrg) -> None:
    teams = pb.RegisterWorkspaceRequest(
        platform=pb.CHAT_PLATFORM_TEAMS, workspace_id="tenant-" + org.workspace_id, default_project=org.project_key
    )
    made = chat_stub.RegisterWorkspace(teams, metadata=org.keys)
    assert made.default_project_id == org.project_id and made.platform == pb.CHAT_PLATFORM_TEAMS
    with pytest.raises(grpc.RpcError) as err:  # one workspace, one org
        chat_stub.RegisterWorkspace(
            pb.RegisterWorkspaceRequest(platform=pb.CHAT_PLATFORM_TEAMS, workspace_id="tenant-" + org.workspace_id),
            metadata=other_org.keys,
        )
    assert code_of(err.value) == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as err:  # a project of another org
        chat_stub.RegisterWorkspace(
            pb.RegisterWorkspaceRequest(
                platform=pb.CHAT_PLATFORM_TEAMS,
                workspace_id="tenant-x" + org.workspace_id,
                default_project=org.project_key,
            ),
            metadata=other_org.keys,
        )
    assert code_of(err.value) == grpc.StatusCode.INVALID_ARGUMENT


def test_health_and_reflection(chat_server: LiveChatGrpc) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{chat_server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = health.Check(health_pb2.HealthCheckRequest(service="casem.v1.ChatInteractionsService"))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
        [reply] = list(reflect.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
        names = {s.name for s in reply.list_services_response.service}
        assert "casem.v1.ChatInteractionsService" in names


def test_a_slack_install_starts_with_an_authorize_url_bound_to_the_org(chat_stub, org: ChatOrg) -> None:
    from urllib.parse import parse_qs, urlparse

    from casem.app.chat import oauth

    url = chat_stub.StartSlackInstall(pb.StartSlackInstallRequest(), metadata=org.keys).authorize_url
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    assert (parsed.netloc, parsed.path) == ("slack.com", "/oauth/v2/authorize")
    assert query["client_id"] == ["1111.2222"] and "chat:write" in query["scope"][0]
    assert oauth.read_state(STATE_SECRET, query["state"][0]) == (org.org_id, org.creds.user_id)
    with pytest.raises(grpc.RpcError) as err:
        chat_stub.StartSlackInstall(pb.StartSlackInstallRequest(), metadata=internal(org))
    assert code_of(err.value) == grpc.StatusCode.PERMISSION_DENIED
