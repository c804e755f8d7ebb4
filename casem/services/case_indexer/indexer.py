"""case-indexer: consumer group `case-indexer` on `case-intake`.

Pipeline (strategies from casem.adapters.bus.strategies):

1. `Batch(ingest)`: up to `ingest_batch` messages are parsed and handed to case-api `IngestCases` over gRPC
   in one call (split by size), each item acting as the org and user that case-intake authenticated
   (service credential, see casem/app/internal_auth.py). case-api creates the batch in one transaction; the
   call is idempotent by intake key, so a redelivered message finds its case instead of duplicating it.
2. `Batch(index)`: the documents of up to `max_batch` messages' cases are written to the index in one bulk
   request. IngestCases returns the document of each case it created, built by the same builder as
   `casem search reindex`/`verify` from what the creation had at hand (project key, type name, assignee
   handle), so a new case is not read back; a case it found by intake key (a redelivery) is read enriched from
   the tenant database, as it is now. While batch N is being indexed, batch N+1 is being created: each step
   keeps a bounded number of batches in flight.
3. `CommitOffsets`: offsets move only past messages whose case is created and whose document is written.

A crash anywhere before 3 redelivers the message; both effects are idempotent (same intake key -> same
case, same case -> same document), so the index converges to the database: at-least-once, no doubles.

Errors (the strategies' `Retry` and `DeadLetterPolicy`): a payload that is not one (or an intake case-api
refuses as invalid or unknown) goes to the dead-letter topic `case-intake.dlq` and is committed;
unavailability, timeouts and credential errors are retried with back-off until they pass or the indexer
stops, without committing (a misconfigured token must not dead-letter the whole stream). An engine being away
(the search engine for the write, also at start-up, or the database for the read) is waited for in place, however
long: nothing is committed past the unwritten batches, /readyz answers 503 naming the engine meanwhile, and the log
has one line when it goes and one when it is back (`EngineWaits`). Any other failing index write is retried a few
times, then the indexer fails rather than commit past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import structlog
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from prometheus_client import Counter, Histogram

from casem.adapters.availability import is_unavailable
from casem.adapters.bus import Bus, BusUnavailable, Consumer, ConsumerOptions, Message, Producer
from casem.adapters.bus.strategies import (
    Batch,
    CommitOffsets,
    CommitPolicy,
    DeadLetterPolicy,
    Retry,
    RetryPolicy,
    StreamProcessor,
)
from casem.adapters.search import SearchBackendError, SearchPort, search_from_env
from casem.adapters.search.document import CaseDocument, StampedDocument, stamped
from casem.app.context import AppContext
from casem.app.intake.payload import IntakePayload, PayloadError
from casem.app.internal_auth import INTERNAL_TOKEN_METADATA, configured_token
from casem.app.search.documents import case_documents
from casem.observability import context_from_headers, start_span, trace_context
from casem.proto_gen.casem.v1 import case_api_pb2, case_api_pb2_grpc
from casem.services.common.ops import EngineWaits
from casem.services.common.waiting import engine_of, ensure_topics_waiting
from casem.topology.tenants import CASE_MANAGEMENT
from casem.topology.topics import DEAD_LETTER_PARTITIONS, intake_topic

log = structlog.get_logger("case-indexer")

INDEXED = Counter("casem_indexer_messages_total", "Intake messages by outcome", ["outcome"])
TO_SEARCHABLE = Histogram(
    "casem_indexer_accept_to_searchable_seconds",
    "From case-intake's acknowledgement to the document being written (searchable at the engine's next refresh)",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
# Where the time goes, stage by stage (the intake bench reads these to name the bottleneck): `ingest` is the
# IngestCases call, `read` the enriched read of a batch's cases, `write` the bulk write to the engine.
STAGE_SECONDS = Histogram(
    "casem_indexer_stage_seconds",
    "Duration of one batch in an indexer stage",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STAGE_ITEMS = Counter("casem_indexer_stage_items_total", "Intakes or documents through an indexer stage", ["stage"])

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


class ItemRefused(Exception):
    """case-api refused one item of an IngestCases batch (its code and message)."""

    def __init__(self, code: grpc.StatusCode, message: str, field: str = "") -> None:
        super().__init__(f"{code.name}: {message}" + (f" ({field})" if field else ""))
        self.code = code


def transient_rpc_error(error: BaseException) -> bool:
    """A refusal a later call may not meet (unavailable, timeout, credentials being rotated...)."""
    if isinstance(error, ItemRefused):
        return error.code not in PERMANENT
    return isinstance(error, grpc.aio.AioRpcError) and error.code() not in PERMANENT


def refused_intake(error: BaseException) -> bool:
    """The intake itself is wrong: not a payload, or one case-api refuses for good."""
    if isinstance(error, ItemRefused):
        return error.code in PERMANENT
    return isinstance(error, PayloadError) or (isinstance(error, grpc.aio.AioRpcError) and error.code() in PERMANENT)


def describe_refusal(error: BaseException) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    return str(error)


@dataclass(frozen=True)
class IndexerSettings:
    ingest_batch: int = 1000  # intakes per IngestCases transaction
    ingest_in_flight: int = 2  # IngestCases batches at once (the next is created while one commits)
    max_request_bytes: int = 3 * 1024 * 1024  # an IngestCases request is split below gRPC's message limit
    max_batch: int = 1000  # documents per bulk write
    # Bulk writes at once: few, so that the batches arriving while they run coalesce into the next, bigger bulk. The
    # engine has a write thread per core: many small bulks at once only queue there, each paying its request's cost
    # (8 in flight: batches of ~19 documents and 66 busy seconds for 7,505 of them; 2: ~25 and 29 busy seconds).
    index_in_flight: int = 2
    linger_s: float = 0.005  # how long a partial batch waits for company before it goes
    rpc_timeout_s: float = 30.0
    # IngestCases: retried until it passes or the indexer stops.
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


@dataclass(frozen=True)
class _Ingested:
    """An intake's case, created or found by IngestCases, waiting for its document to be written."""

    org_id: str
    case_id: str
    accepted_at: str
    # The document IngestCases built for a case it created (as the database has it, unchanged since unless a later
    # change wins by its version), stamped; None for a case it found: read then.
    document: StampedDocument | None


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
        waits: EngineWaits | None = None,
    ) -> None:
        self.stub = stub
        self.context = context
        self.search = search
        self.dead_letters = dead_letters
        self.token = token
        self.settings = settings or IndexerSettings()
        self.tenant = tenant
        self.waits = waits or EngineWaits(log, "case-indexer")
        # Message position -> what its intake became; absent: dead-lettered, nothing to index.
        self._ingested: dict[tuple[str, int, int], _Ingested] = {}
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
        """Shutting down: IngestCases calls stop retrying, leaving their messages uncommitted for the next owner."""
        self.ingest_retry.stop()
        self.index_retry.stop()  # a write waiting for its engine gives up: its batch stays uncommitted

    async def ingest(self, messages: list[Message]) -> None:
        """Step 1 for a batch: create the cases (retried while case-api is unreachable); dead-letter refusals."""
        parsed: list[tuple[Message, IntakePayload]] = []
        for message in messages:
            self._ingested.pop((message.topic, message.partition, message.offset), None)
            try:
                parsed.append((message, IntakePayload.from_bytes(message.value)))
            except PayloadError as error:
                await self.dead_letter.publish(message, error, 1)
        for chunk in self._by_size(parsed):
            await self._ingest_or_split(chunk)

    async def _ingest_or_split(self, chunk: list[tuple[Message, IntakePayload]]) -> None:
        """A call case-api refuses whole for good (a NUL anywhere in the request, say) is sent again item by item,
        so that only the intake at fault is dead-lettered."""
        try:
            await self.ingest_retry.call(self._ingest_chunk, chunk)
        except grpc.aio.AioRpcError as error:
            if not refused_intake(error):
                raise
            if len(chunk) == 1:
                await self.dead_letter.publish(chunk[0][0], error, 1)
                return
            for entry in chunk:
                await self._ingest_or_split([entry])

    def _by_size(self, parsed: list[tuple[Message, IntakePayload]]) -> list[list[tuple[Message, IntakePayload]]]:
        chunks: list[list[tuple[Message, IntakePayload]]] = [[]]
        size = 0
        for entry in parsed:
            weight = len(entry[0].value)
            if chunks[-1] and size + weight > self.settings.max_request_bytes:
                chunks.append([])
                size = 0
            chunks[-1].append(entry)
            size += weight
        return [c for c in chunks if c]

    async def _ingest_chunk(self, chunk: list[tuple[Message, IntakePayload]]) -> None:
        """One IngestCases call. Refused items are dead-lettered; an item refused for a reason that may pass
        (its user disabled a moment, say) fails the call, which is retried whole (it is idempotent)."""
        # One span per intake, continuing the trace its message carries: the batch is no one's trace.
        spans = [_ingest_span(message) for message, _ in chunk]
        request = case_api_pb2.IngestCasesRequest(
            items=[
                case_api_pb2.IngestItem(
                    org_id=p.org_id, user_id=p.user_id, intake=p.intake, trace=trace_context(span) if span else {}
                )
                for (_, p), span in zip(chunk, spans, strict=True)
            ],
            # This indexer writes each created case's document (step 2) before committing its offset: the
            # search-indexing flavor need not read and write it again on the case's creation event.
            indexed_by_caller=True,
        )
        try:
            with _stage("ingest", len(chunk)):
                response = await self.stub.IngestCases(
                    request, metadata=((INTERNAL_TOKEN_METADATA, self.token),), timeout=self.settings.rpc_timeout_s
                )
        except BaseException as error:
            for span in spans:
                if span is not None:
                    span.set_status(Status(StatusCode.ERROR, str(error)))
                    span.end()
            raise
        for span, result in zip(spans, response.results, strict=True):
            if span is not None:
                if result.error_code:
                    span.set_status(Status(StatusCode.ERROR, result.error_message))
                span.end()
        refused: list[tuple[Message, ItemRefused]] = []
        created = 0
        for (message, payload), result in zip(chunk, response.results, strict=True):
            if result.error_code:
                error = ItemRefused(_status_code(result.error_code), result.error_message, result.error_field)
                if not refused_intake(error):
                    raise error
                refused.append((message, error))
                continue
            created += result.created
            self._ingested[(message.topic, message.partition, message.offset)] = _Ingested(
                payload.org_id,
                result.case_id,
                payload.accepted_at,
                _received_document(result),
            )
        INDEXED.labels("created").inc(created)  # counted once a call, not once an intake: labels() takes a lock
        INDEXED.labels("existing").inc(len(chunk) - len(refused) - created)
        for message, error in refused:
            await self.dead_letter.publish(message, error, 1)

    async def index(self, messages: list[Message]) -> None:
        """Write the documents of the cases these messages ingested (one bulk write; a read first for the cases
        IngestCases gave no document of)."""
        refs: list[_Ingested] = []
        for m in messages:
            ref = self._ingested.pop((m.topic, m.partition, m.offset), None)
            if ref is not None:
                refs.append(ref)
        if not refs:
            return
        await self.index_retry.call(self._write, refs)
        self.waits.back()  # the read and the write went through: whatever was awaited answers again
        now = datetime.now(UTC)
        for ref in refs:
            with contextlib.suppress(ValueError):
                TO_SEARCHABLE.observe((now - datetime.fromisoformat(ref.accepted_at)).total_seconds())
        INDEXED.labels("indexed").inc(len(refs))

    async def _write(self, refs: list[_Ingested]) -> None:
        docs: dict[str, CaseDocument | StampedDocument] = {
            ref.case_id: ref.document for ref in refs if ref.document is not None
        }
        unread = [(ref.org_id, ref.case_id) for ref in refs if ref.document is None]
        # Read as they are now: cases found by their intake key (a redelivery; perhaps changed since), and cases whose
        # custom attributes hold a number the database gives back otherwise (see created_case_document).
        if unread:
            # The master, not a replica: the case was committed a moment ago.
            with _stage("read", len(unread)):
                async with self.context.uow(self.tenant, read_only=True) as uow:
                    docs |= await case_documents(uow, unread)
        if docs:
            with _stage("write", len(docs)):
                # The search-indexing flavor leaves a created case's document to this write (IngestCases marks its
                # `case.created`), but a later change of the case may reach the flavor first, and a redelivered batch
                # finds its documents written: the same revision stored is the same document, turned away by the
                # engine, not indexed twice.
                await self.search.bulk_upsert(self.tenant, list(docs.values()), replace_equal=False)
        for ref in refs:
            if ref.case_id not in docs:  # deleted since it was ingested: it must not linger
                await self.search.delete(self.tenant, ref.org_id, ref.case_id)

    def _ingest_retrying(
        self, error: BaseException, attempt: int, delay_s: float, chunk: list[tuple[Message, IntakePayload]]
    ) -> None:
        INDEXED.labels("retried").inc(len(chunk))
        rpc = error if isinstance(error, grpc.aio.AioRpcError) else None
        log.warning(
            "IngestCases failed; retrying",
            code=rpc.code().name if rpc else type(error).__name__,
            details=rpc.details() if rpc else str(error),
            intakes=len(chunk),
            first_intake_key=chunk[0][1].intake.intake_key if chunk else None,
            attempt=attempt,
            backoff_s=delay_s,
        )

    async def ensure_index(self) -> None:
        """The tenant's index exists: waited for while the search engine is away (start-up must not crash-loop)."""
        await self.index_retry.call(self.search.ensure_index, self.tenant)
        self.waits.back()

    async def ensure_topics(self, bus: Bus) -> None:
        """The intake topic and the dead-letter topic exist: waited for while the bus is away (CI's outage test saw
        the indexer restarted again and again while Kafka was down, each start failing here)."""
        topics = [(intake_topic().name, intake_topic().partitions), (dead_letter_topic(), DEAD_LETTER_PARTITIONS)]
        if not await ensure_topics_waiting(bus, topics, self.waits, retry=self.index_retry):
            raise BusUnavailable("stopped while waiting for the bus")  # run_indexer ends: its stop is set

    def _index_retrying(self, error: BaseException, attempt: int, delay_s: float, *args: object) -> None:
        if self.settings.index_retry.waits_for(error):
            INDEXED.labels("waited").inc()
            self.waits.waiting(engine_of(error), error)  # logs once per outage, not once per wait
            return
        log.warning("index write failed; retrying", error=str(error), attempt=attempt, backoff_s=delay_s)

    def _dead_lettered(self, message: Message, error: str, attempts: int) -> None:
        INDEXED.labels("dead_lettered").inc()
        log.error("dead-lettering intake", partition=message.partition, offset=message.offset, error=error)


def build_processor(indexer: Indexer, consumer: object) -> StreamProcessor:
    s = indexer.settings
    commit = CommitOffsets(consumer, CommitPolicy(s.commit_every, 1.0))  # type: ignore[arg-type]
    index = Batch(indexer.index, commit, max_batch=s.max_batch, linger_s=s.linger_s, max_pending=s.index_in_flight)
    ingest = Batch(indexer.ingest, index, max_batch=s.ingest_batch, linger_s=s.linger_s, max_pending=s.ingest_in_flight)
    return StreamProcessor(consumer, ingest, max_batch=s.ingest_batch)  # type: ignore[arg-type]


@contextlib.contextmanager
def _stage(name: str, items: int) -> Iterator[None]:
    """Time one batch through a stage (successful passes only: a failed one is retried and counted then)."""
    started = time.perf_counter()
    yield
    STAGE_SECONDS.labels(name).observe(time.perf_counter() - started)
    STAGE_ITEMS.labels(name).inc(items)


def _ingest_span(message: Message) -> Span | None:
    """A span for one intake's step 1, the child of the intake's own (its message headers carry it); None for an
    untraced intake. Not made current: each intake of a batch has its own trace."""
    return start_span(
        "case-indexer ingest",
        context_from_headers(message.headers),
        SpanKind.CONSUMER,
        {"messaging.source.partition": message.partition, "messaging.message.offset": message.offset},
    )


def _received_document(result: case_api_pb2.IngestResult) -> StampedDocument | None:
    """The stamped document IngestCases gave for a case it created; None when it gave none, or one that does not check
    out (the case is read then, as a found one is: a document is an accelerator, the database is the truth)."""
    if not result.document:
        return None
    try:
        return stamped(result.document, result.document_version)
    except ValueError as error:  # not JSON, not an object, not stamped, a field missing
        log.warning(
            "IngestCases gave a document that does not check out; reading the case",
            case_id=result.case_id,
            error=str(error),
        )
        return None


def _status_code(number: int) -> grpc.StatusCode:
    return next((code for code in grpc.StatusCode if code.value[0] == number), grpc.StatusCode.UNKNOWN)


async def run_indexer(
    context: AppContext,
    bus: Bus,
    case_api_address: str,
    *,
    search: SearchPort | None = None,
    token: str | None = None,
    settings: IndexerSettings | None = None,
    stop: asyncio.Event | None = None,
    waits: EngineWaits | None = None,
) -> None:
    """`casem run case-indexer`: run until `stop` (without one: SIGINT/SIGTERM), then finish and commit in-flight work.

    `context`: tenant databases (read only, for the enriched read). `case_api_address`: case-api's gRPC
    host:port. `token`: the service credential (default CASEM_INTERNAL_TOKEN; case-api must have the same).
    `search`: default search_from_env(). Its writes do not wait for a refresh: a document is searchable after the
    engine's next periodic one (OpenSearch's index.refresh_interval, 1 s by default), which a `wait_for` write would
    wait for all the same, but holding one of `index_in_flight` slots meanwhile: under a steady stream the slots run
    out, batches queue behind refreshes and both throughput and time to searchable suffer. Offsets are committed
    once the engine acknowledged the write (durable in its translog), searchable or not yet.
    CASEM_SEARCH_WRITE_REFRESH=wait_for restores writes that return only once searchable.
    `waits`: the engines it is waiting for (its readiness reports them; see `EngineWaits`)."""
    token = token or configured_token()
    if not token:
        raise RuntimeError("case-indexer needs CASEM_INTERNAL_TOKEN (the same value as case-api's)")
    settings = settings or IndexerSettings()
    owned_search = search is None
    if search is None:
        search = search_from_env()
    producer = bus.producer()
    channel = grpc.aio.insecure_channel(case_api_address)
    indexer = Indexer(case_api_pb2_grpc.CaseAPIStub(channel), context, search, producer, token, settings, waits=waits)
    consumer: Consumer | None = None
    processor: StreamProcessor | None = None
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
                loop.add_signal_handler(sig, stop.set)

    async def stopper() -> None:
        await stop.wait()
        indexer.stop()
        if processor is not None:
            processor.stop()

    watcher = asyncio.create_task(stopper())
    try:
        try:
            # Both wait while their engine is away; stopping meanwhile ends the wait.
            await indexer.ensure_topics(bus)
            await indexer.ensure_index()
        except Exception:
            if stop.is_set():
                return
            raise
        consumer = bus.consumer(
            GROUP, [intake_topic().name], ConsumerOptions(session_timeout_s=settings.session_timeout_s)
        )
        processor = build_processor(indexer, consumer)
        if stop.is_set():  # stopped while it started: the stopper found no processor to stop
            return
        log.info("case-indexer started", group=GROUP, topic=intake_topic().name, case_api=case_api_address)
        await processor.run()
    finally:
        watcher.cancel()
        if consumer is not None:
            await consumer.close()
        await producer.close()
        await channel.close()
        if owned_search:
            await search.close()
        log.info("case-indexer stopped")
