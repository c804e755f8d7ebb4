"""casem.v1.CaseAPI: each RPC authenticates, opens one unit of work and calls the application services
that the HTTP API calls. Nothing here decides anything about cases; it translates."""

from __future__ import annotations

from typing import Any

import grpc
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from casem.adapters.search.document import stamp
from casem.app.auth import AuthenticationFailed, Principal, authenticate
from casem.app.cache import TtlCache
from casem.app.cases import search, updates
from casem.app.cases import service as cases
from casem.app.cases.batch import BatchItem, KnownKeyLookups, create_cases_retrying
from casem.app.context import AppContext
from casem.app.intake.convert import attributes_from_proto, priority_from_proto, status_from_proto, struct_to_dict
from casem.app.intake.validation import INTAKE_SCHEMA_VERSIONS
from casem.app.internal_auth import (
    ACT_AS_ORG_METADATA,
    ACT_AS_USER_METADATA,
    INTERNAL_TOKEN_METADATA,
    authenticate_internal,
    check_internal_token,
    configured_token,
    users_to_act_as,
)
from casem.app.paging import MAX_PAGE_NUMBER
from casem.app.projects import service as projects
from casem.app.timeline import service as timeline
from casem.domain.cases import STANDARD_TYPE_ID, validate_attributes
from casem.domain.errors import DomainError, InvalidInput
from casem.observability import context_from, start_span, trace_context
from casem.proto_gen.casem.v1 import case_api_pb2 as pb
from casem.proto_gen.casem.v1 import case_api_pb2_grpc as pb_grpc
from casem.proto_gen.casem.v1 import intake_pb2
from casem.services.case_api.grpc import convert
from casem.services.common.grpc_auth import invocation_metadata, key_pair
from casem.services.common.grpc_errors import error_parts, rpc

ACTING_CACHE_TTL_S = 5.0


INGEST_ITEM_SPAN = "casem.v1.CaseAPI/IngestCases item"


def _item_span(item: pb.IngestItem) -> Span | None:
    """A span per traced item of a batch, continuing the trace the item was sent in (the call's own span belongs
    to no intake): its case's creation and event join that trace. None for an untraced item."""
    return start_span(
        INGEST_ITEM_SPAN,
        context_from(dict(item.trace)),
        SpanKind.SERVER,
        {"rpc.system": "grpc", "rpc.method": "IngestCases", "casem.intake_key": item.intake.intake_key},
    )


def _end_span(span: Span, error: BaseException | None) -> None:
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, str(error)))
    span.end()


def _page(page_size: int, page_token: str, default: int, maximum: int) -> tuple[int, int]:
    """(page size, page number) from a request; the token is the next page's number.

    Only ASCII digits make a token (str.isdigit() also accepts "²", which int() refuses), and at most
    MAX_PAGE_NUMBER: anything else is a token this server never issued."""
    if page_size < 0:
        raise InvalidInput("page_size must not be negative", "/page_size")
    size = min(page_size or default, maximum)
    if not page_token:
        return size, 0
    if not (page_token.isascii() and page_token.isdigit() and len(page_token) <= 8):
        raise InvalidInput("page_token is not one this server issued", "/page_token")
    number = int(page_token)
    if number > MAX_PAGE_NUMBER:
        raise InvalidInput("page_token is not one this server issued", "/page_token")
    return size, number


def _attributes(attributes: Any) -> dict[str, list[str]]:
    return validate_attributes(attributes_from_proto(attributes), "/attributes")


class CaseApiServicer(pb_grpc.CaseAPIServicer):
    def __init__(self, context: AppContext, internal_token: str | None = None) -> None:
        self.ctx = context
        self.internal_token = internal_token or configured_token()  # trusted internal callers (case-indexer)
        # (org, user) pairs the service credential may act as, seen lately: a batch of a busy stream names the
        # same few, and a user disabled keeps being acted as for at most ACTING_CACHE_TTL_S.
        self._acting: TtlCache[tuple[str, str], bool] = TtlCache(ACTING_CACHE_TTL_S)
        # IngestCases batches skip the read of their intake keys while none turns out known (see KnownKeyLookups).
        self._known_keys = KnownKeyLookups()

    async def _principal(self, context: grpc.aio.ServicerContext) -> Principal:
        metadata = invocation_metadata(context)
        if token := metadata.get(INTERNAL_TOKEN_METADATA):
            async with self.ctx.uow(read_only=True) as uow:
                return await authenticate_internal(
                    uow,
                    self.internal_token,
                    token,
                    metadata.get(ACT_AS_ORG_METADATA),
                    metadata.get(ACT_AS_USER_METADATA),
                )
        api_key, app_key = key_pair(metadata)
        async with self.ctx.uow(read_only=True) as uow:
            return await authenticate(uow, api_key, app_key)

    async def _create(self, who: Principal, new: cases.NewCase) -> pb.CreateCaseResponse:
        async with self.ctx.uow() as uow:
            case = await cases.create_case(uow, who.org_id, who.user_id, new)
            events = await uow.commit()
        # create_case returns the existing case for a known intake_key and records nothing.
        return pb.CreateCaseResponse(case=convert.case_to_proto(case), created=bool(events))

    # -- cases -------------------------------------------------------------------------------------
    @rpc(conflict=grpc.StatusCode.ALREADY_EXISTS)
    async def CreateCase(self, request: pb.CreateCaseRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        who = await self._principal(context)
        new = cases.NewCase(
            project_id=request.project_id,
            title=request.title,
            type_id=request.type_id or STANDARD_TYPE_ID,
            description=request.description,
            priority=priority_from_proto(request.priority),
            status=status_from_proto(request.status),
            assignee_id=request.assignee_id if request.HasField("assignee_id") else None,
            attributes=_attributes(request.attributes),
            custom_attributes=struct_to_dict(request.custom_attributes),
            intake_key=request.intake_key or None,
        )
        return await self._create(who, new)

    @rpc(conflict=grpc.StatusCode.ALREADY_EXISTS)
    async def IngestCase(self, request: intake_pb2.CaseIntake, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        who = await self._principal(context)
        return await self._create(who, self._intake_case(request))

    @rpc(conflict=grpc.StatusCode.ALREADY_EXISTS)
    async def IngestCases(self, request: pb.IngestCasesRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        """A batch of intakes in one transaction; each item acts as its own org and user (service credential
        only) and gets its own result, so a refused intake is reported beside the created ones."""
        metadata = invocation_metadata(context)
        token = metadata.get(INTERNAL_TOKEN_METADATA)
        if not token:
            raise AuthenticationFailed("IngestCases takes the service credential only")
        check_internal_token(self.internal_token, token)
        errors: dict[int, Exception] = {}
        wanted = {(item.org_id, item.user_id) for item in request.items}
        allowed = {pair for pair in wanted if self._acting.get(pair)}
        if unknown := wanted - allowed:
            async with self.ctx.uow(read_only=True) as uow:
                for pair in await users_to_act_as(uow, unknown):
                    self._acting.put(pair, True)
                    allowed.add(pair)
        batch: list[BatchItem] = []
        positions: list[int] = []  # request index of each batch item
        spans = {i: span for i, item in enumerate(request.items) if (span := _item_span(item)) is not None}
        for i, item in enumerate(request.items):
            try:
                if (item.org_id, item.user_id) not in allowed:
                    raise AuthenticationFailed("the user to act as is unknown, of another org, or disabled")
                trace = trace_context(spans[i]) if i in spans else None
                new = self._intake_case(item.intake)
                batch.append(BatchItem(item.org_id, item.user_id, new, trace, request.indexed_by_caller))
                positions.append(i)
            except (DomainError, AuthenticationFailed) as exc:
                errors[i] = exc
        try:
            outcomes, _ = await create_cases_retrying(self.ctx.uow, batch, self._known_keys) if batch else ([], [])
        except BaseException as exc:
            for span in spans.values():
                _end_span(span, exc)
            raise
        results: list[pb.IngestResult | None] = [None] * len(request.items)  # each built once, below
        for i, outcome in zip(positions, outcomes, strict=True):
            if outcome.error is not None:
                errors[i] = outcome.error
            else:
                assert outcome.case is not None
                result = results[i] = pb.IngestResult(
                    case_id=outcome.case.id, case_key=outcome.case.key, created=outcome.created
                )
                if outcome.document is not None:  # stamped here, once: case-indexer writes its text as it is
                    sent = stamp(outcome.document)
                    result.document, result.document_version = sent.text, sent.version or 0
        for i, exc in errors.items():
            code, message, pointer = error_parts(exc, conflict=grpc.StatusCode.ALREADY_EXISTS)
            results[i] = pb.IngestResult(error_code=code.value[0], error_message=message, error_field=pointer)
        for i, span in spans.items():
            _end_span(span, errors.get(i))
        return pb.IngestCasesResponse(results=[r if r is not None else pb.IngestResult() for r in results])

    @staticmethod
    def _intake_case(request: intake_pb2.CaseIntake) -> cases.NewCase:
        """An intake as a new case, with IngestCase's checks of the intake itself."""
        if request.schema_version not in INTAKE_SCHEMA_VERSIONS:
            known = ", ".join(str(v) for v in sorted(INTAKE_SCHEMA_VERSIONS))
            raise InvalidInput(
                f"unknown intake schema_version {request.schema_version}; known: {known}", "/schema_version"
            )
        if not request.intake_key:
            raise InvalidInput("an intake needs its intake_key (the idempotency key)", "/intake_key")
        return cases.NewCase(
            project_id=request.project_id,
            title=request.title,
            type_id=request.type_id or STANDARD_TYPE_ID,
            description=request.description,
            priority=priority_from_proto(request.priority),
            attributes=_attributes(request.attributes),
            custom_attributes=struct_to_dict(request.custom_attributes),
            intake_key=request.intake_key,
        )

    @rpc()
    async def GetCase(self, request: pb.GetCaseRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        who = await self._principal(context)
        if not request.id_or_key:
            raise InvalidInput("id_or_key is required", "/id_or_key")
        async with self.ctx.uow(read_only=True) as uow:
            case = await cases.get_case(uow, who.org_id, request.id_or_key)
        return convert.case_to_proto(case)

    @rpc()
    async def ListCases(self, request: pb.ListCasesRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        who = await self._principal(context)
        size, number = _page(request.page_size, request.page_token, search.PAGE_SIZE_DEFAULT, search.PAGE_SIZE_MAX)
        # The HTTP search's parameter parsing, so both edges accept the same filters and sorts; pages are 1-based.
        params = search.SearchParams.parse(
            page_size=str(size),
            page_number=str(number or 1),
            sort_field=request.sort_field or None,
            sort_asc=str(request.sort_asc),
            filter=request.filter,
        )
        async with self.ctx.uow(read_only=True) as uow:
            found, total = await search.search_cases(uow, who.org_id, params)
        more = params.page_number * params.page_size < total
        return pb.ListCasesResponse(
            cases=[convert.case_to_proto(c) for c in found],
            next_page_token=str(params.page_number + 1) if more else "",
            total_count=total,
        )

    @rpc()
    async def UpdateCase(self, request: pb.UpdateCaseRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        who = await self._principal(context)
        org, actor, ident = who.org_id, who.user_id, request.id_or_key
        status = status_from_proto(request.status)
        priority = priority_from_proto(request.priority)
        async with self.ctx.uow() as uow:
            # Each set field goes through the same update service as its HTTP endpoint, in one transaction.
            case = await cases.get_case(uow, org, ident)
            ident = case.id
            if request.HasField("title"):
                case = await updates.retitle(uow, org, actor, ident, request.title)
            if request.HasField("description"):
                case = await updates.describe(uow, org, actor, ident, request.description)
            if status is not None:
                case = await updates.transition(uow, org, actor, ident, status)
            if priority is not None:
                case = await updates.prioritize(uow, org, actor, ident, priority)
            change = request.WhichOneof("assignee_change")
            if change == "assignee_id":
                case = await updates.assign(uow, org, actor, ident, request.assignee_id)
            elif change == "unassign":
                case = await updates.unassign(uow, org, actor, ident)
            if request.HasField("attributes"):
                case = await updates.set_attributes(uow, org, actor, ident, _attributes(request.attributes.attributes))
            if request.HasField("custom_attributes"):
                case = await self._set_custom(uow, who, case, struct_to_dict(request.custom_attributes))
            await uow.commit()
        return convert.case_to_proto(case)

    async def _set_custom(self, uow: Any, who: Principal, case: Any, values: dict[str, Any]) -> Any:
        configs = await cases.attribute_configs(uow, who.org_id, case.type_id)
        for key, raw in values.items():
            config = configs.get(key)
            # set_custom_attribute takes Datadog's {type, is_multi, value}; a bare value gets the config's shape.
            value = (
                raw
                if isinstance(raw, dict)
                else {
                    "type": config.type if config else None,
                    "is_multi": config.is_multi if config else False,
                    "value": raw,
                }
            )
            if not {"type", "is_multi", "value"} <= value.keys():
                raise InvalidInput(
                    "a custom attribute object needs type, is_multi and value", f"/custom_attributes/{key}"
                )
            case = await updates.set_custom_attribute(uow, who.org_id, who.user_id, case.id, key, value)
        return case

    # -- timeline ----------------------------------------------------------------------------------
    @rpc()
    async def AddComment(self, request: pb.AddCommentRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        who = await self._principal(context)
        async with self.ctx.uow() as uow:
            cell = await timeline.add_comment(uow, who.org_id, who.user_id, request.case_id_or_key, request.message)
            await uow.commit()
        return convert.cell_to_proto(cell)

    @rpc()
    async def ListTimeline(self, request: pb.ListTimelineRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        who = await self._principal(context)
        size, number = _page(request.page_size, request.page_token, timeline.DEFAULT_PAGE_SIZE, timeline.MAX_PAGE_SIZE)
        if number > timeline.MAX_PAGE_NUMBER:
            raise InvalidInput("page_token is past the last page this server serves", "/page_token")
        async with self.ctx.uow(read_only=True) as uow:
            page = await timeline.list_timeline(
                uow, who.org_id, request.case_id_or_key, page_size=size, page_number=number, ascending=True
            )
        return pb.ListTimelineResponse(
            cells=[convert.cell_to_proto(c) for c in page.cells],
            next_page_token=str(number + 1) if len(page.cells) == size else "",
        )

    # -- projects ----------------------------------------------------------------------------------
    @rpc(conflict=grpc.StatusCode.ALREADY_EXISTS)
    async def CreateProject(self, request: pb.CreateProjectRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        who = await self._principal(context)
        async with self.ctx.uow() as uow:
            project = await projects.create_project(
                uow,
                who.org_id,
                who.user_id,
                key=request.key,
                name=request.name,
                enabled_custom_case_types=list(request.enabled_custom_case_types),
                team_uuid=request.team_id if request.HasField("team_id") else None,
            )
            await uow.commit()
        return convert.project_to_proto(project)

    @rpc()
    async def GetProject(self, request: pb.GetProjectRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        who = await self._principal(context)
        async with self.ctx.uow(read_only=True) as uow:
            project = await projects.get_project(uow, who.org_id, request.id)
        return convert.project_to_proto(project)

    @rpc()
    async def ListProjects(self, request: pb.ListProjectsRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        who = await self._principal(context)
        async with self.ctx.uow(read_only=True) as uow:
            found = await projects.list_projects(uow, who.org_id)
        return pb.ListProjectsResponse(projects=[convert.project_to_proto(p) for p in found])
