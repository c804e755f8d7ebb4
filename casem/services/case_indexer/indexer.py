"""case-indexer: consumer group `case-indexer` on `case-intake`.

Pipeline per message (strategies from casem.adapters.bus.strategies):

1. `RunTask(ingest)`: parse the payload and call case-api `IngestCase` over gRPC, acting as the org and
   user that case-intake authenticated (service credential, see casem/app/internal_auth.py). The
   call is idempotent by intake key, so a redelivered message finds its case instead of duplicating it.
   Partitions run concurrently, messages of one partition in order.
2. `Batch(index)`: the cases of up to `max_batch` messages are read enriched from the tenant database
   (project key, type name, assignee handle, custom attributes, comments) with the same builder as
   `casem search reindex`/`verify`, and written to the index in one bulk request.
3. `CommitOffsets`: offsets move only past messages whose document is written.

A crash anywhere before 3 redelivers the message; both effects are idempotent (same intake key -> same
case, same case -> same document), so the index converges to the database: at-least-once, no doubles.

Errors (the strategies' `Retry` and `DeadLetterPolicy`): a payload that is not one (or an intake case-api
refuses as invalid or unknown) goes to the dead-letter topic `case-intake.dlq` and is committed;
unavailability, timeouts and credential errors are retried with back-off until they pass or the indexer
stops, without committing (a misconfigured token must not dead-letter the whole stream). A failing index
write is retried a few times, then the indexer fails rather than commit past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import structlog
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Histogram

from casem.adapters.availability import is_unavailable
from casem.adapters.bus import Bus, ConsumerOptions, Message, Producer
from casem.adapters.bus.strategies import (
    Batch,
    CommitOffsets,
    CommitPolicy,
    DeadLetterPolicy,
    Retry,
    RetryPolicy,
    RunTask,
    StreamProcessor,
)
from casem.adapters.search import SearchBackendError, SearchPort, search_from_env
from casem.app.context import AppContext
from casem.app.intake.payload import IntakePayload, PayloadError
from casem.app.internal_auth import configured_token, internal_metadata
from casem.app.search.documents import case_documents
from casem.observability import context_from_headers, continued_span, trace_context
from casem.proto_gen.casem.v1 import case_api_pb2_grpc
from casem.topology.tenants import CASE_MANAGEMENT
from casem.topology.topics import DEAD_LETTER_PARTITIONS, intake_topic

log = structlog.get_logger("case-indexer")

INDEXED = Counter("casem_indexer_messages_total", "Intake messages by outcome", ["outcome"])
TO_SEARCHABLE = Histogram(
    "casem_indexer_accept_to_searchable_seconds",
    "From case-intake's acknowledgement to the document being written",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

GROUP = intake_topic().consumers[0].group  # "case-indexer"
# Refusals that no retry can fix: the intake itself is wrong.
PERMANENT = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)


def dead_letter_topic() -> str:
    return f"{intake_topic().name}.dlq"


def transient_rpc_error(error: BaseException) -> bool:
    """A refusal a later call may not meet (unavailable, timeout, credentials being rotated...)."""
    return isinstance(error, grpc.aio.AioRpcError) and error.code() not in PERMANENT


def refused_intake(error: BaseException) -> bool:
    """The intake itself is wrong: not a payload, or one case-api refuses for good."""
    return isinstance(error, PayloadError) or (isinstance(error, grpc.aio.AioRpcError) and error.code() in PERMANENT)


def describe_refusal(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    return str(error)


@dataclass(frozen=True)
class IndexerSettings:
    max_in_flight: int = 64  # concurrent IngestCase calls (across partitions)
    max_batch: int = 500  # documents per bulk write
    linger_s: float = 0.02  # how long a partial batch waits before it is written
    rpc_timeout_s: float = 15.0
    # IngestCase: retried until it passes or the indexer stops.
    ingest_retry: RetryPolicy = RetryPolicy(
        max_attempts=None, initial_backoff_s=0.2, max_backoff_s=10.0, retry_on=transient_rpc_error
    )
    # Index writes: then the indexer fails (and restarts) rather than commit past the write. An engine away
    # (the database for the read, the index for the write) is waited for however long it takes.
    index_retry: RetryPolicy = RetryPolicy(
        max_attempts=8,
        initial_backoff_s=0.2,
        max_backoff_s=10.0,
        retry_on=(SearchBackendError, OSError),
        wait_on=is_unavailable,
    )
    commit_every: int = 500
    session_timeout_s: float = 10.0


class Indexer:
    """Steps 1 and 2; `build_processor` wires them with the consumer."""

    def __init__(
        self,
        stub: case_api_pb2_grpc.CaseAPIStub,
        context: AppContext,
        search: SearchPort,
        dead_letters: Producer,
        token: str,
        settings: IndexerSettings | None = None,
        tenant: str = CASE_MANAGEMENT,
    ) -> None:
        self.stub = stub
        self.context = context
        self.search = search
        self.dead_letters = dead_letters
        self.token = token
        self.settings = settings or IndexerSettings()
        self.tenant = tenant
        # Message position -> (org id, case id, accepted_at) ingested; absent: dead-lettered, nothing to index.
        self._ingested: dict[tuple[str, int, int], tuple[str, str, str]] = {}
        self.ingest_retry = Retry(self.settings.ingest_retry, on_retry=self._ingest_retrying)
        self.index_retry = Retry(self.settings.index_retry, on_retry=self._index_retrying)
        self.dead_letter = DeadLetterPolicy(
            dead_letters,
            lambda _message: dead_letter_topic(),
            poison=refused_intake,
            describe=describe_refusal,
            on_dead_letter=self._dead_lettered,
        )

    def stop(self) -> None:
        """Shutting down: IngestCase calls stop retrying, leaving their messages uncommitted for the next owner."""
        self.ingest_retry.stop()
        self.index_retry.stop()  # a write waiting for its engine gives up: its batch stays uncommitted

    async def ingest(self, message: Message) -> None:
        """One attempt at step 1 (the pipeline retries it and dead-letters refused intakes); continues the
        intake's trace (carried in the message headers) through the call to case-api."""
        attributes = {"messaging.source.partition": message.partition, "messaging.message.offset": message.offset}
        with continued_span(
            "case-indexer ingest", context_from_headers(message.headers), SpanKind.CONSUMER, attributes
        ):
            await self._ingest(message)

    async def _ingest(self, message: Message) -> None:
        position = (message.topic, message.partition, message.offset)
        self._ingested.pop(position, None)
        payload = IntakePayload.from_bytes(message.value)
        metadata = internal_metadata(self.token, payload.org_id, payload.user_id) + tuple(trace_context().items())
        response = await self.stub.IngestCase(payload.intake, metadata=metadata, timeout=self.settings.rpc_timeout_s)
        INDEXED.labels("created" if response.created else "existing").inc()
        self._ingested[position] = (payload.org_id, response.case.id, payload.accepted_at)

    async def index(self, messages: list[Message]) -> None:
        """Write the documents of the cases these messages ingested (one read, one bulk write)."""
        refs: list[tuple[str, str, str]] = []
        for m in messages:
            ref = self._ingested.pop((m.topic, m.partition, m.offset), None)
            if ref is not None:
                refs.append(ref)
        if not refs:
            return
        await self.index_retry.call(self._write, refs)
        now = datetime.now(UTC)
        for _, _, accepted_at in refs:
            with contextlib.suppress(ValueError):
                TO_SEARCHABLE.observe((now - datetime.fromisoformat(accepted_at)).total_seconds())
        INDEXED.labels("indexed").inc(len(refs))

    async def _write(self, refs: list[tuple[str, str, str]]) -> None:
        # The master, not a replica: the case was committed a moment ago.
        async with self.context.uow(self.tenant, read_only=True) as uow:
            docs = await case_documents(uow, [(org, case_id) for org, case_id, _ in refs])
        if docs:
            await self.search.bulk_upsert(self.tenant, list(docs.values()))
        for org, case_id, _ in refs:
            if case_id not in docs:  # deleted since it was ingested: it must not linger
                await self.search.delete(self.tenant, org, case_id)

    def _ingest_retrying(self, error: BaseException, attempt: int, delay_s: float, message: Message) -> None:
        INDEXED.labels("retried").inc()
        rpc = error if isinstance(error, grpc.aio.AioRpcError) else None
        intake_key = None
        with contextlib.suppress(PayloadError):  # it parsed before the call failed
            intake_key = IntakePayload.from_bytes(message.value).intake.intake_key
        log.warning(
            "IngestCase failed; retrying",
            code=rpc.code().name if rpc else type(error).__name__,
            details=rpc.details() if rpc else str(error),
            intake_key=intake_key,
            attempt=attempt,
            backoff_s=delay_s,
        )

    def _index_retrying(self, error: BaseException, attempt: int, delay_s: float, refs: object) -> None:
        log.warning("index write failed; retrying", error=str(error), attempt=attempt, backoff_s=delay_s)

    def _dead_lettered(self, message: Message, error: str, attempts: int) -> None:
        INDEXED.labels("dead_lettered").inc()
        log.error("dead-lettering intake", partition=message.partition, offset=message.offset, error=error)


def build_processor(indexer: Indexer, consumer: object) -> StreamProcessor:
    s = indexer.settings
    commit = CommitOffsets(consumer, CommitPolicy(s.commit_every, 1.0))  # type: ignore[arg-type]
    batch = Batch(indexer.index, commit, max_batch=s.max_batch, linger_s=s.linger_s)
    strategy = RunTask(
        indexer.ingest,
        batch,
        max_in_flight=s.max_in_flight,
        retry=indexer.ingest_retry,
        dead_letter=indexer.dead_letter,
    )
    return StreamProcessor(consumer, strategy, poll_timeout_s=0.05)  # type: ignore[arg-type]


async def run_indexer(
    context: AppContext,
    bus: Bus,
    case_api_address: str,
    *,
    search: SearchPort | None = None,
    token: str | None = None,
    settings: IndexerSettings | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """`casem run case-indexer`: run until `stop` (without one: SIGINT/SIGTERM), then finish and commit in-flight work.

    `context`: tenant databases (read only, for the enriched read). `case_api_address`: case-api's gRPC
    host:port. `token`: the service credential (default CASEM_INTERNAL_TOKEN; case-api must have the same).
    `search`: default search_from_env() with writes that wait until searchable."""
    token = token or configured_token()
    if not token:
        raise RuntimeError("case-indexer needs CASEM_INTERNAL_TOKEN (the same value as case-api's)")
    settings = settings or IndexerSettings()
    owned_search = search is None
    if search is None:
        env = dict(os.environ)
        env.setdefault("CASEM_SEARCH_WRITE_REFRESH", "wait_for")  # "searchable immediately"
        search = search_from_env(env)
    await search.ensure_index(CASE_MANAGEMENT)
    await bus.ensure_topic(intake_topic().name, intake_topic().partitions)
    await bus.ensure_topic(dead_letter_topic(), DEAD_LETTER_PARTITIONS)
    consumer = bus.consumer(GROUP, [intake_topic().name], ConsumerOptions(session_timeout_s=settings.session_timeout_s))
    producer = bus.producer()
    channel = grpc.aio.insecure_channel(case_api_address)
    indexer = Indexer(case_api_pb2_grpc.CaseAPIStub(channel), context, search, producer, token, settings)
    processor = build_processor(indexer, consumer)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
                loop.add_signal_handler(sig, stop.set)

    async def stopper() -> None:
        await stop.wait()
        indexer.stop()
        processor.stop()

    watcher = asyncio.create_task(stopper())
    log.info("case-indexer started", group=GROUP, topic=intake_topic().name, case_api=case_api_address)
    try:
        await processor.run()
    finally:
        watcher.cancel()
        await consumer.close()
        await producer.close()
        await channel.close()
        if owned_search:
            await search.close()
        log.info("case-indexer stopped")
