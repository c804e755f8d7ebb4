"""An idle chat inbox worker backs off (few looks while nothing comes), yet a request recorded after a quiet spell
is applied at once (the bridge wakes it) and a postponed item is retried when it falls due, not at the end of a
long back-off."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from casem.app.cases.service import NewCase, create_case
from casem.app.context import AppContext
from tests.chat.bridge_support import BridgeRig, open_rig, until
from tests.support.slack_api import SlackApi, running_slack


@pytest.fixture
def slack() -> AsyncIterator[SlackApi]:
    with running_slack() as api:
        yield api


async def _case(rig: BridgeRig, title: str) -> tuple[str, str]:
    async with rig.ctx.uow() as uow:
        case = await create_case(uow, rig.org.org_id, rig.org.admin, NewCase(rig.org.project_id, title))
        await uow.commit()
    return case.id, case.key


async def _acknowledged(rig: BridgeRig, key: str) -> bool:
    row = await rig.case(key)
    return row is not None and row.status == "IN_PROGRESS"


def _rig(context: AppContext, slack: SlackApi, monkeypatch: pytest.MonkeyPatch, **polling: float) -> Any:
    return contextlib.asynccontextmanager(open_rig)(context, slack, monkeypatch, **polling)


async def test_an_idle_worker_backs_off(context: AppContext, slack: SlackApi, monkeypatch: pytest.MonkeyPatch) -> None:
    # Starting at 10 ms, a worker without back-off would look about 150 times in 1.5 s; this one doubles its
    # wait up to 0.5 s: about ten looks.
    async with _rig(context, slack, monkeypatch, poll_s=0.01, max_poll_s=0.5) as rig:
        before = rig.bridge.worker.looks
        await asyncio.sleep(1.5)
        assert 1 <= rig.bridge.worker.looks - before <= 40


async def test_a_request_after_a_quiet_spell_is_applied_at_once(
    context: AppContext, slack: SlackApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker looked once at start and would look again in an hour: the recorded request wakes it.
    async with _rig(context, slack, monkeypatch, poll_s=3600.0, max_poll_s=3600.0) as rig:
        await asyncio.sleep(0.5)
        case_id, key = await _case(rig, "after a quiet spell")
        await rig.interaction(rig.button("casem_acknowledge", case_id, "U0BOB"))
        await until(lambda: _acknowledged(rig, key), timeout=20)


async def test_a_postponed_item_is_retried_when_due_not_after_the_idle_back_off(
    context: AppContext, slack: SlackApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Backed off to an hour, the worker still comes back for the rate-limited item when its Retry-After (1 s) ends.
    async with _rig(context, slack, monkeypatch, poll_s=3600.0, max_poll_s=3600.0) as rig:
        rig.slack.rate_limit("users.info", times=1, retry_after=1)
        case_id, key = await _case(rig, "rate limited")
        await rig.interaction(rig.button("casem_acknowledge", case_id, "U0BOB"))
        await until(lambda: _acknowledged(rig, key), timeout=30)
        assert len(rig.slack.calls_of("users.info")) >= 2  # the refused read, then the retry that went through
