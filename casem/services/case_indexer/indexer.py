"""case-indexer: consumer group `case-indexer` on `case-intake`.

Pipeline per message (strategies from casem.adapters.bus.strategies):

1. `RunTask(ingest)`: parse the payload and call case-api `IngestCase` over gRPC, acting as the org and
   user that case-intake authenticated (service credential, see case_api/grpc/internal_auth.py). The
   call is idempotent by intake key, so a redelivered message finds its case instead of duplicating it.
   Partitions run concurrently, messages of one partition in order.
2. `IndexBatch`: the cases of up to `max_batch` messages are read enriched from the tenant database
   (project key, type name, assignee handle, custom attributes, comments) with the same builder as
   `casem search reindex`/`verify`, and written to the index in one bulk request.
3. `CommitOffsets`: offsets move only past messages whose document is written.

A crash anywhere before 3 redelivers the message; both effects are idempotent (same intake key -> same
case, same case -> same document), so the index converges to the database: at-least-once, no doubles.

Errors: a payload that is not one (or an intake case-api refuses as invalid or unknown) goes to the
dead-letter topic `case-intake.dlq` and is committed; unavailability, timeouts and credential errors are
retried with back-off without committing (a misconfigured token must not dead-letter the whole stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import structlog
from opentelemetry.trace import SpanKind
from prometheus_client import Counter, Histogram

from casem.adapters.bus import Bus, ConsumerOptions, Message, Producer
from casem.adapters.bus.strategies import (
    CommitOffsets,
    CommitPolicy,
    ProcessingStrategy,
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


@dataclass(frozen=True)
class IndexerSettings:
    max_in_flight: int = 64  # concurrent IngestCase calls (across partitions)
    max_batch: int = 500  # documents per bulk write
    linger_s: float = 0.02  # how long a partial batch waits before it is written
    rpc_timeout_s: float = 15.0
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 10.0
    index_attempts: int = 8  # then the indexer fails (and restarts) rather than commit past the write
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
        # Message position -> (org id, case id, accepted_at) ingested, or None: dead-lettered, nothing to index.
        self._ingested: dict[tuple[str, int, int], tuple[str, str, str] | None] = {}
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True

    async def ingest(self, message: Message) -> None:
        """Continues the intake's trace (carried in the message headers) through the call to case-api."""
        attributes = {"messaging.source.partition": message.partition, "messaging.message.offset": message.offset}
        with continued_span(
            "case-indexer ingest", context_from_headers(message.headers), SpanKind.CONSUMER, attributes
        ):
            await self._ingest(message)

    async def _ingest(self, message: Message) -> None:
        position = (message.topic, message.partition, message.offset)
        try:
            payload = IntakePayload.from_bytes(message.value)
        except PayloadError as exc:
            await self.dead_letter(message, str(exc))
            self._ingested[position] = None
            return
        metadata = internal_metadata(self.token, payload.org_id, payload.user_id) + tuple(trace_context().items())
        backoff = self.settings.initial_backoff_s
        while True:
            try:
                response = await self.stub.IngestCase(
                    payload.intake, metadata=metadata, timeout=self.settings.rpc_timeout_s
                )
                break
            except grpc.aio.AioRpcError as exc:
                if exc.code() in PERMANENT:
                    await self.dead_letter(message, f"{exc.code().name}: {exc.details()}")
                    self._ingested[position] = None
                    return
                if self._stopping:
                    raise  # shutting down: leave it uncommitted for the next owner
                INDEXED.labels("retried").inc()
                log.warning(
                    "IngestCase failed; retrying",
                    code=exc.code().name,
                    details=exc.details(),
                    intake_key=payload.intake.intake_key,
                    backoff_s=backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.max_backoff_s)
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
        backoff = self.settings.initial_backoff_s
        for attempt in range(1, self.settings.index_attempts + 1):
            try:
                # The master, not a replica: the case was committed a moment ago.
                async with self.context.uow(self.tenant, read_only=True) as uow:
                    docs = await case_documents(uow, [(org, case_id) for org, case_id, _ in refs])
                if docs:
                    await self.search.bulk_upsert(self.tenant, list(docs.values()))
                for org, case_id, _ in refs:
                    if case_id not in docs:  # deleted since it was ingested: it must not linger
                        await self.search.delete(self.tenant, org, case_id)
                break
            except (SearchBackendError, OSError) as exc:
                if attempt == self.settings.index_attempts:
                    raise
                log.warning("index write failed; retrying", error=str(exc), attempt=attempt)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.max_backoff_s)
        now = datetime.now(UTC)
        for _, _, accepted_at in refs:
            with contextlib.suppress(ValueError):
                TO_SEARCHABLE.observe((now - datetime.fromisoformat(accepted_at)).total_seconds())
        INDEXED.labels("indexed").inc(len(refs))

    async def dead_letter(self, message: Message, error: str) -> None:
        INDEXED.labels("dead_lettered").inc()
        log.error("dead-lettering intake", partition=message.partition, offset=message.offset, error=error)
        headers = (
            *message.headers,
            ("dlq_error", error[:2000].encode()),
            ("dlq_source", f"{message.topic}/{message.partition}/{message.offset}".encode()),
            ("dlq_at", datetime.now(UTC).isoformat().encode()),
        )
        # Raises when not acknowledged: the message then stays uncommitted and comes back.
        await self.dead_letters.publish(dead_letter_topic(), message.key, message.value, headers)


class IndexBatch:
    """Strategy step: collect finished messages, index their cases in one write, then forward them in order.

    Writes run in the background, up to `max_pending` batches at once, so a write that waits for the
    engine's refresh does not stall ingestion; batches are forwarded (and so committed) strictly in order,
    and a full pipeline refuses new messages (back-pressure) instead of buffering without bound.
    """

    def __init__(
        self,
        index: Callable[[list[Message]], object],
        next_step: ProcessingStrategy,
        *,
        max_batch: int,
        linger_s: float,
        max_pending: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._index = index
        self._next = next_step
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._max_pending = max_pending
        self._clock = clock
        self._buffer: list[Message] = []
        self._since = 0.0
        self._pending: deque[tuple[list[Message], asyncio.Task[object]]] = deque()

    async def submit(self, message: Message) -> None:
        # Never refuse: the previous step has already handed the message over. When every write slot is
        # busy and the buffer is full, wait for the oldest write instead (back-pressure by blocking).
        while len(self._buffer) >= self._max_batch and len(self._pending) >= self._max_pending:
            await asyncio.wait({self._pending[0][1]})
            await self._forward_done()
        if not self._buffer:
            self._since = self._clock()
        self._buffer.append(message)
        if len(self._buffer) >= self._max_batch and len(self._pending) < self._max_pending:
            self._start()

    def _start(self) -> None:
        batch, self._buffer = self._buffer, []
        self._pending.append((batch, asyncio.ensure_future(self._index(batch))))  # type: ignore[arg-type]

    async def _forward_done(self) -> None:
        while self._pending and self._pending[0][1].done():
            batch, task = self._pending.popleft()
            task.result()  # raises the write's failure: nothing of this batch (or later) is forwarded
            for message in batch:
                await self._next.submit(message)

    async def poll(self) -> None:
        await self._forward_done()
        if (
            self._buffer
            and len(self._pending) < self._max_pending
            and (len(self._buffer) >= self._max_batch or self._clock() - self._since >= self._linger_s)
        ):
            self._start()
        await self._next.poll()

    async def wait_for_room(self, timeout: float) -> None:
        if self._pending:
            await asyncio.wait({self._pending[0][1]}, timeout=timeout)

    async def join(self, timeout: float | None = None) -> None:
        if self._buffer:
            self._start()
        if self._pending:
            await asyncio.wait([t for _, t in self._pending], timeout=timeout)
        await self._forward_done()
        await self._next.join(timeout)

    async def close(self) -> None:
        self._buffer.clear()  # not indexed, so not committed: redelivered
        for _, task in self._pending:
            task.cancel()
        await asyncio.gather(*(t for _, t in self._pending), return_exceptions=True)
        self._pending.clear()
        await self._next.close()


def build_processor(indexer: Indexer, consumer: object) -> StreamProcessor:
    s = indexer.settings
    commit = CommitOffsets(consumer, CommitPolicy(s.commit_every, 1.0))  # type: ignore[arg-type]
    batch = IndexBatch(indexer.index, commit, max_batch=s.max_batch, linger_s=s.linger_s)
    strategy = RunTask(indexer.ingest, batch, max_in_flight=s.max_in_flight)
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
