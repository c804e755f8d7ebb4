"""Follow-up automation on chat: automation rules with CHAT_EXCERPT_ADDED and CHAT_ACTION triggers, evaluated
by the automation-rules flavor from the events the chat use cases record (embedded bus and Kafka, SQLite and
PostgreSQL), and the trigger rules themselves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from casem.adapters.storage.tables import automation_runs, cases
from casem.app.automation.rules import create_rule
from casem.app.cases.service import NewCase, create_case
from casem.app.chat import service
from casem.app.context import AppContext
from casem.app.identity.service import bootstrap_org
from casem.app.projects.service import create_project
from casem.domain.automation import trigger_fires, validate_trigger
from casem.domain.chat import ChatAction, ChatMessage, Conversation
from casem.domain.errors import InvalidInput
from casem.services.case_event_handler.runner import FlavorRunner
from casem.services.case_event_handler.service import load_flavor
from tests.handlers.test_runner import publish_outbox, run_until
from tests.support.bus_harness import Harness

SLACK_THREAD = Conversation("slack", "T0AUTO", "C0INC", "1700000000.000100")


def said(ts: str, text: str) -> ChatMessage:
    return ChatMessage(ts, "U0BOB", "Bob", text, datetime.fromtimestamp(float(ts), UTC))


async def test_chat_rules_reopen_closed_cases_and_raise_priority_on_a_keyword(
    context: AppContext,  # noqa: F811
    harness: Harness,  # noqa: F811
) -> None:
    async with context.uow() as uow:
        creds = await bootstrap_org(uow, "org-auto", "ada@auto.example")
        org, ada = creds.org_id, creds.user_id
        project = await create_project(uow, org, ada, key="AUT", name="Auto")
        for name, trigger, action in (
            (
                "reopen",
                {"type": "CHAT_EXCERPT_ADDED", "data": {"case_status_name": "Closed"}},
                {"type": "SET_STATUS", "data": {"status_name": "OPEN"}},
            ),
            (
                "sev",
                {"type": "CHAT_EXCERPT_ADDED", "data": {"keyword": "sev"}},
                {"type": "SET_PRIORITY", "data": {"priority": "P1"}},
            ),
            (
                "ack note",
                {"type": "CHAT_ACTION", "data": {"chat_action": "ACKNOWLEDGE", "platform": "slack"}},
                {"type": "ADD_COMMENT", "data": {"comment": "acknowledged from chat"}},
            ),
        ):
            await create_rule(uow, org, ada, project.id, {"name": name, "trigger": trigger, "action": action})
        closed = await create_case(uow, org, ada, NewCase(project.id, "Closed one", status="CLOSED"))
        calm = await create_case(uow, org, ada, NewCase(project.id, "Calm one"))
        severe = await create_case(uow, org, ada, NewCase(project.id, "Severe one"))
        await uow.commit()
    async with context.uow() as uow:
        await service.append_excerpt(uow, org, None, closed.id, SLACK_THREAD, [said("1700000001.1", "it is back")])
        await service.append_excerpt(uow, org, None, calm.id, SLACK_THREAD, [said("1700000002.1", "several users ok")])
        await service.append_excerpt(uow, org, None, severe.id, SLACK_THREAD, [said("1700000003.1", "this is SEV-1!")])
        await service.perform_action(uow, org, ada, calm.id, ChatAction("ACKNOWLEDGE"), SLACK_THREAD, "U0ADA")
        await uow.commit()

    bus = harness.bus()
    topic, _ = await publish_outbox(context, harness, bus)
    runner = FlavorRunner(load_flavor("automation-rules"), context, harness.producer(bus))

    async def ran() -> bool:
        async with context.uow(read_only=True) as uow:
            return int(await uow.scalar(sa.select(sa.func.count()).select_from(automation_runs))) >= 3

    await run_until(runner, harness, bus, topic, harness.name("automation"), ran)
    async with context.uow(read_only=True) as uow:
        rows = {r.id: r for r in (await uow.execute(sa.select(cases).where(cases.c.org_id == org))).all()}
        runs = (await uow.execute(sa.select(automation_runs.c.case_id, automation_runs.c.outcome))).all()
    assert rows[closed.id].status == "OPEN"  # an excerpt on a closed case reopened it
    assert rows[severe.id].priority == "P1" and rows[calm.id].priority == "NOT_DEFINED"  # "several" is not "sev"
    assert rows[calm.id].status == "IN_PROGRESS"
    assert sorted((case_id, outcome) for case_id, outcome in runs) == sorted(
        [(closed.id, "applied"), (severe.id, "applied"), (calm.id, "applied")]
    )

    async with context.uow(read_only=True) as uow:
        from casem.adapters.storage.tables import timeline_cells

        notes = await uow.scalar(
            sa.select(sa.func.count())
            .select_from(timeline_cells)
            .where(timeline_cells.c.case_id == calm.id, timeline_cells.c.type == "COMMENT")
        )
    assert notes == 1


def test_chat_triggers_validate_and_match() -> None:
    assert validate_trigger({"type": "CHAT_EXCERPT_ADDED", "data": {"keyword": "sev", "platform": "teams"}})
    for bad, pointer in (
        ({"type": "CHAT_EXCERPT_ADDED", "data": {"keyword": "  "}}, "/data/attributes/trigger/data/keyword"),
        ({"type": "CHAT_EXCERPT_ADDED", "data": {"platform": "irc"}}, "/data/attributes/trigger/data/platform"),
        ({"type": "CHAT_EXCERPT_ADDED", "data": {"chat_action": "CLOSE"}}, "/data/attributes/trigger/data/chat_action"),
        ({"type": "CHAT_ACTION", "data": {"chat_action": "DANCE"}}, "/data/attributes/trigger/data/chat_action"),
        ({"type": "COMMENT_ADDED", "data": {"keyword": "x"}}, "/data/attributes/trigger/data/keyword"),
        (
            {"type": "CHAT_EXCERPT_ADDED", "data": {"case_status_name": "Gone"}},
            "/data/attributes/trigger/data/case_status_name",
        ),
    ):
        with pytest.raises(InvalidInput) as err:
            validate_trigger(bad)
        assert err.value.pointer == pointer
    excerpt = {"said": "the SEV 2 page fired", "case_status": "OPEN", "conversation": {"platform": "slack"}}
    assert trigger_fires(
        {"type": "CHAT_EXCERPT_ADDED", "data": {"keyword": "sev 2"}}, "case.chat_excerpt_added", excerpt
    )
    assert not trigger_fires(
        {"type": "CHAT_EXCERPT_ADDED", "data": {"keyword": "sev 3"}}, "case.chat_excerpt_added", excerpt
    )
    assert not trigger_fires(
        {"type": "CHAT_EXCERPT_ADDED", "data": {"platform": "teams"}}, "case.chat_excerpt_added", excerpt
    )
    assert not trigger_fires({"type": "CHAT_EXCERPT_ADDED"}, "case.comment_added", excerpt)
    action = {"action": "CLOSE", "conversation": {"platform": "teams"}}
    assert trigger_fires({"type": "CHAT_ACTION"}, "case.chat_action", action)
    assert not trigger_fires(
        {"type": "CHAT_ACTION", "data": {"chat_action": "ACKNOWLEDGE"}}, "case.chat_action", action
    )
