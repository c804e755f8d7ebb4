"""paging: pages a project's on-call team when a case comes to match the project's paging rule (created as a P1 in
SEC, or raised to P1 there), links the page and the case both ways, and shows the page's acknowledgement and
resolution on the case's timeline. On the on-call topic it also makes sure every triggered page has its
escalation workflow (case-api starts it at once; this is the safety net when that start did not happen).

Both tenants are written: the runner's unit of work is the event's tenant (its idempotency record commits there),
the other tenant gets its own unit of work. Every write made there is keyed by the cause (a page id, an event id
made from the event's), so a retried or redelivered event changes nothing twice.
"""

from __future__ import annotations

from typing import ClassVar

import structlog

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.context import AppContext
from casem.app.oncall import pages
from casem.app.oncall.directory import Directory
from casem.app.oncall.paging_rules import paging_rule_for
from casem.domain.errors import NotFound
from casem.domain.oncall import PAGING_TRIGGERS, should_page, view_before
from casem.services.case_event_handler.flavors.notification_rules import case_view
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor
from casem.topology.tenants import CASE_MANAGEMENT, ON_CALL

log = structlog.get_logger("case-event-handler.paging")

PAGE_EVENTS = frozenset({"page.triggered", "page.acknowledged", "page.resolved"})


def _context(services: HandlerServices) -> AppContext:
    return services.extras["context"]  # type: ignore[no-any-return]


@flavor
class Paging:
    name: ClassVar[str] = "paging"
    handles: ClassVar[frozenset[str]] = PAGING_TRIGGERS | PAGE_EVENTS
    uses: ClassVar[tuple[str, ...]] = ("caseworker",)  # starts escalations when a caseworker is configured

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        if event.tenant == CASE_MANAGEMENT and event.type in PAGING_TRIGGERS:
            await self._page_for_case(event, uow, services)
        elif event.tenant == ON_CALL and event.type == "page.triggered":
            await self._ensure_escalation(event, services)
        elif event.tenant == ON_CALL and event.type in ("page.acknowledged", "page.resolved"):
            await self._show_progress(event, services)

    async def _page_for_case(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        ctx = _context(services)
        if ON_CALL not in ctx.databases or event.case_id is None:
            return  # no on-call tenant here (us1.fed.dog): nobody to page
        after = await case_view(uow, event.case_id)
        if after is None:
            return
        async with ctx.uow(ON_CALL) as oncall:
            rule = await paging_rule_for(oncall, event.org_id, after.project_id)
            if rule is None or not rule.enabled:
                return
            before = None if event.type == "case.created" else view_before(after, event.data.get("changes") or {})
            if not should_page(rule.query, event.type, after, before):
                return
            page, created = await pages.page_for_case(
                oncall, Directory(uow, event.org_id), rule, after, event.id, event.tenant
            )
            if created:
                await oncall.commit()
        await pages.show_page_on_case(uow, event.org_id, after.id, page, event.id)
        log.info("paged for a case", case=after.key, page=page.key, team=rule.team_id, created=created)
        await self._start(services, page.org_id, page.id)

    async def _ensure_escalation(self, event: Event, services: HandlerServices) -> None:
        await self._start(services, event.org_id, event.data["page_id"])

    async def _start(self, services: HandlerServices, org_id: str, page_id: str) -> None:
        caseworker = services.extras.get("caseworker")
        if caseworker is not None:  # idempotent: a started or finished escalation is found, not repeated
            await caseworker.start_page_escalation(ON_CALL, org_id, page_id)

    async def _show_progress(self, event: Event, services: HandlerServices) -> None:
        case_id = event.data.get("source_case_id")
        if not case_id or event.data.get("source_tenant") != CASE_MANAGEMENT:
            return  # a page nobody's case asked for
        ctx = _context(services)
        kind = event.type.removeprefix("page.")
        async with ctx.uow(CASE_MANAGEMENT) as uow:
            try:
                shown = await pages.show_page_progress_on_case(
                    uow, event.org_id, case_id, kind, event.data["page_id"], event.data["key"], event.actor_id, event.id
                )
            except NotFound:
                return  # the case is gone (purged): nothing left to tell
            if shown:
                await uow.commit()
