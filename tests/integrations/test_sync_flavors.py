"""jira-sync and servicenow-sync against loopback remotes: auto-creation, pushing the properties the project's
settings send out (and nothing else), rate limits waited out, refusals on the timeline, no echo of remote
changes, retries and dead letters for an unavailable remote."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from casem.adapters.bus.embedded import EmbeddedBus
from casem.adapters.integrations import RateLimitPolicy, adf_to_text
from casem.adapters.storage.tables import remote_objects
from casem.app.cases import updates
from casem.app.cases.service import get_case
from casem.app.context import AppContext
from casem.app.identity.service import create_user
from casem.app.timeline.service import add_comment
from casem.services.case_event_handler.framework import HandlerServices
from casem.services.case_event_handler.runner import FlavorRunner, RetryPolicy
from casem.services.case_event_handler.service import load_flavor
from casem.topology.topics import dead_letter_topic
from tests.integrations.jira_server import JiraLoopback
from tests.integrations.servicenow_server import ServiceNowLoopback
from tests.integrations.support import Connected, OutboxDriver, cells, connect_org, new_case
from tests.support.integration_accounts import remote_systems

FAST = RetryPolicy(max_attempts=3, initial_backoff_s=0.05, max_backoff_s=0.1)


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedBus]:
    embedded = EmbeddedBus(tmp_path / "bus.db")
    yield embedded
    await embedded.close()


def runner(name: str, ctx: AppContext, bus: EmbeddedBus, remotes, retry: RetryPolicy = FAST) -> FlavorRunner:  # type: ignore[no-untyped-def]
    return FlavorRunner(
        load_flavor(name), ctx, bus.producer(), HandlerServices(extras={"integrations": remotes}), retry
    )


async def change(ctx: AppContext, org: Connected, case_id: str, fn, *args, origin=None) -> None:  # type: ignore[no-untyped-def]
    async with ctx.uow() as uow:
        if origin is None:
            await fn(uow, org.org_id, org.user_id, case_id, *args)
        else:
            case = await get_case(uow, org.org_id, case_id)
            with case.changes_from(origin):
                await fn(uow, org.org_id, org.user_id, case_id, *args)
        await uow.commit()


async def test_jira_sync_creates_then_pushes_what_the_settings_send(
    context: AppContext, bus: EmbeddedBus, jira: JiraLoopback
) -> None:
    remotes = remote_systems(jira)
    org = await connect_org(context, remotes, jira=jira)
    async with context.uow() as uow:
        bob = await create_user(uow, org.org_id, jira.human.email, name="Carol in Jira")
        await uow.commit()
    sync = runner("jira-sync", context, bus, remotes)
    driver = OutboxDriver(context)
    case_id = await new_case(context, org, "Disk full on web-1", description="df says 100%", priority="P2")
    await driver.run(sync)
    issue = next(iter(jira.issues.values()))  # auto_creation
    assert (issue.summary, adf_to_text(issue.description), issue.priority) == (
        "Disk full on web-1",
        "df says 100%",
        "High",
    )
    writes = jira.write_count(jira.integration.account_id)

    await change(context, org, case_id, updates.retitle, "Disk full on web-1 and web-2")
    await change(context, org, case_id, updates.transition, "IN_PROGRESS")
    await change(context, org, case_id, updates.prioritize, "P1")
    await change(context, org, case_id, updates.assign, bob.id)
    await change(context, org, case_id, updates.set_due_date, "2031-01-31")
    async with context.uow() as uow:
        cell = await add_comment(uow, org.org_id, org.user_id, case_id, "Rotated the logs")
        await uow.commit()
    await driver.run(sync)

    assert issue.summary == "Disk full on web-1 and web-2"
    assert issue.status == "In Progress" and issue.priority == "Highest"
    assert issue.assignee == jira.human.account_id and issue.duedate == "2031-01-31"
    assert [adf_to_text(c["body"]) for c in issue.comments] == ["Rotated the logs"]
    # title, PUT; status: one transition; priority; assignee; due date; comment → 6 writes, nothing else.
    assert jira.write_count(jira.integration.account_id) - writes == 6
    synced = await cells(context, case_id, "INTEGRATION_SYNC")
    assert [sorted(c["content"]["properties"]) for c in synced] == [
        ["title"],
        ["status"],
        ["priority"],
        ["assignee"],
        ["due_date"],
        ["comment"],
    ]
    async with context.uow(read_only=True) as uow:
        remembered = (await uow.execute(sa.select(remote_objects))).one()
    assert remembered.cell_id == cell.id and remembered.remote_object_id == f"comment:{issue.comments[0]['id']}"

    # Closing moves the issue to Done through its workflow.
    await change(context, org, case_id, updates.transition, "CLOSED")
    await driver.run(sync)
    assert issue.status == "Done"


async def test_properties_the_settings_do_not_send_stay_home(
    context: AppContext, bus: EmbeddedBus, jira: JiraLoopback
) -> None:
    remotes = remote_systems(jira)
    org = await connect_org(
        context,
        remotes,
        jira=jira,
        key="ONEWAY",
        jira_overrides={
            "sync": {
                "enabled": True,
                "properties": {
                    "title": {"sync_type": "jira_to_dd"},
                    "priority": {"sync_type": "none"},
                    "status": {"sync_type": "dd_to_jira"},
                },
            }
        },
    )
    sync = runner("jira-sync", context, bus, remotes)
    driver = OutboxDriver(context)
    case_id = await new_case(context, org, "One way")
    await driver.run(sync)
    issue = next(iter(jira.issues.values()))
    writes = jira.write_count()
    await change(context, org, case_id, updates.retitle, "Renamed here")
    await change(context, org, case_id, updates.prioritize, "P1")
    async with context.uow() as uow:
        await add_comment(uow, org.org_id, org.user_id, case_id, "not sent")
        await uow.commit()
    await driver.run(sync)
    assert jira.write_count() == writes and issue.summary == "One way" and issue.comments == []
    await change(context, org, case_id, updates.transition, "CLOSED")
    await driver.run(sync)
    assert issue.status == "Done" and jira.write_count() == writes + 1


async def test_changes_that_came_from_jira_are_not_sent_back(
    context: AppContext, bus: EmbeddedBus, jira: JiraLoopback
) -> None:
    remotes = remote_systems(jira)
    org = await connect_org(context, remotes, jira=jira, key="ECHO")
    sync = runner("jira-sync", context, bus, remotes)
    driver = OutboxDriver(context)
    case_id = await new_case(context, org, "Echo")
    await driver.run(sync)
    writes = jira.write_count()
    origin = {"system": "jira", "remote_key": "OPS-1", "event_id": "jira:test:1"}
    await change(context, org, case_id, updates.transition, "IN_PROGRESS", origin=origin)
    await change(context, org, case_id, updates.retitle, "From Jira", origin=origin)
    await driver.run(sync)
    assert jira.write_count() == writes
    assert await cells(context, case_id, "INTEGRATION_SYNC") == []
    # The change cells say where the change came from.
    status_cells = await cells(context, case_id, "STATUS_CHANGE")
    assert status_cells[-1]["content"]["origin"]["system"] == "jira"


async def test_rate_limits_are_waited_out(context: AppContext, bus: EmbeddedBus, jira: JiraLoopback) -> None:
    remotes = remote_systems(jira)
    org = await connect_org(context, remotes, jira=jira, key="LIMIT")
    sync = runner("jira-sync", context, bus, remotes)
    driver = OutboxDriver(context)
    case_id = await new_case(context, org, "Limited")
    await driver.run(sync)
    issue = next(iter(jira.issues.values()))
    jira.rate_limit(2, retry_after="1")
    await change(context, org, case_id, updates.retitle, "Limited, then sent")
    await driver.run(sync)
    assert jira.rate_limited == ["/rest/api/3/issue/" + issue.key] * 2
    assert issue.summary == "Limited, then sent"


async def test_a_long_rate_limit_is_retried_then_dead_lettered(
    context: AppContext, bus: EmbeddedBus, jira: JiraLoopback
) -> None:
    remotes = remote_systems(jira, rate_limits=RateLimitPolicy(attempts=2, max_wait_s=0.5))
    org = await connect_org(context, remotes, jira=jira, key="DLQ")
    sync = runner("jira-sync", context, bus, remotes)
    driver = OutboxDriver(context)
    case_id = await new_case(context, org, "Down")
    await driver.run(sync)
    await bus.ensure_topic(dead_letter_topic("jira-sync"), 1)
    consumer = bus.consumer("dlq-reader", [dead_letter_topic("jira-sync")])
    jira.rate_limit(100, retry_after="120")
    await change(context, org, case_id, updates.retitle, "Never arrives")
    await driver.run(sync)
    letters = await consumer.poll(10, timeout=5)
    assert len(letters) == 1
    headers = dict(letters[0].headers)
    assert b"HTTP 429" in headers["dlq_error"] and headers["dlq_attempts"] == b"3"
    await consumer.close()


async def test_a_refused_push_is_on_the_timeline(context: AppContext, bus: EmbeddedBus, jira: JiraLoopback) -> None:
    remotes = remote_systems(jira)
    org = await connect_org(context, remotes, jira=jira, key="REFUSE")
    async with context.uow() as uow:
        stranger = await create_user(uow, org.org_id, "nobody@example.com")
        await uow.commit()
    sync = runner("jira-sync", context, bus, remotes)
    driver = OutboxDriver(context)
    case_id = await new_case(context, org, "Refused")
    await driver.run(sync)
    await change(context, org, case_id, updates.assign, stranger.id)
    await driver.run(sync)
    failed = await cells(context, case_id, "INTEGRATION_SYNC")
    assert failed[-1]["content"]["event"] == "case.integration_sync_failed"
    assert "no user with the e-mail nobody@example.com" in failed[-1]["content"]["reason"]


async def test_servicenow_sync_opens_and_updates_incidents(
    context: AppContext, bus: EmbeddedBus, snow: ServiceNowLoopback, jira: JiraLoopback
) -> None:
    remotes = remote_systems(jira)
    org = await connect_org(context, remotes, snow=snow, key="SNOW")
    sync = runner("servicenow-sync", context, bus, remotes)
    driver = OutboxDriver(context)
    case_id = await new_case(context, org, "Checkout failing", priority="P3")
    await driver.run(sync)
    incident = next(iter(snow.tables["incident"].values()))
    assert incident["short_description"] == "Checkout failing" and incident["priority"] == "3"
    await change(context, org, case_id, updates.prioritize, "P1")
    await change(context, org, case_id, updates.transition, "CLOSED")
    async with context.uow() as uow:
        await add_comment(uow, org.org_id, org.user_id, case_id, "Fixed the certificate")
        await uow.commit()
    await driver.run(sync)
    incident = snow.incident(incident["sys_id"])
    assert (incident["impact"], incident["urgency"], incident["priority"]) == ("1", "1", "1")
    assert incident["state"] == "6" and incident["close_code"] and incident["close_notes"]
    assert [j["value"] for j in snow.comments_of(incident["sys_id"])] == ["Fixed the certificate"]
    assert len(await cells(context, case_id, "INTEGRATION_SYNC")) == 3
    # The Jira flavor has nothing to do for a case that has no Jira issue.
    jira_sync = runner("jira-sync", context, bus, remotes)
    await change(context, org, case_id, updates.retitle, "Checkout fixed")
    await OutboxDriver(context).run(jira_sync)
    assert jira.issues == {}
