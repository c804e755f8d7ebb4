"""Pages: trigger one (routed to a team's escalation policy, or straight to a user or a schedule), acknowledge,
escalate and resolve it, find pages with the case query language, and read a page's timeline.

A page is a case of the on-call tenant: `create_page` opens that case (in a "PAGE" project kept for the org in
the on-call database) with the page's own id, and the `Page` record beside it holds what paging needs. Both, and
their events, commit together.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from casem.adapters.storage.tables import domain_events, oncall_notifications, oncall_pages, orgs, projects
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases.finder import CaseSearch
from casem.app.cases.search import SearchParams
from casem.app.cases.service import NewCase, create_case, get_case
from casem.app.oncall import records
from casem.app.oncall.directory import Directory
from casem.app.oncall.routing import team_policy
from casem.app.timeline.service import TimelinePage, list_timeline
from casem.domain.case_links import CaseLink, EntityType, Relationship
from casem.domain.cases import Case
from casem.domain.errors import InvalidInput
from casem.domain.events import utcnow
from casem.domain.notifications import MSTEAMS, SLACK, CaseView, Delivery
from casem.domain.oncall import (
    HIGH,
    LOW,
    PAGE_STATUS_CASE_STATUS,
    URGENCY_PRIORITY,
    Page,
    PagingRule,
    page_view,
    parse_tags,
    record_page_opened,
    record_page_progress,
    tag_attributes,
    validate_page_text,
)

PAGE_PROJECT_KEY = "PAGE"
TEAM_ID, TEAM_HANDLE, USER_ID, SCHEDULE_ID = "team_id", "team_handle", "user_id", "schedule_id"
TARGET_TYPES = (TEAM_ID, TEAM_HANDLE, USER_ID, SCHEDULE_ID)  # schedule_id is casem's own
TARGET = "/data/attributes/target"


@dataclass
class NewPage:
    title: Any
    urgency: Any
    target_type: Any
    target_identifier: Any
    description: Any = None
    tags: Any = None
    page_id: str | None = None  # the paging flavor passes one made from its event, so a redelivery is the same page
    source_tenant: str | None = None
    source_case_id: str | None = None
    source_case_key: str | None = None


def page_project_id(org_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"casem:on-call:{org_id}:pages"))


async def _insert_missing(uow: UnitOfWork, table: sa.Table, values: dict[str, Any], key: str) -> None:
    """Insert the row unless one with the same `key` exists (two first pages of an org may race)."""
    insert = pg_insert if uow.db.dialect == "postgresql" else sqlite_insert
    await uow.execute(insert(table).values(**values).on_conflict_do_nothing(index_elements=[key]))


async def ensure_page_project(uow: UnitOfWork, directory: Directory) -> str:
    """The org (by id and name) and its PAGE project in the on-call database, where pages are cases."""
    org_id = directory.org_id
    now = utcnow()
    await _insert_missing(uow, orgs, {"id": org_id, "name": await directory.org_name(), "created_at": now}, "id")
    project_id = page_project_id(org_id)
    await _insert_missing(
        uow,
        projects,
        {
            "id": project_id,
            "org_id": org_id,
            "key": PAGE_PROJECT_KEY,
            "name": "On-Call pages",
            "restricted": False,
            "enabled_custom_case_types": [],
            "settings": {},
            "columns_config": {},
            "case_counter": 0,
            "created_at": now,
        },
        "id",
    )
    return project_id


@dataclass(frozen=True)
class Routed:
    team_id: str | None
    team_handle: str | None
    policy_id: str | None
    rule_id: str | None
    urgency: str
    actions: tuple[dict[str, Any], ...] = ()


async def _route(
    uow: UnitOfWork, directory: Directory, org_id: str, new: NewPage, draft: Page, now: datetime
) -> Routed:
    kind, ident = new.target_type, new.target_identifier
    if kind not in TARGET_TYPES:
        raise InvalidInput(f"invalid value {kind!r}: target.type is one of {', '.join(TARGET_TYPES)}", f"{TARGET}/type")
    if not isinstance(ident, str) or not ident.strip():
        raise InvalidInput("target.identifier is required", f"{TARGET}/identifier")
    where = f"{TARGET}/identifier"
    if kind == USER_ID:
        await directory.user(ident, where)
        return Routed(None, None, None, None, draft.urgency)
    if kind == SCHEDULE_ID:
        await records.load_schedule(uow, org_id, ident, pointer=where, overrides=False)
        return Routed(None, None, None, None, draft.urgency)
    team = await (directory.team(ident, where) if kind == TEAM_ID else directory.team_by_handle(ident, where))
    routing = await records.load_routing(uow, org_id, team.id)
    rule = routing.route(page_view(draft, team.handle), now)
    if rule is not None:
        urgency = rule.urgency if rule.urgency in (HIGH, LOW) else draft.urgency
        policy_ids = rule.policy_ids
        return Routed(team.id, team.handle, policy_ids[0] if policy_ids else None, rule.id, urgency, rule.actions)
    policy = await team_policy(uow, org_id, team.id)
    if policy is None:
        raise InvalidInput(
            f"team {team.handle} has no routing rule matching this page and no escalation policy to run", where
        )
    return Routed(team.id, team.handle, policy.id, None, draft.urgency)


async def create_page(
    uow: UnitOfWork, directory: Directory, org_id: str, actor_id: str | None, new: NewPage, now: datetime | None = None
) -> tuple[Page, bool]:
    """(the page, whether this call created it): a page id given twice answers the page made the first time."""
    now = now or datetime.now(UTC)
    if new.page_id is not None:
        existing = await records.find_page(uow, new.page_id)
        if existing is not None and existing.org_id == org_id:
            return existing, False
    title, description = validate_page_text(new.title, new.description)
    if new.urgency not in (HIGH, LOW):
        raise InvalidInput(f"invalid value {new.urgency!r}: urgency is high or low", "/data/attributes/urgency")
    tags = parse_tags(new.tags)
    page_id = new.page_id or str(uuid.uuid4())
    draft = Page(
        id=page_id,
        org_id=org_id,
        key="",
        title=title,
        description=description,
        urgency=new.urgency,
        tags=tags,
        target_type=str(new.target_type),
        target_id="",
    )
    routed = await _route(uow, directory, org_id, new, draft, now)
    target_id = str(new.target_identifier) if new.target_type == TEAM_HANDLE else str(new.target_identifier).lower()
    project_id = await ensure_page_project(uow, directory)
    attributes = {**tag_attributes(tags), "urgency": [routed.urgency]}
    if routed.team_handle:
        attributes["team"] = [routed.team_handle]
    if new.source_case_key:
        attributes["source_case"] = [new.source_case_key]
    case = await create_case(
        uow,
        org_id,
        actor_id,
        NewCase(
            project_id=project_id,
            title=title,
            description=description,
            priority=URGENCY_PRIORITY[routed.urgency],
            attributes=attributes,
            case_id=page_id,
        ),
    )
    page = Page.trigger(
        actor_id=actor_id,
        id=case.id,
        org_id=org_id,
        key=case.key,
        title=title,
        description=description,
        urgency=routed.urgency,
        tags=tags,
        target_type=str(new.target_type),
        target_id=target_id,
        team_id=routed.team_id,
        policy_id=routed.policy_id,
        routing_rule_id=routed.rule_id,
        created_at=case.created_at,
        source_tenant=new.source_tenant,
        source_case_id=new.source_case_id,
        source_case_key=new.source_case_key,
    )
    await uow.session.flush()  # the case row first: the page and its events refer to it
    await records.insert_page(uow, page)
    for action in routed.actions:  # a rule's chat messages go out through the delivery flavors
        if action["type"] == "send_slack_message":
            target = {"channel": action["channel"], "workspace": action["workspace"]}
            uow.add(_chat_delivery(page, SLACK, target, {"text": _chat_text(page)}))
        elif action["type"] == "send_teams_message":
            url = await directory.teams_connector(action["channel"])
            if url is not None:  # the connector was deleted since the rule was saved: nothing to post to
                target = {"url": url, "channel": action["channel"], "team": action["team"], "tenant": action["tenant"]}
                uow.add(_chat_delivery(page, MSTEAMS, target, _teams_card(page)))
    return page, True


def _chat_text(page: Page) -> str:
    return f"[{page.urgency.upper()}] {page.key}: {page.title}"


def _teams_card(page: Page) -> dict[str, Any]:
    """A MessageCard, what a Teams incoming webhook accepts."""
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": _chat_text(page),
        "themeColor": "D62728" if page.urgency == HIGH else "632CA6",
        "title": _chat_text(page),
        "sections": [{"facts": [{"name": "Page", "value": page.key}, {"name": "Urgency", "value": page.urgency}]}],
    }


def _chat_delivery(page: Page, channel: str, target: dict[str, Any], payload: dict[str, Any]) -> Delivery:
    return Delivery.request(
        org_id=page.org_id,
        rule_id=page.routing_rule_id,
        source_event_id=page.id,
        case_id=page.id,
        channel=channel,
        target=target,
        payload=payload,
    )


# -- acknowledge, escalate, resolve -------------------------------------------------------------------------------


async def _page_case(uow: UnitOfWork, page: Page) -> Case:
    return await get_case(uow, page.org_id, page.id)


async def _sync_case(uow: UnitOfWork, page: Page, actor_id: str | None) -> None:
    case = await _page_case(uow, page)
    case.transition(PAGE_STATUS_CASE_STATUS[page.status], actor_id)


async def acknowledge_page(
    uow: UnitOfWork, org_id: str | None, actor_id: str | None, page_id: str
) -> tuple[Page, bool]:
    page = await records.load_page(uow, org_id, page_id, lock=True)
    changed = page.acknowledge(actor_id)
    if changed:
        await _sync_case(uow, page, actor_id)
        await records.update_page(uow, page)
    return page, changed


async def escalate_page(uow: UnitOfWork, org_id: str | None, actor_id: str | None, page_id: str) -> tuple[Page, bool]:
    page = await records.load_page(uow, org_id, page_id, lock=True)
    changed = page.escalate(actor_id)
    if changed:
        await records.update_page(uow, page)
    return page, changed


async def resolve_page(
    uow: UnitOfWork, org_id: str | None, actor_id: str | None, page_id: str, reason: str = "resolved"
) -> tuple[Page, bool]:
    page = await records.load_page(uow, org_id, page_id, lock=True)
    changed = page.resolve(actor_id, reason=reason)
    if changed:
        await _sync_case(uow, page, actor_id)
        await records.update_page(uow, page)
    return page, changed


# -- reading -------------------------------------------------------------------------------------------------------


async def get_page(uow: UnitOfWork, org_id: str, page_id: str) -> Page:
    return await records.load_page(uow, org_id, page_id)


async def search_pages(
    uow: UnitOfWork, finder: CaseSearch, org_id: str, params: SearchParams
) -> tuple[list[Page], int]:
    """Pages whose cases match the query (the case query language, through the same search as cases)."""
    found, total = await finder.search(uow, org_id, params)
    ids = [c.id for c in found]
    if not ids:
        return [], total
    rows = await uow.execute(sa.select(oncall_pages.c.id).where(oncall_pages.c.id.in_(ids)))
    known = {row.id for row in rows}
    pages = [await records.load_page(uow, org_id, i) for i in ids if i in known]
    return pages, total


async def page_timeline(uow: UnitOfWork, org_id: str, page_id: str, page_size: int, page_number: int) -> TimelinePage:
    page = await records.load_page(uow, org_id, page_id)
    return await list_timeline(uow, org_id, page.id, page_size=page_size, page_number=page_number, ascending=True)


async def page_notifications(uow: UnitOfWork, org_id: str, page_id: str) -> Sequence[Any]:
    page = await records.load_page(uow, org_id, page_id)
    rows = await uow.execute(
        sa.select(oncall_notifications)
        .where(oncall_notifications.c.page_id == page.id)
        .order_by(oncall_notifications.c.created_at, oncall_notifications.c.idempotency_key)
    )
    return rows.all()


# -- pages for cases (the paging flavor) ---------------------------------------------------------------------------


def derived_id(event_id: str, what: str) -> str:
    """An id made from the event that caused it: a redelivered event makes the same page, the same cell."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"casem:paging:{what}:{event_id}"))


async def page_for_case(
    uow: UnitOfWork, directory: Directory, rule: PagingRule, case: CaseView, event_id: str, tenant: str
) -> tuple[Page, bool]:
    """Page the rule's team for a case that came to match the project's paging rule (in the on-call unit of work)."""
    tags = [f"case:{case.key}", f"project:{case.project_key}", f"priority:{case.priority}"]
    tags += [f"{k}:{v}" for k, values in sorted(case.attributes.items()) for v in values][: 50 - len(tags)]
    new = NewPage(
        title=f"{case.key}: {case.title}"[:255],
        urgency=rule.urgency,
        target_type=TEAM_ID,
        target_identifier=rule.team_id,
        description=case.description[:30_000],
        tags=tags,
        page_id=derived_id(event_id, "page"),
        source_tenant=tenant,
        source_case_id=case.id,
        source_case_key=case.key,
    )
    return await create_page(uow, directory, rule.org_id, None, new)


async def _done(uow: UnitOfWork, event_id: str) -> bool:
    return bool(await uow.scalar(sa.select(domain_events.c.id).where(domain_events.c.id == event_id)))


async def show_page_on_case(uow: UnitOfWork, org_id: str, case_id: str, page: Page, cause_event_id: str) -> bool:
    """The case's timeline shows its page, and a link ties them (case ESCALATES_TO page); once per cause."""
    event_id = derived_id(cause_event_id, "case-page")
    if await _done(uow, event_id):
        return False
    case = await get_case(uow, org_id, case_id)
    record_page_opened(case, page, event_id=event_id)
    link = CaseLink.create(
        actor_id=None,
        id=derived_id(cause_event_id, "case-link"),
        org_id=org_id,
        parent_entity_type=EntityType.CASE.value,
        parent_entity_id=case.id,
        child_entity_type=EntityType.PAGE.value,
        child_entity_id=page.id,
        relationship=Relationship.ESCALATES_TO.value,
    )
    uow.add(link)
    return True


async def show_page_progress_on_case(
    uow: UnitOfWork, org_id: str, case_id: str, kind: str, page_id: str, page_key: str, actor_id: str | None,
    cause_event_id: str,
) -> bool:  # fmt: skip
    """The page of a case was acknowledged or resolved: its timeline says so, once."""
    event_id = derived_id(cause_event_id, f"case-page-{kind}")
    if await _done(uow, event_id):
        return False
    case = await get_case(uow, org_id, case_id)
    record_page_progress(case, kind=kind, page_id=page_id, page_key=page_key, actor_id=actor_id, event_id=event_id)
    return True
