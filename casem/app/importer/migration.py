"""The live migration (`casem import --from-datadog`): an org read page by page from a Datadog-compatible API
(Datadog, or another casem) and imported through the importer, ids kept.

What comes over: users and teams, case types, custom attributes, projects (with their settings), notification
and automation rules, views, and every case with its timeline (comments and change cells, authors and times as
they were), watchers and links. What does not: API and application keys (Datadog never exports a secret): issue
new ones for the migrated org (`casem up` does for a single org, or `casem admin bootstrap-credentials`).

Resumable: progress is kept in a state file (which org it goes into, whether the configuration is done, how many
pages of cases are); each page of cases is one transaction, and the state moves on only after it commits. An
interrupted run, started again, continues after the last page it finished. A run after a finished one reads
everything again and, the import being idempotent by id, changes nothing (every record "unchanged").
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from casem.app.context import AppContext
from casem.app.importer.format import (
    AutomationRuleRecord,
    CaseRecord,
    CaseTypeRecord,
    CustomAttributeRecord,
    LinkRecord,
    NotificationRuleRecord,
    OrgRecord,
    ProjectRecord,
    TeamRecord,
    TimelineCellRecord,
    UserRecord,
    ViewRecord,
)
from casem.app.importer.service import Importer, ImportOptions, ImportReport
from casem.domain.cases import STANDARD_TYPE_ID

CONCURRENCY = 8  # requests in flight for the timelines, watchers and links of one page of cases


class Source(Protocol):
    """A Datadog-compatible API, read as JSON:API resource objects (casem/adapters/datadog_api.py)."""

    site: str

    def users(self) -> Iterable[dict[str, Any]]: ...
    def teams(self) -> Iterable[dict[str, Any]]: ...
    def projects(self) -> list[dict[str, Any]]: ...
    def case_types(self) -> list[dict[str, Any]]: ...
    def custom_attributes(self) -> list[dict[str, Any]]: ...
    def views(self, project_id: str) -> list[dict[str, Any]]: ...
    def automation_rules(self, project_id: str) -> list[dict[str, Any]]: ...
    def notification_rules(self, project_id: str) -> list[dict[str, Any]]: ...
    def cases(self, page: int, size: int = ...) -> tuple[list[dict[str, Any]], int | None]: ...
    def timeline(self, case_id: str) -> list[dict[str, Any]]: ...
    def watchers(self, case_id: str) -> list[dict[str, Any]]: ...
    def links(self, case_id: str) -> list[dict[str, Any]]: ...


@dataclass
class MigrationState:
    """Where a migration stands; saved after every durable step (atomically: written aside, then renamed)."""

    site: str
    org_id: str
    org_name: str
    page_size: int = 100
    configuration_done: bool = False
    case_pages_done: int = 0
    finished: bool = False
    runs: int = 0

    @classmethod
    def load(cls, path: Path) -> MigrationState | None:
        return cls(**json.loads(path.read_text())) if path.exists() else None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_suffix(path.suffix + ".tmp")
        aside.write_text(json.dumps(asdict(self), indent=2))
        os.replace(aside, path)


@dataclass
class MigrationReport:
    org_id: str
    import_report: ImportReport
    resumed_after_page: int = 0  # pages a previous, interrupted run had finished
    pages: int = 0  # pages of cases this run imported
    cases: int = 0
    total_cases: int | None = None
    seconds: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)


Progress = Callable[[str, int, int | None], None]  # (phase, done, total)


class MigrationError(Exception):
    """The migration cannot go on (the source said no, or a record cannot be imported); it can be resumed."""


# -- JSON:API resources → import records ---------------------------------------------------------------------


def _attrs(resource: dict[str, Any]) -> dict[str, Any]:
    return resource.get("attributes") or {}


def _related(resource: dict[str, Any], name: str) -> str | None:
    data = ((resource.get("relationships") or {}).get(name) or {}).get("data")
    if isinstance(data, list):
        data = data[0] if data else None
    return data.get("id") if isinstance(data, dict) else None


def user_record(r: dict[str, Any]) -> UserRecord:
    a = _attrs(r)
    return UserRecord(
        id=r["id"],
        email=a["email"],
        handle=a.get("handle"),
        name=a.get("name"),
        title=a.get("title"),
        disabled=bool(a.get("disabled")),
        service_account=bool(a.get("service_account")),
    )


def team_record(r: dict[str, Any]) -> TeamRecord:
    a = _attrs(r)
    return TeamRecord(
        id=r["id"],
        handle=a["handle"],
        name=a["name"],
        description=a.get("description"),
        avatar=a.get("avatar"),
        banner=a.get("banner"),
    )


def case_type_record(r: dict[str, Any]) -> CaseTypeRecord:
    a = _attrs(r)
    return CaseTypeRecord(
        id=r["id"], name=a["name"], description=a.get("description") or "", emoji=a.get("emoji") or ""
    )


def custom_attribute_record(r: dict[str, Any]) -> CustomAttributeRecord:
    a = _attrs(r)
    options = [o.get("value") for o in ((a.get("type_data") or {}).get("options") or [])]
    return CustomAttributeRecord(
        id=r["id"],
        case_type_id=a["case_type_id"],
        key=a["key"],
        display_name=a["display_name"],
        type=a["type"],
        is_multi=bool(a.get("is_multi")),
        description=a.get("description") or "",
        options=options or None,
        map_from=a.get("map_from"),
    )


def project_record(r: dict[str, Any]) -> ProjectRecord:
    a = _attrs(r)
    return ProjectRecord(
        id=r["id"],
        key=a["key"],
        name=a["name"],
        team_id=_related(r, "member_team"),
        enabled_custom_case_types=a.get("enabled_custom_case_types") or [],
        settings=a.get("settings") or None,
    )


def notification_rule_record(project_id: str, r: dict[str, Any]) -> NotificationRuleRecord:
    a = _attrs(r)
    return NotificationRuleRecord(
        id=r["id"],
        project_id=project_id,
        triggers=a.get("triggers") or [],
        recipients=a.get("recipients") or [],
        query=a.get("query") or "",
        is_enabled=a.get("is_enabled", True),
    )


def automation_rule_record(project_id: str, r: dict[str, Any]) -> AutomationRuleRecord:
    a = _attrs(r)
    return AutomationRuleRecord(
        id=r["id"],
        project_id=project_id,
        name=a["name"],
        state=a.get("state") or "ENABLED",
        trigger=a["trigger"],
        action=a["action"],
    )


def view_record(project_id: str, r: dict[str, Any]) -> ViewRecord:
    a = _attrs(r)
    return ViewRecord(
        id=r["id"],
        project_id=_related(r, "project") or project_id,
        name=a["name"],
        query=a["query"],
        np_rule_id=a.get("np_rule_id"),
    )


def cell_record(r: dict[str, Any]) -> TimelineCellRecord:
    a = _attrs(r)
    author = (a.get("author") or {}).get("content") or {}
    return TimelineCellRecord(
        id=r["id"],
        type=a["type"],
        content=a.get("cell_content") or {},
        author_id=author.get("id"),
        created_at=a["created_at"],
        modified_at=a.get("modified_at"),
        deleted_at=a.get("deleted_at"),
    )


def case_record(r: dict[str, Any], cells: list[dict[str, Any]], watchers: list[dict[str, Any]]) -> CaseRecord:
    a = _attrs(r)
    return CaseRecord(
        id=r["id"],
        project_id=_related(r, "project") or "",
        key=a["key"],
        title=a["title"],
        description=a.get("description") or "",
        type_id=a.get("type_id") or STANDARD_TYPE_ID,
        status=a.get("status") or "OPEN",
        priority=a.get("priority") or "NOT_DEFINED",
        assignee_id=_related(r, "assignee"),
        attributes=a.get("attributes") or {},
        custom_attributes=a.get("custom_attributes") or {},
        due_date=a.get("due_date"),
        resolved_reason=a.get("resolved_reason"),
        created_at=a.get("created_at"),
        created_by_id=_related(r, "created_by"),
        closed_at=a.get("closed_at"),
        archived_at=a.get("archived_at"),
        modified_at=a.get("modified_at"),
        modified_by_id=_related(r, "modified_by"),
        timeline=[cell_record(c) for c in cells],
        watchers=[_related(w, "user") or w["id"] for w in watchers],
    )


def link_record(r: dict[str, Any]) -> LinkRecord:
    a = _attrs(r)
    return LinkRecord(id=r["id"], **{k: a[k] for k in LinkRecord.model_fields if k != "id"})


# -- the migration ----------------------------------------------------------------------------------------------


class _Counter:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.requests: dict[str, int] = {}

    def __call__(self, name: str, *args: Any) -> Any:
        self.requests[name] = self.requests.get(name, 0) + 1
        result = getattr(self.source, name)(*args)
        return list(result) if name in ("users", "teams") else result


async def migrate(
    context: AppContext,
    source: Source,
    state_path: Path,
    *,
    org_id: str | None = None,
    org_name: str | None = None,
    options: ImportOptions | None = None,
    progress: Progress | None = None,
    page_size: int = 100,
    concurrency: int = CONCURRENCY,
) -> MigrationReport:
    """Migrate the source's org into `context` (a new org, or `org_id`), resuming from `state_path`."""
    options = options or ImportOptions()
    tell = progress or (lambda _phase, _done, _total: None)
    state = MigrationState.load(state_path)
    if state is not None and org_id is not None and state.org_id != org_id:
        raise MigrationError(
            f"{state_path} is a migration into org {state.org_id}, not {org_id}: give another --state-file"
        )
    if state is None:
        state = MigrationState(
            site=source.site, org_id=org_id or str(uuid.uuid4()), org_name=org_name or "Migrated", page_size=page_size
        )
    elif state.finished:  # run again: read everything once more (and find it all unchanged)
        state.configuration_done, state.case_pages_done, state.finished = False, 0, False
    state.runs += 1
    persist = (lambda: None) if options.dry_run else (lambda: state.save(state_path))
    persist()

    report = MigrationReport(state.org_id, ImportReport(), resumed_after_page=state.case_pages_done)
    importer = Importer(context, report.import_report, options)
    fetch = _Counter(source)
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="casem-migrate") as pool:

        async def call(name: str, *args: Any) -> Any:
            return await loop.run_in_executor(pool, fetch, name, *args)

        try:
            if not state.configuration_done:
                tell("configuration", 0, None)
                await importer.org_configuration("source", await _configuration(call, state))
                state.configuration_done = True
                persist()
            page = state.case_pages_done + 1
            while True:
                found, total = await call("cases", page, state.page_size)
                report.total_cases = total
                if not found:
                    break
                await _case_page(importer, call, state.org_id, page, found)
                report.pages += 1
                report.cases += len(found)
                state.case_pages_done = page
                persist()
                tell("cases", (page - 1) * state.page_size + len(found), total)
                if len(found) < state.page_size:
                    break
                page += 1
            state.finished = True
            persist()
        finally:
            await importer.close()
            report.seconds = time.perf_counter() - started
            report.requests = dict(fetch.requests)
    return report


async def _configuration(call: Callable[..., Any], state: MigrationState) -> OrgRecord:
    projects = await call("projects")
    per_project = await asyncio.gather(
        *(
            asyncio.gather(
                call("notification_rules", p["id"]), call("automation_rules", p["id"]), call("views", p["id"])
            )
            for p in projects
        )
    )
    users, teams, types, attributes = await asyncio.gather(
        call("users"), call("teams"), call("case_types"), call("custom_attributes")
    )
    return OrgRecord(
        id=state.org_id,
        name=state.org_name,
        users=[user_record(u) for u in users],
        teams=[team_record(t) for t in teams],
        case_types=[case_type_record(t) for t in types if t["id"] != STANDARD_TYPE_ID],
        custom_attributes=[custom_attribute_record(c) for c in attributes],
        projects=[project_record(p) for p in projects],
        notification_rules=[
            notification_rule_record(p["id"], r)
            for p, (rules, _, _) in zip(projects, per_project, strict=True)
            for r in rules
        ],
        automation_rules=[
            automation_rule_record(p["id"], r)
            for p, (_, rules, _) in zip(projects, per_project, strict=True)
            for r in rules
        ],
        views=[view_record(p["id"], v) for p, (_, _, views) in zip(projects, per_project, strict=True) for v in views],
    )


async def _case_page(
    importer: Importer, call: Callable[..., Any], org_id: str, page: int, found: list[dict[str, Any]]
) -> None:
    """One page of cases with their timelines and watchers, and the links whose ends are both here by now."""
    details = await asyncio.gather(
        *(asyncio.gather(call("timeline", c["id"]), call("watchers", c["id"]), call("links", c["id"])) for c in found)
    )
    records = [
        (f"cases page {page} (id {c['id']})", case_record(c, cells, watchers))
        for c, (cells, watchers, _links) in zip(found, details, strict=True)
    ]
    links = {link["id"]: link_record(link) for _cells, _watchers, case_links in details for link in case_links}
    await importer.case_batch(org_id, records, links=[(f"link {i}", r) for i, r in links.items()])
