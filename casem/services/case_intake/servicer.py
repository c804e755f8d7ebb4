"""casem.v1.CaseIntakeService: authenticate, validate, publish, answer after the bus acknowledged."""

from __future__ import annotations

from typing import Any

import grpc
import structlog
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from prometheus_client import Counter

from casem.adapters.bus import BusError, OutgoingMessage
from casem.app.auth import Principal, authenticate
from casem.app.cache import TtlCache
from casem.app.context import AppContext
from casem.app.intake.payload import CONTENT_TYPE_HEADER, IntakePayload
from casem.app.intake.validation import DataChecks, KnownReferences, validate_shape
from casem.domain.errors import InvalidInput
from casem.observability import bus_headers
from casem.proto_gen.casem.v1 import intake_pb2
from casem.proto_gen.casem.v1 import intake_service_pb2 as pb
from casem.proto_gen.casem.v1 import intake_service_pb2_grpc as pb_grpc
from casem.services.case_intake.publisher import Backpressure, IntakePublisher
from casem.services.common.grpc_auth import invocation_metadata, key_pair
from casem.services.common.grpc_errors import request_pointer, rpc, status_with_details
from casem.topology.topics import intake_topic

log = structlog.get_logger("case-intake")

ACCEPTED = Counter("casem_intake_accepted_total", "Intakes acknowledged by the bus")
REFUSED = Counter("casem_intake_refused_total", "Intakes refused", ["code"])

MAX_BATCH = 1_000
AUTH_CACHE_TTL_S = 5.0  # a revoked key keeps working at most this long on a busy intake
UNAVAILABLE_RETRY_S = 2.0
BACKPRESSURE_RETRY_S = 0.5


def _retry_status(code: grpc.StatusCode, message: str, seconds: float) -> grpc.Status:
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(int(seconds * 1e9))
    return status_with_details(code, message, error_details_pb2.RetryInfo(retry_delay=delay))


class IntakeServicer(pb_grpc.CaseIntakeServiceServicer):
    def __init__(self, context: AppContext, publisher: IntakePublisher) -> None:
        self.ctx = context
        self.publisher = publisher
        self.topic = intake_topic().name
        # (api key, app key) -> principal: high-volume producers reuse one pair of keys.
        self._auth_cache: TtlCache[tuple[str, str], Principal] = TtlCache(AUTH_CACHE_TTL_S)
        self._known = KnownReferences()  # the projects and types batches go to, as the keys above

    async def _principal(self, context: grpc.aio.ServicerContext) -> Principal:
        api_key, app_key = key_pair(invocation_metadata(context))
        cached = self._auth_cache.get((api_key, app_key))
        if cached is not None:
            return cached
        async with self.ctx.uow(read_only=True) as uow:
            principal = await authenticate(uow, api_key, app_key)
        self._auth_cache.put((api_key, app_key), principal)
        return principal

    async def _validate(self, who: Principal, intakes: list[intake_pb2.CaseIntake], batch: bool) -> None:
        current = 0  # the item being checked, to name it in a batch's error
        try:
            for current in range(len(intakes)):
                validate_shape(intakes[current])
            seen: set[str] = set()
            for current in range(len(intakes)):
                key = intakes[current].intake_key
                if key in seen:
                    raise InvalidInput(f"intake_key {key!r} appears twice in the batch", "/intake_key")
                seen.add(key)
            async with DataChecks(lambda: self.ctx.uow(read_only=True), who.org_id, self._known) as checks:
                for current in range(len(intakes)):
                    await checks.check(intakes[current])
        except InvalidInput as exc:
            if batch:  # name the item: /intakes/3/title
                raise InvalidInput(exc.detail, f"/intakes/{current}{request_pointer(exc.pointer)}") from None
            raise

    async def _accept(
        self, context: grpc.aio.ServicerContext, intakes: list[intake_pb2.CaseIntake], batch: bool
    ) -> Any:
        # Domain and auth errors propagate to @rpc, which maps them as CaseAPI does.
        who = await self._principal(context)
        await self._validate(who, intakes, batch)
        payloads = [IntakePayload.new(who.org_id, who.user_id, intake) for intake in intakes]
        # The call's trace rides along in the headers: the indexer continues it.
        headers = (CONTENT_TYPE_HEADER, *bus_headers())
        messages = [OutgoingMessage(self.topic, p.key, p.to_bytes(), headers) for p in payloads]
        try:
            deliveries = await self.publisher.publish(messages)
        except Backpressure as exc:
            REFUSED.labels("RESOURCE_EXHAUSTED").inc()
            await context.abort_with_status(
                _retry_status(
                    grpc.StatusCode.RESOURCE_EXHAUSTED, f"case-intake is saturated: {exc}", BACKPRESSURE_RETRY_S
                )
            )
        except BusError as exc:
            REFUSED.labels("UNAVAILABLE").inc()
            log.warning("intake not accepted: bus unavailable", error=str(exc), intakes=len(intakes))
            await context.abort_with_status(
                _retry_status(
                    grpc.StatusCode.UNAVAILABLE,
                    f"the intake was not accepted (the message bus did not acknowledge it): {exc}",
                    UNAVAILABLE_RETRY_S,
                )
            )
        ACCEPTED.inc(len(intakes))
        return [
            pb.SubmitResponse(intake_key=i.intake_key, partition=d.partition, offset=d.offset)
            for i, d in zip(intakes, deliveries, strict=True)
        ]

    @rpc(conflict=grpc.StatusCode.ALREADY_EXISTS)
    async def Submit(self, request: intake_pb2.CaseIntake, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        return (await self._accept(context, [request], batch=False))[0]

    @rpc(conflict=grpc.StatusCode.ALREADY_EXISTS)
    async def SubmitBatch(self, request: pb.SubmitBatchRequest, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802
        intakes = list(request.intakes)
        if not intakes or len(intakes) > MAX_BATCH:
            raise InvalidInput(f"a batch holds 1 to {MAX_BATCH} intakes, not {len(intakes)}", "/intakes")
        return pb.SubmitBatchResponse(accepted=await self._accept(context, intakes, batch=True))
