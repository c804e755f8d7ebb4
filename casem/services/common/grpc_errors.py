"""Domain errors to gRPC status codes, with google.rpc error details (grpcio-status)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import structlog
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from casem.adapters.availability import is_unavailable
from casem.app.auth import AuthenticationFailed
from casem.app.timeline.service import NotAuthor
from casem.domain.errors import Conflict, DomainError, InvalidInput, NotFound, TenantUnavailable
from casem.services.common.grpc_auth import MissingCredentials

log = structlog.get_logger("case-api.grpc")

Req = TypeVar("Req")
Resp = TypeVar("Resp")
RETRY_AFTER_S = 2  # seconds before a retry when an engine is away
Handler = Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]


# Application services speak JSON:API pointers; a gRPC caller should see its own request's field names.
_POINTER_PREFIXES = ("/data/attributes/", "/data/relationships/", "/data/")
_FIELD_RENAMES = {"status_name": "status", "project": "project_id", "assignee": "assignee_id", "comment": "message"}


def request_pointer(pointer: str | None) -> str:
    """`/data/attributes/custom_attributes/sev` -> `/custom_attributes/sev`; `/data/relationships/project/data`
    -> `/project_id`. A pointer that is not JSON:API shaped is returned as it is."""
    if not pointer:
        return ""
    for prefix in _POINTER_PREFIXES:
        if pointer.startswith(prefix):
            parts = pointer[len(prefix) :].split("/")
            parts[0] = _FIELD_RENAMES.get(parts[0], parts[0])
            if len(parts) > 1 and parts[-1] == "data" and parts[0].endswith("_id"):
                parts = parts[:-1]  # relationship linkage: the id field itself
            return "/" + "/".join(parts)
    return pointer


def status_with_details(code: grpc.StatusCode, message: str, *details: Any) -> grpc.Status:
    packed = []
    for detail in details:
        any_detail = any_pb2.Any()
        any_detail.Pack(detail)
        packed.append(any_detail)
    # google.rpc.Code and grpc.StatusCode share their numbers.
    proto = status_pb2.Status(code=code.value[0], message=message, details=packed)
    return rpc_status.to_status(proto)


def bad_request(field: str, description: str) -> grpc.Status:
    violation = error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
    return status_with_details(
        grpc.StatusCode.INVALID_ARGUMENT, description, error_details_pb2.BadRequest(field_violations=[violation])
    )


def to_status(exc: Exception, *, conflict: grpc.StatusCode) -> grpc.Status:
    if isinstance(exc, InvalidInput):
        return bad_request(request_pointer(exc.pointer), exc.detail)
    if isinstance(exc, NotFound):
        info = error_details_pb2.ResourceInfo(resource_type=exc.resource, resource_name=exc.ident)
        return status_with_details(grpc.StatusCode.NOT_FOUND, str(exc), info)
    if isinstance(exc, Conflict):
        return status_with_details(conflict, exc.detail)
    if isinstance(exc, MissingCredentials):
        return status_with_details(grpc.StatusCode.UNAUTHENTICATED, str(exc))
    if isinstance(exc, AuthenticationFailed | NotAuthor):
        return status_with_details(grpc.StatusCode.PERMISSION_DENIED, str(exc))
    if isinstance(exc, TenantUnavailable):
        return status_with_details(grpc.StatusCode.UNAVAILABLE, str(exc))
    if isinstance(exc, DomainError):
        return status_with_details(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
    if is_unavailable(exc):
        delay = duration_pb2.Duration()
        delay.FromSeconds(RETRY_AFTER_S)
        return status_with_details(
            grpc.StatusCode.UNAVAILABLE,
            "a backing service is unavailable; retry after the delay in RetryInfo",
            error_details_pb2.RetryInfo(retry_delay=delay),
        )
    return status_with_details(grpc.StatusCode.INTERNAL, "an unexpected error occurred; it has been logged")


def error_parts(exc: Exception, *, conflict: grpc.StatusCode) -> tuple[grpc.StatusCode, str, str]:
    """(code, message, field pointer) of a domain error: one item's refusal inside a batch response."""
    if isinstance(exc, InvalidInput):
        return grpc.StatusCode.INVALID_ARGUMENT, exc.detail, request_pointer(exc.pointer)
    if isinstance(exc, NotFound):
        return grpc.StatusCode.NOT_FOUND, str(exc), ""
    if isinstance(exc, Conflict):
        return conflict, exc.detail, ""
    if isinstance(exc, MissingCredentials):
        return grpc.StatusCode.UNAUTHENTICATED, str(exc), ""
    if isinstance(exc, AuthenticationFailed | NotAuthor):
        return grpc.StatusCode.PERMISSION_DENIED, str(exc), ""
    if isinstance(exc, TenantUnavailable):
        return grpc.StatusCode.UNAVAILABLE, str(exc), ""
    if isinstance(exc, DomainError):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc), ""
    if is_unavailable(exc):
        return grpc.StatusCode.UNAVAILABLE, "a backing service is unavailable; retry", ""
    return grpc.StatusCode.INTERNAL, "an unexpected error occurred; it has been logged", ""


def nul_field(message: Message, prefix: str = "") -> str | None:
    """The path of the first string in `message` (at any depth: nested messages, lists, maps, Structs)
    holding a NUL character, which no database stores (PostgreSQL refuses it); None when there is none."""
    for field, value in message.ListFields():
        path = f"{prefix}/{field.name}"
        if field.type == FieldDescriptor.TYPE_STRING:
            if any("\x00" in item for item in (value if field.is_repeated else [value])):
                return path
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                for key, item in value.items():
                    if isinstance(key, str) and "\x00" in key:
                        return path
                    if isinstance(item, Message):
                        found = nul_field(item, f"{path}/{key}")
                    else:
                        found = f"{path}/{key}" if isinstance(item, str) and "\x00" in item else None
                    if found is not None:
                        return found
            else:
                items = value if field.is_repeated else [value]
                for index, item in enumerate(items):
                    found = nul_field(item, f"{path}/{index}" if field.is_repeated else path)
                    if found is not None:
                        return found
    return None


def _may_hold_nul(message: Message) -> bool:
    """False when the message's wire form has no zero byte at all: then no string in it holds NUL (UTF-8 writes it
    as that byte). The C serializer's test costs a fraction of `nul_field`'s walk in Python, which took about
    17 us per item of an IngestCases batch; the walk still names the field when there may be one."""
    return b"\x00" in message.SerializePartialToString()


def rpc(*, conflict: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION) -> Callable[[Handler], Handler]:
    """Wrap a servicer method: domain and auth errors become a rich status; anything else INTERNAL (and logged).

    `conflict` is the code a Conflict gets in this RPC: ALREADY_EXISTS for creations, FAILED_PRECONDITION otherwise.
    """

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            where = nul_field(request) if isinstance(request, Message) and _may_hold_nul(request) else None
            if where is not None:
                await context.abort_with_status(bad_request(where, f"{where} holds a NUL character (\\u0000)"))
            try:
                return await handler(self, request, context)
            except (DomainError, AuthenticationFailed) as exc:
                await context.abort_with_status(to_status(exc, conflict=conflict))
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                if is_unavailable(exc):
                    log.warning("engine unavailable", rpc=handler.__name__, error=repr(exc)[:300])
                else:
                    log.exception("unhandled error", rpc=handler.__name__)
                await context.abort_with_status(to_status(exc, conflict=conflict))

        return wrapper

    return decorate
