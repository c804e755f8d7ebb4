"""casem.v1.CaseAPI end to end: a live grpc.aio server over SQLite and PostgreSQL, called with a real channel."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from google.protobuf import empty_pb2, struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from casem.adapters.storage.tables import domain_events
from casem.proto_gen.casem.v1 import case_api_pb2 as pb
from casem.proto_gen.casem.v1 import case_api_pb2_grpc, intake_pb2, types_pb2
from tests.support.grpc_case_api import GrpcLiveServer, Org, unique_key


def outbox(server: GrpcLiveServer, case_id: str) -> list[dict[str, Any]]:
    """The case's outbox envelopes, oldest first."""

    async def _read() -> list[dict[str, Any]]:
        async with server.context.uow(read_only=True) as uow:
            rows = await uow.execute(
                sa.select(domain_events.c.envelope)
                .where(domain_events.c.case_id == case_id)
                .order_by(domain_events.c.seq)
            )
            return [row.envelope for row in rows]

    return server.call(_read())


def event_types(server: GrpcLiveServer, case_id: str) -> list[str]:
    return [e["type"] for e in outbox(server, case_id)]


def make_project(stub: case_api_pb2_grpc.CaseAPIStub, org: Org) -> pb.Project:
    return stub.CreateProject(
        pb.CreateProjectRequest(key=unique_key(), name="Platform incidents"), metadata=org.metadata
    )


def make_case(stub: case_api_pb2_grpc.CaseAPIStub, org: Org, project_id: str, **fields: Any) -> pb.Case:
    request = pb.CreateCaseRequest(project_id=project_id, title=fields.pop("title", "Disk full on web-1"), **fields)
    return stub.CreateCase(request, metadata=org.metadata).case


def error_of(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def field_violations(err: grpc.RpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(err)
    assert status is not None, "the error carries no google.rpc.Status"
    found = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found += [(v.field, v.description) for v in bad.field_violations]
    return found


# -- projects --------------------------------------------------------------------------------------


def test_projects_create_get_list(stub: case_api_pb2_grpc.CaseAPIStub, org: Org, other_org: Org) -> None:
    key = unique_key()
    created = stub.CreateProject(pb.CreateProjectRequest(key=key, name="Security"), metadata=org.metadata)
    assert (created.key, created.name, created.created_by_id) == (key, "Security", org.user_id)
    assert created.created_at.seconds > 0

    assert stub.GetProject(pb.GetProjectRequest(id=created.id), metadata=org.metadata) == created
    listed = stub.ListProjects(pb.ListProjectsRequest(), metadata=org.metadata).projects
    assert [p.id for p in listed] == [created.id]
    # The org comes from the keys: another org sees none of it.
    assert stub.ListProjects(pb.ListProjectsRequest(), metadata=other_org.metadata).projects == []
    err = error_of(lambda: stub.GetProject(pb.GetProjectRequest(id=created.id), metadata=other_org.metadata))
    assert err.code() is grpc.StatusCode.NOT_FOUND


def test_duplicate_project_key_is_already_exists(stub: case_api_pb2_grpc.CaseAPIStub, org: Org) -> None:
    key = unique_key()
    stub.CreateProject(pb.CreateProjectRequest(key=key, name="First"), metadata=org.metadata)
    err = error_of(lambda: stub.CreateProject(pb.CreateProjectRequest(key=key, name="Again"), metadata=org.metadata))
    assert err.code() is grpc.StatusCode.ALREADY_EXISTS
    assert key in err.details()


# -- cases -----------------------------------------------------------------------------------------


def test_create_case_and_get_by_id_and_key(
    grpc_server: GrpcLiveServer, stub: case_api_pb2_grpc.CaseAPIStub, org: Org
) -> None:
    project = make_project(stub, org)
    response = stub.CreateCase(
        pb.CreateCaseRequest(
            project_id=project.id,
            title="Checkout latency above SLO",
            description="p99 at 4s since 09:10",
            priority=types_pb2.CASE_PRIORITY_P2,
            assignee_id=org.user_id,
            attributes={"service": types_pb2.AttributeValues(values=["checkout", "payments"])},
        ),
        metadata=org.metadata,
    )
    case = response.case
    assert response.created
    assert case.key == f"{project.key}-1" and case.number == 1
    assert case.status == types_pb2.CASE_STATUS_OPEN  # the domain default
    assert case.priority == types_pb2.CASE_PRIORITY_P2
    assert case.assignee_id == org.user_id and case.created_by_id == org.user_id
    assert list(case.attributes["service"].values) == ["checkout", "payments"]
    assert not case.HasField("modified_at") and not case.HasField("intake_key")

    assert stub.GetCase(pb.GetCaseRequest(id_or_key=case.id), metadata=org.metadata) == case
    assert stub.GetCase(pb.GetCaseRequest(id_or_key=case.key.lower()), metadata=org.metadata) == case
    assert event_types(grpc_server, case.id) == ["com.casem.case.created.v1"]


def test_create_case_is_idempotent_on_intake_key(
    grpc_server: GrpcLiveServer, stub: case_api_pb2_grpc.CaseAPIStub, org: Org
) -> None:
    project = make_project(stub, org)
    request = pb.CreateCaseRequest(
        project_id=project.id, title="Monitor alert: disk", intake_key="monitor:42:1700000000"
    )
    first = stub.CreateCase(request, metadata=org.metadata)
    again = stub.CreateCase(request, metadata=org.metadata)

    assert first.created and not again.created
    assert again.case == first.case and first.case.intake_key == "monitor:42:1700000000"
    assert event_types(grpc_server, first.case.id) == ["com.casem.case.created.v1"]  # one event, not two
    # The retry did not take a number: the next case is PROJ-2.
    assert make_case(stub, org, project.id).key == f"{project.key}-2"


def test_ingest_case_takes_the_canonical_intake_payload(
    grpc_server: GrpcLiveServer, stub: case_api_pb2_grpc.CaseAPIStub, org: Org
) -> None:
    project = make_project(stub, org)
    intake = intake_pb2.CaseIntake(
        schema_version=1,
        intake_key="signal:abc",
        project_id=project.id,
        title="Impossible travel for jane",
        priority=types_pb2.CASE_PRIORITY_P1,
        attributes={"team": types_pb2.AttributeValues(values=["secops"])},
        source=intake_pb2.IntakeSource(system="security-signals", reference_id="abc"),
    )
    first = stub.IngestCase(intake, metadata=org.metadata)
    again = stub.IngestCase(intake, metadata=org.metadata)
    assert first.created and not again.created and again.case.id == first.case.id
    assert first.case.priority == types_pb2.CASE_PRIORITY_P1
    assert list(first.case.attributes["team"].values) == ["secops"]
    assert len(event_types(grpc_server, first.case.id)) == 1

    unknown_version = intake_pb2.CaseIntake(schema_version=2, intake_key="k", project_id=project.id, title="x")
    err = error_of(lambda: stub.IngestCase(unknown_version, metadata=org.metadata))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err)] == ["/schema_version"]

    no_key = intake_pb2.CaseIntake(schema_version=1, project_id=project.id, title="x")
    err = error_of(lambda: stub.IngestCase(no_key, metadata=org.metadata))
    assert [f for f, _ in field_violations(err)] == ["/intake_key"]


def test_update_case_changes_set_fields_and_writes_outbox_events(
    grpc_server: GrpcLiveServer, stub: case_api_pb2_grpc.CaseAPIStub, org: Org
) -> None:
    project = make_project(stub, org)
    case = make_case(stub, org, project.id)

    updated = stub.UpdateCase(
        pb.UpdateCaseRequest(id_or_key=case.key, status=types_pb2.CASE_STATUS_IN_PROGRESS), metadata=org.metadata
    )
    assert updated.status == types_pb2.CASE_STATUS_IN_PROGRESS
    assert updated.title == case.title and updated.priority == case.priority  # unset fields are left alone
    assert updated.modified_by_id == org.user_id and updated.HasField("modified_at")
    envelopes = outbox(grpc_server, case.id)
    assert [e["type"] for e in envelopes] == ["com.casem.case.created.v1", "com.casem.case.status_changed.v1"]
    assert envelopes[-1]["data"]["changes"]["status"] == {"old": "OPEN", "new": "IN_PROGRESS"}
    assert envelopes[-1]["actorid"] == org.user_id

    # Several fields in one call: one transaction, one event per change.
    updated = stub.UpdateCase(
        pb.UpdateCaseRequest(
            id_or_key=case.id,
            title="Disk full on web-1 and web-2",
            priority=types_pb2.CASE_PRIORITY_P1,
            status=types_pb2.CASE_STATUS_CLOSED,
            assignee_id=org.user_id,
            attributes=pb.AttributesUpdate(attributes={"env": types_pb2.AttributeValues(values=["prod"])}),
        ),
        metadata=org.metadata,
    )
    assert updated.title == "Disk full on web-1 and web-2"
    assert updated.priority == types_pb2.CASE_PRIORITY_P1
    assert updated.status == types_pb2.CASE_STATUS_CLOSED and updated.HasField("closed_at")
    assert updated.assignee_id == org.user_id
    assert list(updated.attributes["env"].values) == ["prod"]
    assert event_types(grpc_server, case.id)[2:] == [
        "com.casem.case.title_changed.v1",
        "com.casem.case.status_changed.v1",
        "com.casem.case.priority_changed.v1",
        "com.casem.case.assigned.v1",
        "com.casem.case.attributes_changed.v1",
    ]

    unassigned = stub.UpdateCase(
        pb.UpdateCaseRequest(id_or_key=case.id, unassign=empty_pb2.Empty()), metadata=org.metadata
    )
    assert not unassigned.HasField("assignee_id")
    before = len(outbox(grpc_server, case.id))
    # A no-op update changes nothing and records nothing.
    stub.UpdateCase(pb.UpdateCaseRequest(id_or_key=case.id, title=updated.title), metadata=org.metadata)
    assert len(outbox(grpc_server, case.id)) == before
    assert stub.GetCase(pb.GetCaseRequest(id_or_key=case.id), metadata=org.metadata) == unassigned


def test_failed_update_changes_nothing(
    grpc_server: GrpcLiveServer, stub: case_api_pb2_grpc.CaseAPIStub, org: Org
) -> None:
    project = make_project(stub, org)
    case = make_case(stub, org, project.id)
    # The status change is applied before the assignee is checked: the whole call must roll back.
    bad = pb.UpdateCaseRequest(id_or_key=case.id, status=types_pb2.CASE_STATUS_CLOSED, assignee_id="nobody")
    err = error_of(lambda: stub.UpdateCase(bad, metadata=org.metadata))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations(err)] == ["/assignee_id"]
    assert stub.GetCase(pb.GetCaseRequest(id_or_key=case.id), metadata=org.metadata) == case
    assert event_types(grpc_server, case.id) == ["com.casem.case.created.v1"]


def test_comments_and_timeline(stub: case_api_pb2_grpc.CaseAPIStub, org: Org, other_org: Org) -> None:
    project = make_project(stub, org)
    case = make_case(stub, org, project.id)
    stub.UpdateCase(
        pb.UpdateCaseRequest(id_or_key=case.id, status=types_pb2.CASE_STATUS_IN_PROGRESS), metadata=org.metadata
    )
    comment = stub.AddComment(
        pb.AddCommentRequest(case_id_or_key=case.key, message="Rotated logs, 40% free"), metadata=org.metadata
    )
    assert comment.type == "COMMENT" and comment.case_id == case.id and comment.author_id == org.user_id
    assert comment.content == struct_pb2.Struct(
        fields={"message": struct_pb2.Value(string_value="Rotated logs, 40% free")}
    )

    cells = stub.ListTimeline(pb.ListTimelineRequest(case_id_or_key=case.id), metadata=org.metadata).cells
    assert [c.type for c in cells] == ["CASE_CREATED", "STATUS_CHANGE", "COMMENT"]  # oldest first
    assert cells[-1] == comment

    first = stub.ListTimeline(pb.ListTimelineRequest(case_id_or_key=case.id, page_size=2), metadata=org.metadata)
    assert [c.type for c in first.cells] == ["CASE_CREATED", "STATUS_CHANGE"] and first.next_page_token
    rest = stub.ListTimeline(
        pb.ListTimelineRequest(case_id_or_key=case.id, page_size=2, page_token=first.next_page_token),
        metadata=org.metadata,
    )
    assert [c.type for c in rest.cells] == ["COMMENT"] and rest.next_page_token == ""

    empty = pb.AddCommentRequest(case_id_or_key=case.id, message="  ")
    err = error_of(lambda: stub.AddComment(empty, metadata=org.metadata))
    assert [f for f, _ in field_violations(err)] == ["/message"]
    err = error_of(
        lambda: stub.AddComment(pb.AddCommentRequest(case_id_or_key=case.id, message="hi"), metadata=other_org.metadata)
    )
    assert err.code() is grpc.StatusCode.NOT_FOUND


def test_list_cases_filters_and_pages(stub: case_api_pb2_grpc.CaseAPIStub, org: Org, other_org: Org) -> None:
    project = make_project(stub, org)
    urgent = [
        make_case(stub, org, project.id, title=f"web-{n} down", priority=types_pb2.CASE_PRIORITY_P1) for n in range(3)
    ]
    make_case(stub, org, project.id, title="typo on pricing page", priority=types_pb2.CASE_PRIORITY_P4)
    make_case(
        stub, other_org, make_project(stub, other_org).id, title="web-9 down", priority=types_pb2.CASE_PRIORITY_P1
    )

    query = f"project:{project.key} priority:P1 down"
    first = stub.ListCases(pb.ListCasesRequest(filter=query, page_size=2), metadata=org.metadata)
    assert first.total_count == 3 and len(first.cases) == 2 and first.next_page_token
    rest = stub.ListCases(
        pb.ListCasesRequest(filter=query, page_size=2, page_token=first.next_page_token), metadata=org.metadata
    )
    assert len(rest.cases) == 1 and rest.next_page_token == ""
    # Newest first by default; every case exactly once across the pages; another org's case never.
    assert [c.id for c in [*first.cases, *rest.cases]] == [c.id for c in reversed(urgent)]

    by_priority = stub.ListCases(
        pb.ListCasesRequest(filter=f"project:{project.key}", sort_field="priority", sort_asc=False),
        metadata=org.metadata,
    )
    assert by_priority.cases[0].title == "typo on pricing page" and by_priority.total_count == 4

    err = error_of(lambda: stub.ListCases(pb.ListCasesRequest(filter="status:(open"), metadata=org.metadata))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT and "filter" in err.details()
    err = error_of(lambda: stub.ListCases(pb.ListCasesRequest(sort_field="title"), metadata=org.metadata))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT


# -- errors ----------------------------------------------------------------------------------------


def test_invalid_input_carries_a_bad_request_field_violation(stub: case_api_pb2_grpc.CaseAPIStub, org: Org) -> None:
    project = make_project(stub, org)
    err = error_of(lambda: make_case(stub, org, project.id, title=""))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err) == [("/title", "title must be a non-empty string")]

    err = error_of(lambda: make_case(stub, org, "not-a-uuid"))
    assert [f for f, _ in field_violations(err)] == ["/project_id"]

    err = error_of(lambda: make_case(stub, org, project.id, priority=99))  # proto3 enums are open
    assert [f for f, _ in field_violations(err)] == ["/priority"]

    long_values = {"svc": types_pb2.AttributeValues(values=["x" * 2000])}
    err = error_of(lambda: make_case(stub, org, project.id, attributes=long_values))
    assert [f for f, _ in field_violations(err)] == ["/attributes/svc"]


def test_another_orgs_case_is_not_found(stub: case_api_pb2_grpc.CaseAPIStub, org: Org, other_org: Org) -> None:
    case = make_case(stub, org, make_project(stub, org).id)
    for ident in (case.id, case.key):
        err = error_of(lambda i=ident: stub.GetCase(pb.GetCaseRequest(id_or_key=i), metadata=other_org.metadata))
        assert err.code() is grpc.StatusCode.NOT_FOUND
    err = error_of(
        lambda: stub.UpdateCase(pb.UpdateCaseRequest(id_or_key=case.id, title="mine now"), metadata=other_org.metadata)
    )
    assert err.code() is grpc.StatusCode.NOT_FOUND
    status = rpc_status.from_call(err)
    assert status is not None
    info = error_details_pb2.ResourceInfo()
    assert status.details[0].Unpack(info) and (info.resource_type, info.resource_name) == ("case", case.id)
    assert stub.GetCase(pb.GetCaseRequest(id_or_key=case.id), metadata=org.metadata).title == case.title


def test_missing_keys_are_unauthenticated(stub: case_api_pb2_grpc.CaseAPIStub, org: Org) -> None:
    err = error_of(lambda: stub.ListProjects(pb.ListProjectsRequest()))
    assert err.code() is grpc.StatusCode.UNAUTHENTICATED
    only_api_key = org.metadata[:1]
    err = error_of(lambda: stub.ListProjects(pb.ListProjectsRequest(), metadata=only_api_key))
    assert err.code() is grpc.StatusCode.UNAUTHENTICATED


def test_wrong_keys_are_permission_denied(stub: case_api_pb2_grpc.CaseAPIStub, org: Org, other_org: Org) -> None:
    wrong = (("dd-api-key", org.creds.api_key), ("dd-application-key", "not-a-key"))
    err = error_of(lambda: stub.ListProjects(pb.ListProjectsRequest(), metadata=wrong))
    assert err.code() is grpc.StatusCode.PERMISSION_DENIED
    mixed = (("dd-api-key", org.creds.api_key), ("dd-application-key", other_org.creds.app_key))
    err = error_of(lambda: stub.ListProjects(pb.ListProjectsRequest(), metadata=mixed))
    assert err.code() is grpc.StatusCode.PERMISSION_DENIED


# -- the request boundary (each of these answered INTERNAL before) ------------------------------------------


@pytest.mark.parametrize("token", ["\u00b2", "\u0663", "9" * 30, "99999999", "-1", "1e3"])
def test_page_tokens_this_server_never_issued_are_invalid_argument(
    stub: case_api_pb2_grpc.CaseAPIStub, org: Org, token: str
) -> None:
    case = make_case(stub, org, make_project(stub, org).id)
    timeline = pb.ListTimelineRequest(case_id_or_key=case.id, page_token=token)
    for call in (
        lambda: stub.ListCases(pb.ListCasesRequest(page_token=token), metadata=org.metadata),
        lambda: stub.ListTimeline(timeline, metadata=org.metadata),
    ):
        err = error_of(call)
        assert err.code() is grpc.StatusCode.INVALID_ARGUMENT, err.details()
        assert field_violations(err) == [("/page_token", "page_token is not one this server issued")]


@pytest.mark.parametrize(
    ("query", "limit"),
    [
        ("(" * 400 + "disk" + ")" * 400, "deeper than 16 levels"),
        (" OR ".join(["a"] * 500), "terms; the limit is 100"),
        (" OR ".join(f"w{i}" for i in range(1_000)), "characters long; the limit is 4096"),
    ],
)
def test_query_limits_on_grpc_are_invalid_argument_with_a_bounded_message(
    stub: case_api_pb2_grpc.CaseAPIStub, org: Org, query: str, limit: str
) -> None:
    err = error_of(lambda: stub.ListCases(pb.ListCasesRequest(filter=query), metadata=org.metadata))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert limit in err.details() and len(err.details()) < 200
    [(field, description)] = field_violations(err)
    assert field == "" and limit in description


def test_a_long_malformed_query_is_not_echoed_back(stub: case_api_pb2_grpc.CaseAPIStub, org: Org) -> None:
    err = error_of(lambda: stub.ListCases(pb.ListCasesRequest(filter="status: " + "x" * 4000), metadata=org.metadata))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT and len(err.details()) < 200


def test_a_nul_character_anywhere_in_a_request_is_invalid_argument(
    stub: case_api_pb2_grpc.CaseAPIStub, org: Org
) -> None:
    """Found by the gRPC fuzz: PostgreSQL refuses NUL in text, which answered INTERNAL."""
    project = make_project(stub, org)
    case = make_case(stub, org, project.id)
    for call, field in (
        (
            lambda: stub.CreateCase(pb.CreateCaseRequest(project_id=project.id, title="a\x00b"), metadata=org.metadata),
            "/title",
        ),
        (lambda: stub.GetCase(pb.GetCaseRequest(id_or_key="\x00"), metadata=org.metadata), "/id_or_key"),
        (
            lambda: stub.AddComment(
                pb.AddCommentRequest(case_id_or_key=case.id, message="\x00"), metadata=org.metadata
            ),
            "/message",
        ),
    ):
        err = error_of(call)
        assert err.code() is grpc.StatusCode.INVALID_ARGUMENT and field_violations(err)[0][0] == field
