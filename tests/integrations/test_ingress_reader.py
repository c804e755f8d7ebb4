"""Connector ingress and case-third-party-reader with loopback remotes delivering real webhooks: signatures, unknown
issues, comments and status changes reaching the case timeline, idempotence, no echo of casem's own pushes, stale
copies, and the reconciliation poll catching what webhooks missed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from casem.adapters.bus import Bus, Message
from casem.adapters.bus.embedded import EmbeddedBus
from casem.adapters.bus.strategies import DeadLetterInfo, dead_letter_headers
from casem.adapters.storage.tables import handler_processed_events
from casem.app.cases import updates
from casem.app.cases.service import get_case
from casem.app.context import AppContext
from casem.app.identity.service import create_user
from casem.app.integrations.remote_events import RemoteEvent
from casem.app.integrations.remotes import RemoteSystems
from casem.app.timeline.service import add_comment
from casem.services.case_connector_ingress.app import Ingress, create_ingress_app
from casem.services.case_connector_ingress.poller import poll_once
from casem.services.case_event_handler.framework import HandlerServices
from casem.services.case_event_handler.runner import FlavorRunner
from casem.services.case_event_handler.service import load_flavor
from casem.services.case_third_party_reader.dlq import list_reader_dead_letters, replay_reader_dead_letters
from casem.services.case_third_party_reader.runner import ReaderRunner, RetryPolicy, processed_name
from casem.services.case_third_party_reader.service import build_processor, prepare_topics
from casem.topology.topics import reader_dead_letter_topic, reader_group, third_party_topic
from tests.integrations.jira_server import JiraLoopback
from tests.integrations.servicenow_server import SECRET_HEADER, ServiceNowLoopback
from tests.integrations.support import WEBHOOK_SECRET, Connected, OutboxDriver, cells, connect_org, new_case
from tests.support.integration_accounts import remote_systems


@dataclass
class Stack:
    ctx: AppContext
    bus: Bus
    remotes: RemoteSystems
    url: str
    org: Connected

    def webhook_url(self, system: str) -> str:
        account = self.org.jira_account_id if system == "jira" else self.org.servicenow_instance_id
        return f"{self.url}/webhooks/{system}/{account}"


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedBus]:
    embedded = EmbeddedBus(tmp_path / "bus.db", heartbeat_interval_s=0.2)
    for flavor in ("jira", "servicenow"):
        await prepare_topics(embedded, flavor)
    yield embedded
    await embedded.close()


@pytest.fixture
async def stack(
    context: AppContext, bus: EmbeddedBus, jira: JiraLoopback, snow: ServiceNowLoopback
) -> AsyncIterator[Stack]:
    remotes = remote_systems(jira)
    org = await connect_org(context, remotes, jira=jira, snow=snow, key="READ")
    producer = bus.producer()
    server = uvicorn.Server(
        uvicorn.Config(
            create_ingress_app(Ingress(context, remotes, producer)), host="127.0.0.1", port=0, log_level="warning"
        )
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    built = Stack(context, bus, remotes, url, org)
    jira.register_webhook(built.webhook_url("jira"), WEBHOOK_SECRET)
    snow.register_outbound(built.webhook_url("servicenow"), WEBHOOK_SECRET)
    yield built
    server.should_exit = True
    await task
    await producer.close()


async def feed(bus: Bus, flavor: str, group: str = "probe") -> list[Message]:
    consumer = bus.consumer(group, [third_party_topic(flavor).name])
    try:
        found = []
        while batch := await consumer.poll(500, timeout=1.0):
            found.extend(batch)
        return found
    finally:
        await consumer.close()


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


class Reader:
    """A reader flavor consuming its feed in the seed's group, in the test's loop."""

    def __init__(self, stack: Stack, flavor: str, group: str | None = None) -> None:
        self.runner = ReaderRunner(
            flavor, stack.ctx, stack.bus.producer(), RetryPolicy(max_attempts=2, initial_backoff_s=0.05)
        )
        self.consumer = stack.bus.consumer(group or reader_group(flavor), [third_party_topic(flavor).name])
        self.processor = build_processor(self.runner, self.consumer, commit_every=1)
        self.task = asyncio.create_task(self.processor.run())

    async def stop(self) -> None:
        self.processor.stop()
        await asyncio.wait_for(self.task, 30)
        await self.consumer.close()


def outcomes(flavor: str, outcome: str) -> float:
    from casem.services.case_third_party_reader.runner import EVENTS

    return EVENTS.labels(flavor, outcome)._value.get()


async def drained(stack: Stack, flavor: str) -> None:
    """Wait until the reader recorded every message of its feed as processed (each test has its own bus and
    databases, so the counts start at zero)."""
    total = len(await feed(stack.bus, flavor, group=f"count-{time.monotonic_ns()}"))

    async def done() -> bool:
        return await processed(stack.ctx, flavor) >= total

    await until(done, f"the {flavor} reader to process {total} changes")


async def processed(ctx: AppContext, flavor: str) -> int:
    async with ctx.uow(read_only=True) as uow:
        return await uow.scalar(
            sa.select(sa.func.count())
            .select_from(handler_processed_events)
            .where(handler_processed_events.c.flavor == processed_name(flavor))
        )


async def linked_jira_case(stack: Stack, jira: JiraLoopback) -> tuple[str, str]:
    """A case with its Jira issue, created by the jira-sync flavor (auto-creation); answers (case id, issue key)."""
    case_id = await new_case(stack.ctx, stack.org, "Payments are slow")
    sync = FlavorRunner(
        load_flavor("jira-sync"),
        stack.ctx,
        stack.bus.producer(),
        HandlerServices(extras={"integrations": stack.remotes}),
    )
    driver = OutboxDriver(stack.ctx)
    await driver.run(sync)
    return case_id, next(i.key for i in jira.issues.values() if f"casem-case-{case_id}" in i.labels)


def human(jira: JiraLoopback) -> httpx.Client:
    return httpx.Client(base_url=jira.url, auth=jira.auth_of(jira.human), timeout=10)


async def test_bad_signatures_are_401_and_publish_nothing(stack: Stack, jira: JiraLoopback) -> None:
    body = b'{"webhookEvent": "jira:issue_created", "timestamp": 1, "issue": {"id": "1", "key": "OPS-1", "fields": {}}}'
    async with httpx.AsyncClient() as http:
        for headers in ({}, {"X-Hub-Signature": "sha256=" + "0" * 64}, {"X-Hub-Signature": "md5=abc"}):
            response = await http.post(stack.webhook_url("jira"), content=body, headers=headers)
            assert response.status_code == 401, response.text
        unknown = await http.post(f"{stack.url}/webhooks/jira/00000000-0000-0000-0000-000000000000", content=body)
        assert unknown.status_code == 401
        not_a_uuid = await http.post(f"{stack.url}/webhooks/jira/../../etc", content=body)
        assert not_a_uuid.status_code in (401, 404)
        wrong_secret = await http.post(stack.webhook_url("servicenow"), content=b"{}", headers={SECRET_HEADER: "guess"})
        assert wrong_secret.status_code == 401
        # A Jira account id on the ServiceNow route is no ServiceNow instance.
        crossed = await http.post(
            f"{stack.url}/webhooks/servicenow/{stack.org.jira_account_id}",
            content=b"{}",
            headers={SECRET_HEADER: WEBHOOK_SECRET},
        )
        assert crossed.status_code == 401
    assert await feed(stack.bus, "jira") == [] and await feed(stack.bus, "servicenow") == []
    # Signed but not a Jira delivery: 400, and still nothing published.
    junk = b'{"hello": "world"}'
    signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), junk, hashlib.sha256).hexdigest()
    async with httpx.AsyncClient() as http:
        response = await http.post(stack.webhook_url("jira"), content=junk, headers={"X-Hub-Signature": signature})
    assert response.status_code == 400 and "webhookEvent" in response.json()["errors"][0]["detail"]
    assert await feed(stack.bus, "jira") == []


async def test_an_unknown_issue_is_acknowledged_and_counted(stack: Stack, jira: JiraLoopback) -> None:
    with human(jira) as http:
        made = http.post(
            "/rest/api/3/issue",
            json={"fields": {"project": {"key": "OPS"}, "issuetype": {"id": "10001"}, "summary": "not ours"}},
        ).json()
        http.post(
            f"/rest/api/3/issue/{made['key']}/comment", json={"body": {"type": "doc", "version": 1, "content": []}}
        )
    await asyncio.to_thread(jira.webhooks.wait_idle)
    assert {d.status for d in jira.webhooks.delivered} == {202}
    messages = await feed(stack.bus, "jira")
    assert len(messages) == 2 and {m.key for m in messages} == {f"{stack.org.jira_account_id}:{made['id']}".encode()}
    unlinked = outcomes("jira", "unlinked")
    reader = Reader(stack, "jira")
    try:
        await drained(stack, "jira")
    finally:
        await reader.stop()
    assert outcomes("jira", "unlinked") - unlinked == 2


async def test_remote_comments_and_status_reach_the_timeline_once(stack: Stack, jira: JiraLoopback) -> None:
    async with stack.ctx.uow() as uow:
        carol = await create_user(uow, stack.org.org_id, jira.human.email, name="Carol")
        await uow.commit()
    case_id, key = await linked_jira_case(stack, jira)
    await asyncio.to_thread(jira.webhooks.wait_idle)
    reader = Reader(stack, "jira")
    try:
        with human(jira) as http:
            http.post(
                f"/rest/api/3/issue/{key}/comment",
                json={
                    "body": {
                        "type": "doc",
                        "version": 1,
                        "content": [
                            {"type": "paragraph", "content": [{"type": "text", "text": "Found the slow query"}]}
                        ],
                    }
                },
            )
            http.post(f"/rest/api/3/issue/{key}/transitions", json={"transition": {"id": "21"}})
            http.put(f"/rest/api/3/issue/{key}", json={"fields": {"priority": {"name": "Highest"}}})
        await asyncio.to_thread(jira.webhooks.wait_idle)

        async def arrived() -> bool:
            async with stack.ctx.uow(read_only=True) as uow:
                case = await get_case(uow, stack.org.org_id, case_id)
            return (
                case.status == "IN_PROGRESS"
                and case.priority == "P1"
                and len(await cells(stack.ctx, case_id, "COMMENT")) == 1
            )

        await until(arrived, "the remote changes on the case")
    finally:
        await reader.stop()
    comment = (await cells(stack.ctx, case_id, "COMMENT"))[0]
    assert comment["content"]["message"] == "Found the slow query"
    assert comment["author_id"] == carol.id  # the Jira author's e-mail matched a casem user
    assert comment["content"]["origin"]["system"] == "jira" and comment["content"]["origin"]["remote_key"] == key
    status = (await cells(stack.ctx, case_id, "STATUS_CHANGE"))[-1]
    assert status["content"]["origin"]["actor"]["email"] == jira.human.email
    before = await processed(stack.ctx, "jira")
    # The whole feed again (a new group reads from the start): nothing is applied twice.
    total = len(await feed(stack.bus, "jira", group="count"))
    duplicates = outcomes("jira", "duplicate")
    again = Reader(stack, "jira", group="case-management-replay")
    try:

        async def replayed() -> bool:
            return outcomes("jira", "duplicate") - duplicates >= total

        await until(replayed, "the replay")
    finally:
        await again.stop()
    assert len(await cells(stack.ctx, case_id, "COMMENT")) == 1
    assert len(await cells(stack.ctx, case_id, "STATUS_CHANGE")) == 1
    assert await processed(stack.ctx, "jira") == before


async def test_casem_pushes_coming_back_are_not_applied(stack: Stack, jira: JiraLoopback) -> None:
    case_id, key = await linked_jira_case(stack, jira)
    sync = FlavorRunner(
        load_flavor("jira-sync"),
        stack.ctx,
        stack.bus.producer(),
        HandlerServices(extras={"integrations": stack.remotes}),
    )
    driver = OutboxDriver(stack.ctx)
    async with stack.ctx.uow(read_only=True) as uow:
        driver.seen = await uow.scalar(sa.text("SELECT max(seq) FROM domain_events"))  # only what happens from now on
    own = outcomes("jira", "own_change")
    reader = Reader(stack, "jira")
    try:
        async with stack.ctx.uow() as uow:
            await updates.transition(uow, stack.org.org_id, stack.org.user_id, case_id, "IN_PROGRESS")
            await uow.commit()
        async with stack.ctx.uow() as uow:
            await add_comment(uow, stack.org.org_id, stack.org.user_id, case_id, "from casem")
            await uow.commit()
        writes = jira.write_count()
        await driver.run(sync)
        assert jira.write_count() - writes == 2  # the transition and the comment
        await asyncio.to_thread(jira.webhooks.wait_idle)
        await drained(stack, "jira")
        await driver.run(sync)  # whatever the reader recorded is not pushed again
    finally:
        await reader.stop()
    assert jira.write_count() - writes == 2
    assert len(await cells(stack.ctx, case_id, "COMMENT")) == 1
    # The issue's creation, its transition and the comment all came back as casem's own changes.
    assert outcomes("jira", "own_change") - own == 3


async def test_a_late_copy_of_an_older_change_is_stale(stack: Stack, jira: JiraLoopback) -> None:
    case_id, key = await linked_jira_case(stack, jira)
    issue = next(i for i in jira.issues.values() if i.key == key)
    account_id = stack.org.jira_account_id
    assert account_id is not None
    now = datetime.now(UTC)

    def change(n: int, status: str, category: str, at: datetime) -> RemoteEvent:
        return RemoteEvent(
            id=f"jira:{account_id}:changelog:manual-{n}",
            system="jira",
            kind="issue_updated",
            tenant="case-management",
            org_id=stack.org.org_id,
            account_id=account_id,
            issue_id=issue.id,
            issue_key=key,
            occurred_at=at,
            source="poll",
            actor={"id": jira.human.account_id, "name": "Carol", "email": jira.human.email},
            changes={"status": {"name": status, "category": category}},
        )

    runner = ReaderRunner("jira", stack.ctx, stack.bus.producer())
    assert await runner.apply(change(1, "Done", "done", now)) == "applied"
    assert await runner.apply(change(2, "In Progress", "indeterminate", now - timedelta(minutes=1))) == "stale"
    assert await runner.apply(change(1, "Done", "done", now)) == "duplicate"
    async with stack.ctx.uow(read_only=True) as uow:
        assert (await get_case(uow, stack.org.org_id, case_id)).status == "CLOSED"


async def test_the_reconciliation_poll_catches_missed_webhooks(stack: Stack, jira: JiraLoopback) -> None:
    case_id, key = await linked_jira_case(stack, jira)
    await asyncio.to_thread(jira.webhooks.wait_idle)
    jira.webhooks.paused = True  # every webhook from now on is lost
    with human(jira) as http:
        http.post(
            f"/rest/api/3/issue/{key}/comment",
            json={
                "body": {
                    "type": "doc",
                    "version": 1,
                    "content": [{"type": "paragraph", "content": [{"type": "text", "text": "missed"}]}],
                }
            },
        )
        http.post(f"/rest/api/3/issue/{key}/transitions", json={"transition": {"id": "31"}})
    assert len(jira.webhooks.dropped) == 2
    producer = stack.bus.producer()
    try:
        published = await poll_once(stack.ctx, stack.remotes, producer, lookback=timedelta(hours=1))
        assert published >= 2
        again = await poll_once(stack.ctx, stack.remotes, producer, lookback=timedelta(hours=1))  # overlap: same ids
    finally:
        await producer.close()
    assert again >= 2
    reader = Reader(stack, "jira")
    try:

        async def caught_up() -> bool:
            async with stack.ctx.uow(read_only=True) as uow:
                case = await get_case(uow, stack.org.org_id, case_id)
            return case.status == "CLOSED" and len(await cells(stack.ctx, case_id, "COMMENT")) == 1

        await until(caught_up, "the polled changes")
        # The lost webhooks arrive after all (a late retry): the same ids, nothing applied twice.
        duplicates = outcomes("jira", "duplicate")
        jira.webhooks.paused = False
        for body in jira.webhooks.dropped:
            jira.webhooks.send(body)
        await asyncio.to_thread(jira.webhooks.wait_idle)

        async def skipped() -> bool:
            return outcomes("jira", "duplicate") - duplicates >= 2

        await until(skipped, "the late webhooks")
    finally:
        await reader.stop()
    assert len(await cells(stack.ctx, case_id, "COMMENT")) == 1
    assert len(await cells(stack.ctx, case_id, "STATUS_CHANGE")) == 1


async def test_servicenow_messages_and_poll(stack: Stack, snow: ServiceNowLoopback) -> None:
    case_id = await new_case(stack.ctx, stack.org, "Checkout failing", priority="P3")
    sync = FlavorRunner(
        load_flavor("servicenow-sync"),
        stack.ctx,
        stack.bus.producer(),
        HandlerServices(extras={"integrations": stack.remotes}),
    )
    await OutboxDriver(stack.ctx).run(sync)
    incident = next(iter(snow.tables["incident"].values()))
    await asyncio.to_thread(snow.webhooks.wait_idle)
    reader = Reader(stack, "servicenow")
    beth = httpx.Client(base_url=snow.url, auth=("beth.agent", "beth-pass"), timeout=10)
    try:
        beth.patch(f"/api/now/table/incident/{incident['sys_id']}", json={"comments": "Restarted the gateway"})
        beth.patch(f"/api/now/table/incident/{incident['sys_id']}", json={"impact": "1", "urgency": "1"})
        beth.patch(
            f"/api/now/table/incident/{incident['sys_id']}",
            json={"state": "6", "close_code": "Solved (Permanently)", "close_notes": "gateway"},
        )
        await asyncio.to_thread(snow.webhooks.wait_idle)

        async def arrived() -> bool:
            async with stack.ctx.uow(read_only=True) as uow:
                case = await get_case(uow, stack.org.org_id, case_id)
            return (
                case.status == "CLOSED"
                and case.priority == "P1"
                and len(await cells(stack.ctx, case_id, "COMMENT")) == 1
            )

        await until(arrived, "the ServiceNow changes")
        comment = (await cells(stack.ctx, case_id, "COMMENT"))[0]
        assert comment["content"]["message"] == "Restarted the gateway"
        assert comment["content"]["origin"]["actor"]["name"] == "beth.agent"
        # The poll reads the incident as it is now and its comment: the ids the last webhooks had already
        # published, so the reader skips both.
        duplicates = outcomes("servicenow", "duplicate")
        producer = stack.bus.producer()
        try:
            assert await poll_once(stack.ctx, stack.remotes, producer, lookback=timedelta(hours=1)) == 2
        finally:
            await producer.close()

        async def skipped() -> bool:
            return outcomes("servicenow", "duplicate") - duplicates == 2

        await until(skipped, "the polled copies")
    finally:
        beth.close()
        await reader.stop()
    assert len(await cells(stack.ctx, case_id, "COMMENT")) == 1
    assert len(await cells(stack.ctx, case_id, "STATUS_CHANGE")) == 1


async def dead_letters_on(bus: Bus, flavor: str) -> list[Message]:
    consumer = bus.consumer(f"dlq-probe-{time.monotonic_ns()}", [reader_dead_letter_topic(flavor)])
    try:
        found: list[Message] = []
        while batch := await consumer.poll(500, timeout=1.0):
            found.extend(batch)
        return found
    finally:
        await consumer.close()


async def test_a_change_that_cannot_be_read_is_dead_lettered_at_once_and_listed(stack: Stack) -> None:
    producer = stack.bus.producer()
    try:
        await producer.publish(third_party_topic("jira").name, b"acct:1", b"not a change at all")
    finally:
        await producer.close()
    reader = Reader(stack, "jira")
    try:

        async def dead_lettered() -> bool:
            return len(await dead_letters_on(stack.bus, "jira")) == 1

        await until(dead_lettered, "the unreadable change on the dead-letter topic")
    finally:
        await reader.stop()
    [letter] = await dead_letters_on(stack.bus, "jira")
    info = DeadLetterInfo.of(letter.headers)
    assert letter.value == b"not a change at all" and letter.key == b"acct:1"
    assert info.attempts == 1  # poison: no retries
    assert info.extra["flavor"] == "case-third-party-reader-jira"
    assert info.source.startswith(third_party_topic("jira").name)
    [listed] = await list_reader_dead_letters(stack.bus, "jira")
    assert listed.event_id is None and listed.error == info.error and "not a casem integration event" in listed.error
    assert await list_reader_dead_letters(stack.bus, "servicenow") == []


async def test_dead_letters_are_replayed_once_through_the_reader(stack: Stack, jira: JiraLoopback) -> None:
    case_id, key = await linked_jira_case(stack, jira)
    await asyncio.to_thread(jira.webhooks.wait_idle)
    with human(jira) as http:
        text = {"type": "paragraph", "content": [{"type": "text", "text": "Replayed from the dead letters"}]}
        body = {"body": {"type": "doc", "version": 1, "content": [text]}}
        http.post(f"/rest/api/3/issue/{key}/comment", json=body)
    await asyncio.to_thread(jira.webhooks.wait_idle)
    changes = [m for m in await feed(stack.bus, "jira") if RemoteEvent.from_bytes(m.value).is_comment]
    assert len(changes) == 1
    # As if the reader had given up on it while its database was away (no reader ran on the feed).
    topic = reader_dead_letter_topic("jira")
    producer = stack.bus.producer()
    gone = "OperationalError: the database is away"

    async def dead_letter(message: Message) -> None:
        headers = dead_letter_headers(message, gone, 5, {"flavor": "case-third-party-reader-jira"})
        await producer.publish(topic, message.key, message.value, headers)

    runner = ReaderRunner("jira", stack.ctx, producer)
    try:
        await dead_letter(changes[0])
        [listed] = await list_reader_dead_letters(stack.bus, "jira")
        assert listed.error == gone and listed.attempts == 5
        assert listed.event_id == RemoteEvent.from_bytes(changes[0].value).id
        first = await replay_reader_dead_letters(stack.bus, runner)
        assert (first.applied, first.already_applied, first.failed) == (1, 0, None)
        [cell] = await cells(stack.ctx, case_id, "COMMENT")
        assert cell["content"]["message"] == "Replayed from the dead letters"
        # Replayed once: the replay group committed it, so a second replay finds nothing new.
        second = await replay_reader_dead_letters(stack.bus, runner)
        assert (second.applied, second.already_applied, second.failed) == (0, 0, None)
        # The same change dead-lettered again (a redelivery) is recognised as applied; an unreadable one stops
        # the replay there, uncommitted, and stays for the next.
        await dead_letter(changes[0])
        await producer.publish(topic, b"acct:2", b"garbage", dead_letter_headers(changes[0], "bad", 1))
        third = await replay_reader_dead_letters(stack.bus, runner)
        assert (third.applied, third.already_applied) == (0, 1)
        assert third.failed is not None and third.failed.event_id is None and "PoisonMessage" in (third.failure or "")
        again = await replay_reader_dead_letters(stack.bus, runner)
        assert again.failed is not None and again.failed.offset == third.failed.offset
    finally:
        await producer.close()
    assert len(await cells(stack.ctx, case_id, "COMMENT")) == 1
