"""The importer: every record goes through the same application services and aggregates as the API.

Idempotent by id: a record whose id is stored with the same content is left alone ("unchanged"); one
whose id is stored with other content is a conflict: reported and left as stored (`on_conflict="keep"`, the
default), or overwritten with the file's content (`on_conflict="replace"`, recorded as `<kind>.import_replaced`
events). Only records created or replaced here record domain events, so a second run of the same file writes no
new outbox rows. A dry run does all of it in one transaction and rolls it back: the report says what would change.

A case's timeline and watchers, when given, are history: stored as they were (ids, authors and times kept),
without events of their own, and the case's creation then writes no timeline cell (the history has one).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import (
    automation_rules,
    credentials,
    notification_rules,
    projects,
    timeline_cells,
    watchers,
)
from casem.adapters.storage.tables import cases as cases_table
from casem.adapters.storage.tables import users as users_table
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.automation import rules as automation_service
from casem.app.case_links import service as links_service
from casem.app.case_types import service as case_types
from casem.app.case_views import service as views_service
from casem.app.cases import service as cases
from casem.app.context import AppContext
from casem.app.custom_attributes import service as custom_attributes
from casem.app.identity import service as identity
from casem.app.importer.format import (
    AutomationRuleRecord,
    CaseRecord,
    CaseTypeRecord,
    CustomAttributeRecord,
    ImportFileError,
    KeyRecord,
    LinkRecord,
    NotificationRuleRecord,
    OrgRecord,
    ProjectRecord,
    Record,
    TeamRecord,
    TimelineCellRecord,
    UserRecord,
    ViewRecord,
    load,
)
from casem.app.notification_rules import service as notification_service
from casem.app.projects import service as projects_service
from casem.domain.case_links import CaseLink
from casem.domain.case_types import CaseType, CustomAttributeConfig
from casem.domain.case_views import CaseView
from casem.domain.cases import (
    STANDARD_TYPE_ID,
    Case,
    Priority,
    Status,
    parse_enum,
    validate_attributes,
    validate_description,
    validate_title,
)
from casem.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from casem.domain.identity import API_KEY, APP_KEY, Credential, Org, Team, User, hash_key, new_api_key, new_app_key
from casem.domain.projects import Project
from casem.domain.timeline import TimelineCell

CASE_BATCH = 200  # cases per transaction: progress is durable, and a huge file never holds one giant transaction
KINDS = (
    "orgs",
    "users",
    "teams",
    "keys",
    "case_types",
    "custom_attributes",
    "projects",
    "notification_rules",
    "automation_rules",
    "views",
    "cases",
    "timeline",
    "watchers",
    "links",
)
KEEP, REPLACE = "keep", "replace"


@dataclass(frozen=True)
class ImportOptions:
    on_conflict: str = KEEP  # "keep": a differing stored record wins; "replace": the file wins
    dry_run: bool = False  # everything in one transaction, rolled back: the report says what would change
    reissue_keys: bool = False  # a new secret for every key of the file (Datadog exports carry none)

    def __post_init__(self) -> None:
        if self.on_conflict not in (KEEP, REPLACE):
            raise ValueError(f"on_conflict must be {KEEP!r} or {REPLACE!r}, not {self.on_conflict!r}")


@dataclass
class Counts:
    created: int = 0
    unchanged: int = 0
    conflicts: int = 0
    replaced: int = 0


@dataclass(frozen=True)
class ReissuedKey:
    org_id: str
    id: str
    kind: str
    name: str
    user_id: str | None
    secret: str


@dataclass
class ImportReport:
    counts: dict[str, Counts] = field(default_factory=lambda: {k: Counts() for k in KINDS})
    conflicts: list[str] = field(default_factory=list)
    reissued: list[ReissuedKey] = field(default_factory=list)
    dry_run: bool = False

    @property
    def created(self) -> int:
        return sum(c.created for c in self.counts.values())

    @property
    def replaced(self) -> int:
        return sum(c.replaced for c in self.counts.values())

    def _created(self, kind: str, n: int = 1) -> None:
        self.counts[kind].created += n

    def _unchanged(self, kind: str, n: int = 1) -> None:
        self.counts[kind].unchanged += n

    def _replaced(self, kind: str) -> None:
        self.counts[kind].replaced += 1

    def _conflict(self, kind: str, where: str, detail: str) -> None:
        self.counts[kind].conflicts += 1
        self.conflicts.append(f"{where}: {detail}")


def _field_of(pointer: str | None) -> str:
    return pointer.rstrip("/").rsplit("/", 1)[-1] if pointer else ""


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _file_error(where: str, exc: DomainError) -> ImportFileError:
    detail = exc.detail if isinstance(exc, InvalidInput | Conflict) else str(exc)
    field_name = _field_of(getattr(exc, "pointer", None))
    return ImportFileError(f"{where}: {'field ' + repr(field_name) + ': ' if field_name else ''}{detail}")


class Importer:
    """Imports records into one context. `file_import` and the live migration (casem/app/importer/migration.py)
    drive it: `transaction()` for each durable step, then the record methods inside it."""

    def __init__(
        self,
        context: AppContext,
        report: ImportReport,
        options: ImportOptions | None = None,
        on_case: Callable[[], None] | None = None,
    ) -> None:
        self.context = context
        self.report = report
        self.options = options or ImportOptions()
        self.report.dry_run = self.options.dry_run
        self.on_case = on_case or (lambda: None)
        # The session's identity map holds flushed objects weakly, and the unit of work collects events from
        # the objects it still holds at commit: keep every aggregate created or replaced here until its commit.
        self.created: list[Any] = []
        self._dry_uow: UnitOfWork | None = None

    # -- transactions -------------------------------------------------------------------
    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        """One durable step. In a dry run every step shares one transaction, rolled back by `close()`."""
        if self.options.dry_run:
            if self._dry_uow is None:
                self._dry_uow = await self.context.uow().__aenter__()
            yield self._dry_uow
            await self._dry_uow.session.flush()
            return
        async with self.context.uow() as uow:
            yield uow
            await uow.session.flush()
            await uow.commit()
            self.created.clear()

    async def close(self) -> None:
        if self._dry_uow is not None:
            await self._dry_uow.__aexit__(None, None, None)  # rolls the whole dry run back
            self._dry_uow = None

    # -- comparison -----------------------------------------------------------------
    def _settle(
        self, kind: str, where: str, stored: Any, wanted: dict[str, Any], replace: Callable[[dict], Any] | None = None
    ) -> bool:
        """Compare a stored record with the file's. Same: unchanged. Different: a conflict, or (replace) the
        file's values applied through `replace` (default: the aggregate's `replace_from_import`)."""
        differ = {k: (getattr(stored, k), v) for k, v in wanted.items() if getattr(stored, k) != v}
        if not differ:
            self.report._unchanged(kind)
            return True
        if self.options.on_conflict == REPLACE:
            values = {k: new for k, (_old, new) in differ.items()}
            (replace or stored.replace_from_import)(values)
            self.created.append(stored)
            self.report._replaced(kind)
            return True
        parts = "; ".join(f"{k} is {new!r} in the file but {old!r} here" for k, (old, new) in differ.items())
        self.report._conflict(kind, where, f"id already stored with other content ({parts}); left unchanged")
        return False

    async def _create(self, kind: str, where: str, create: Any) -> Any:
        """Run one create through its service; a domain conflict is reported, bad input stops the import."""
        try:
            created = await create
        except Conflict as exc:
            self.report._conflict(kind, where, exc.detail)
            return None
        except DomainError as exc:
            raise _file_error(where, exc) from None
        self.created.append(created)
        self.report._created(kind)
        return created

    def _owned(self, kind: str, where: str, stored: Any, org_id: str) -> bool:
        if getattr(stored, "org_id", org_id) != org_id:
            self.report._conflict(kind, where, "id already belongs to another org; left unchanged")
            return False
        return True

    # -- one org --------------------------------------------------------------------
    async def org(self, index: int, org: OrgRecord) -> None:
        base = f"orgs[{index}]"
        await self.org_configuration(base, org)
        for start in range(0, len(org.cases), CASE_BATCH):
            await self.case_batch(
                org.id,
                [
                    (f"{base}.cases[{i}] (id {r.id})", r)
                    for i, r in enumerate(org.cases[start : start + CASE_BATCH], start)
                ],
            )
        if org.links:
            async with self.transaction() as uow:
                for i, link in enumerate(org.links):
                    await self.link(uow, org.id, f"{base}.links[{i}] (id {link.id})", link)

    async def org_configuration(self, base: str, org: OrgRecord) -> None:
        """The org and everything but its cases and links, in one transaction."""
        async with self.transaction() as uow:
            stored = await uow.session.get(Org, org.id)
            where = f"{base} (id {org.id})"
            if stored is None:
                await self._create("orgs", where, identity.create_org(uow, org.name, org_id=org.id))
            else:
                self._settle("orgs", where, stored, {"name": org.name})
            await uow.session.flush()
            for kind, records, step in (
                ("users", org.users, self.user),
                ("teams", org.teams, self.team),
                ("keys", org.keys, self.key),
                ("case_types", org.case_types, self.case_type),
                ("custom_attributes", org.custom_attributes, self.custom_attribute),
                ("projects", org.projects, self.project),
                ("notification_rules", org.notification_rules, self.notification_rule),
                ("automation_rules", org.automation_rules, self.automation_rule),
                ("views", org.views, self.view),
            ):
                for i, record in enumerate(records):
                    await step(uow, org.id, f"{base}.{kind}[{i}] (id {record.id})", record)
                await uow.session.flush()  # later sections refer to these rows

    async def case_batch(
        self, org_id: str, records: list[tuple[str, CaseRecord]], links: list[tuple[str, LinkRecord]] = ()
    ) -> None:
        """Cases (with their timelines and watchers) in one transaction; project counters follow them. `links`:
        those whose case ends are stored by now (this batch's or earlier ones); the others wait for the batch
        that brings their other end."""
        async with self.transaction() as uow:
            batch = await _Batch.read(uow, org_id, [r for _, r in records])
            highest: dict[str, int] = {}
            for where, record in records:
                number = await self.case(uow, org_id, where, record, batch)
                if number is not None:
                    highest[record.project_id] = max(number, highest.get(record.project_id, 0))
                self.on_case()
            await uow.session.flush()
            for where, record in records:
                if record.timeline is not None:
                    await self.timeline(uow, org_id, where, record.id, record.timeline, batch)
                if record.watchers is not None:
                    await self.watchers(uow, org_id, where, record.id, record.watchers, batch)
            for project_id, number in highest.items():
                # New cases continue after the highest imported number, never reusing an imported key.
                await uow.execute(
                    sa.update(projects)
                    .where(projects.c.id == project_id, projects.c.case_counter < number)
                    .values(case_counter=number)
                )
            for where, link in links:
                await self.link(uow, org_id, where, link)

    # -- identity ---------------------------------------------------------------------
    async def user(self, uow: UnitOfWork, org_id: str, where: str, r: UserRecord) -> None:
        stored = await uow.session.get(User, r.id)
        wanted = {"email": r.email.lower(), "handle": r.handle or r.email.lower(), "name": r.name, "title": r.title}
        wanted |= {"disabled": r.disabled, "service_account": r.service_account}
        if stored is None:
            create = identity.create_user(
                uow, org_id, r.email, r.name, r.title, r.id, r.handle,
                disabled=r.disabled, service_account=r.service_account,
            )  # fmt: skip
            await self._create("users", where, create)
        elif self._owned("users", where, stored, org_id):
            self._settle("users", where, stored, wanted)

    async def team(self, uow: UnitOfWork, org_id: str, where: str, r: TeamRecord) -> None:
        stored = await uow.session.get(Team, r.id)
        wanted = {"handle": r.handle, "name": r.name, "description": r.description}
        wanted |= {"avatar": r.avatar, "banner": r.banner}
        if stored is None:
            extras = {k: v for k, v in (("avatar", r.avatar), ("banner", r.banner)) if v is not None}
            await self._create(
                "teams", where, identity.create_team(uow, org_id, r.handle, r.name, r.description, r.id, **extras)
            )
        elif self._owned("teams", where, stored, org_id):
            self._settle("teams", where, stored, wanted)

    async def key(self, uow: UnitOfWork, org_id: str, where: str, r: KeyRecord) -> None:
        kind = API_KEY if r.kind == "api" else APP_KEY
        reissue = self.options.reissue_keys
        if r.secret is None and r.key_hash is None and not reissue:
            raise ImportFileError(
                f"{where}: give the key's 'secret' or 'key_hash', or import with --reissue-keys for new secrets"
            )
        # Reissued: a fresh secret replaces whatever the file says (a Datadog export has no secrets at all).
        secret = (new_api_key() if kind == API_KEY else new_app_key()) if reissue else r.secret
        key_hash = hash_key(secret) if secret is not None else r.key_hash
        stored = await uow.session.get(Credential, r.id)
        if stored is not None:
            if not self._owned("keys", where, stored, org_id):
                return
            if reissue:
                self._settle("keys", where, stored, {"kind": kind, "name": r.name, "user_id": r.user_id})
                stored.rotate(key_hash, secret[-4:])  # type: ignore[index,arg-type]
                self.created.append(stored)
                self._reissued(org_id, r, kind, secret)  # type: ignore[arg-type]
            else:
                wanted = {"kind": kind, "name": r.name, "user_id": r.user_id, "key_hash": key_hash}
                self._settle("keys", where, stored, wanted)
            return
        holder = await uow.scalar(sa.select(credentials.c.id).where(credentials.c.key_hash == key_hash))
        if holder is not None:
            self.report._conflict("keys", where, f"the same key is already stored under id {holder}; left unchanged")
            return
        owner = await uow.session.get(User, r.user_id) if r.user_id is not None else None
        if r.user_id is not None and (owner is None or owner.org_id != org_id):
            # A key acts as a user of its own org only: another org's user is as unknown as a missing one.
            raise ImportFileError(
                f"{where}: field 'user_id': user {r.user_id} is neither in the file nor stored in this org"
            )

        async def issue() -> identity.IssuedKey:
            return identity.issue_key(
                uow, org_id, kind, r.name, r.user_id, secret, r.id,
                key_hash=None if secret is not None else r.key_hash, last4=r.last4 if secret is None else "",
            )  # fmt: skip

        if await self._create("keys", where, issue()) is not None and reissue:
            self._reissued(org_id, r, kind, secret)  # type: ignore[arg-type]

    def _reissued(self, org_id: str, r: KeyRecord, kind: str, secret: str) -> None:
        self.report.reissued.append(ReissuedKey(org_id, r.id, kind, r.name, r.user_id, secret))

    # -- configuration ----------------------------------------------------------------
    async def case_type(self, uow: UnitOfWork, org_id: str, where: str, r: CaseTypeRecord) -> None:
        if r.id == STANDARD_TYPE_ID:
            raise ImportFileError(f"{where}: field 'id': the built-in STANDARD type is not imported; leave it out")
        stored = await uow.session.get(CaseType, r.id)
        if stored is None:
            create = case_types.create_case_type(
                uow, org_id, None, name=r.name, description=r.description, emoji=r.emoji, type_id=r.id
            )
            await self._create("case_types", where, create)
        elif self._owned("case_types", where, stored, org_id):
            wanted = {"name": r.name, "description": r.description, "emoji": r.emoji, "deleted_at": None}
            self._settle("case_types", where, stored, wanted)

    async def custom_attribute(self, uow: UnitOfWork, org_id: str, where: str, r: CustomAttributeRecord) -> None:
        stored = await uow.session.get(CustomAttributeConfig, r.id)
        if stored is None:
            create = custom_attributes.create_config(
                uow, org_id, None, r.case_type_id, key=r.key, display_name=r.display_name, type=r.type,
                is_multi=r.is_multi, description=r.description, options=r.options, map_from=r.map_from,
                config_id=r.id,
            )  # fmt: skip
            await self._create("custom_attributes", where, create)
        elif self._owned("custom_attributes", where, stored, org_id):
            wanted = {"case_type_id": r.case_type_id, "key": r.key, "display_name": r.display_name, "type": r.type}
            wanted |= {"is_multi": r.is_multi, "description": r.description, "options": r.options or []}
            wanted |= {"map_from": r.map_from, "deleted_at": None}
            self._settle("custom_attributes", where, stored, wanted)

    async def project(self, uow: UnitOfWork, org_id: str, where: str, r: ProjectRecord) -> None:
        stored = await uow.session.get(Project, r.id)
        if stored is None:
            create = projects_service.create_project(
                uow, org_id, None, key=r.key, name=r.name, enabled_custom_case_types=r.enabled_custom_case_types,
                team_uuid=r.team_id, project_id=r.id,
            )  # fmt: skip
            project = await self._create("projects", where, create)
            if project is not None and r.settings:
                project.settings = await projects_service.merged_settings(uow, org_id, {}, r.settings)
        elif self._owned("projects", where, stored, org_id):
            wanted = {"key": r.key, "name": r.name, "team_id": r.team_id, "deleted_at": None}
            wanted["enabled_custom_case_types"] = r.enabled_custom_case_types
            if r.settings is not None:
                wanted["settings"] = r.settings
            self._settle("projects", where, stored, wanted)

    async def _rule_row(self, uow: UnitOfWork, table: sa.Table, rule_id: str) -> sa.Row | None:
        return (await uow.execute(sa.select(table).where(table.c.id == rule_id))).first()

    async def _settle_row(
        self, uow: UnitOfWork, kind: str, where: str, table: sa.Table, row: sa.Row, wanted: dict[str, Any]
    ) -> None:
        """`_settle` for records stored as plain rows (rules): a replacement is an UPDATE of the row."""

        async def replace(values: dict[str, Any]) -> None:
            await uow.execute(sa.update(table).where(table.c.id == row.id).values(**values))

        pending: list[Any] = []
        self._settle(kind, where, _RowView(row), wanted, lambda values: pending.append(replace(values)))
        for update in pending:
            await update

    async def notification_rule(self, uow: UnitOfWork, org_id: str, where: str, r: NotificationRuleRecord) -> None:
        row = await self._rule_row(uow, notification_rules, r.id)
        attrs = {"triggers": r.triggers, "recipients": r.recipients, "query": r.query, "is_enabled": r.is_enabled}
        if row is None:
            await self._create(
                "notification_rules",
                where,
                notification_service.create_rule(uow, org_id, None, r.project_id, attrs, rule_id=r.id),
            )
        elif self._owned("notification_rules", where, row, org_id):
            await self._settle_row(
                uow, "notification_rules", where, notification_rules, row, {**attrs, "project_id": r.project_id}
            )

    async def automation_rule(self, uow: UnitOfWork, org_id: str, where: str, r: AutomationRuleRecord) -> None:
        row = await self._rule_row(uow, automation_rules, r.id)
        attrs = {"name": r.name, "state": r.state, "trigger": r.trigger, "action": r.action}
        if row is None:
            await self._create(
                "automation_rules",
                where,
                automation_service.create_rule(uow, org_id, None, r.project_id, attrs, rule_id=r.id),
            )
        elif self._owned("automation_rules", where, row, org_id):
            await self._settle_row(
                uow, "automation_rules", where, automation_rules, row, {**attrs, "project_id": r.project_id}
            )

    async def view(self, uow: UnitOfWork, org_id: str, where: str, r: ViewRecord) -> None:
        stored = await uow.session.get(CaseView, r.id)
        if stored is None:
            create = views_service.create_view(
                uow, org_id, None, name=r.name, project_id=r.project_id, query=r.query, np_rule_id=r.np_rule_id,
                view_id=r.id,
            )  # fmt: skip
            await self._create("views", where, create)
        elif self._owned("views", where, stored, org_id):
            wanted = {"project_id": r.project_id, "name": r.name, "query": r.query, "np_rule_id": r.np_rule_id}
            self._settle("views", where, stored, wanted)

    # -- cases and their history ------------------------------------------------------------
    async def case(
        self, uow: UnitOfWork, org_id: str, where: str, r: CaseRecord, batch: _Batch | None = None
    ) -> int | None:
        """Create or compare one case; returns its number when created (to raise the project's counter)."""
        batch = batch or await _Batch.read(uow, org_id, [r])
        try:
            wanted = await self._case_fields(uow, org_id, r, batch)
        except DomainError as exc:
            raise _file_error(where, exc) from None
        stored = batch.cases.get(r.id)
        if stored is not None:
            if self._owned("cases", where, stored, org_id):
                self._settle("cases", where, stored, {k: v for k, v in wanted.items() if k in _compared(r)})
            return None
        taken = batch.numbers.get((r.project_id, wanted["number"]))
        if taken is not None:
            self.report._conflict("cases", where, f"key {r.key} is already used by case {taken}; left unchanged")
            return None
        created_by = wanted.pop("created_by_id")
        modified = {k: wanted.pop(k) for k in ("modified_at", "modified_by_id")}
        if wanted["created_at"] is None:
            wanted.pop("created_at")
        if wanted["status"] == Status.CLOSED and wanted["closed_at"] is None:
            wanted["closed_at"] = wanted.get("created_at") or datetime.now(UTC)
        case = Case.open(
            actor_id=created_by,
            history_imported=r.timeline is not None,
            id=r.id,
            org_id=org_id,
            project_id=r.project_id,
            **wanted,
        )
        for name, value in modified.items():
            if value is not None:
                setattr(case, name, value)  # as the source last saw it: history, not a change made here
        uow.add(case)
        batch.numbers[(r.project_id, case.number)] = case.id
        self.created.append(case)
        self.report._created("cases")
        return case.number

    async def _case_fields(self, uow: UnitOfWork, org_id: str, r: CaseRecord, batch: _Batch) -> dict[str, Any]:
        """The case as it would be stored, validated exactly as the API validates a new case."""
        project = await uow.get(Project, org_id, r.project_id, resource="project")
        prefix, _, digits = r.key.rpartition("-")
        if prefix != project.key or not digits.isdigit() or int(digits) < 1:
            raise InvalidInput(f"key {r.key!r} is not {project.key}-<number> of project {project.key}", "/key")
        type_id = r.type_id if r.type_id in batch.types else await cases.check_type(uow, org_id, r.type_id, "/type_id")
        batch.types.add(type_id)
        assignee = r.assignee_id if r.assignee_id in batch.users else None
        if r.assignee_id is not None and assignee is None:
            assignee = await cases.check_user(uow, org_id, r.assignee_id, "/assignee_id")
        custom = (
            await cases.coerce_custom_attributes(uow, org_id, type_id, r.custom_attributes, "/custom_attributes")
            if r.custom_attributes
            else {}
        )
        return {
            "number": int(digits),
            "key": r.key,
            "title": validate_title(r.title, "/title"),
            "description": validate_description(r.description, "/description"),
            "type_id": type_id,
            "status": parse_enum(Status, r.status, "/status").value,
            "priority": parse_enum(Priority, r.priority, "/priority").value,
            "assignee_id": assignee,
            "attributes": validate_attributes(r.attributes, "/attributes"),
            "custom_attributes": custom,
            "due_date": r.due_date,
            "resolved_reason": r.resolved_reason,
            "created_at": _aware(r.created_at),
            "created_by_id": r.created_by_id,
            "closed_at": _aware(r.closed_at),
            "archived_at": _aware(r.archived_at),
            "modified_at": _aware(r.modified_at),
            "modified_by_id": r.modified_by_id,
        }

    async def timeline(
        self,
        uow: UnitOfWork,
        org_id: str,
        where: str,
        case_id: str,
        cells: list[TimelineCellRecord],
        batch: _Batch | None = None,
    ) -> None:
        """The case's cells as history: new ones inserted as they were, stored ones compared."""
        if not cells:
            return
        if batch is not None:
            stored = batch.cells
        else:
            query = sa.select(TimelineCell).where(timeline_cells.c.id.in_([c.id for c in cells]))
            stored = {c.id: c for c in await uow.scalars(query)}
        rows = []
        for i, cell in enumerate(cells):
            wanted = {
                "case_id": case_id,
                "type": cell.type,
                "content": cell.content,
                "author_id": cell.author_id,
                "created_at": _aware(cell.created_at),
                "modified_at": _aware(cell.modified_at),
                "deleted_at": _aware(cell.deleted_at),
            }
            found = stored.get(cell.id)
            if found is None:
                rows.append({"id": cell.id, "org_id": org_id, **wanted})
            elif self._owned("timeline", f"{where}.timeline[{i}]", found, org_id):
                self._settle("timeline", f"{where}.timeline[{i}] (id {cell.id})", found, wanted)
        if rows:
            # History: written as it was, with no events (it already happened, elsewhere).
            await uow.execute(sa.insert(timeline_cells), rows)
            self.report._created("timeline", len(rows))

    async def watchers(
        self,
        uow: UnitOfWork,
        org_id: str,
        where: str,
        case_id: str,
        user_ids: list[str],
        batch: _Batch | None = None,
    ) -> None:
        if batch is not None:
            present = batch.watchers.get(case_id, set())
        else:
            present = set(await uow.scalars(sa.select(watchers.c.user_id).where(watchers.c.case_id == case_id)))
        new = [u for u in dict.fromkeys(user_ids) if u not in present]
        for user_id in new:
            if batch is not None and user_id in batch.users:
                continue
            try:
                await cases.check_user(uow, org_id, user_id, "/watchers")
            except NotFound:
                raise ImportFileError(
                    f"{where}: field 'watchers': user {user_id} is neither in the file nor stored"
                ) from None
        if new:
            now = datetime.now(UTC)
            await uow.execute(
                sa.insert(watchers),
                [{"case_id": case_id, "user_id": u, "org_id": org_id, "created_at": now} for u in new],
            )
            self.report._created("watchers", len(new))
        self.report._unchanged("watchers", len(user_ids) - len(new))

    async def link(self, uow: UnitOfWork, org_id: str, where: str, r: LinkRecord) -> bool:
        """False when an end is a case not imported yet (the live migration links it once both ends exist)."""
        stored = await uow.session.get(CaseLink, r.id)
        fields = {k: getattr(r, k) for k in ("parent_entity_type", "parent_entity_id", "child_entity_type")}
        fields |= {"child_entity_id": r.child_entity_id, "relationship": r.relationship}
        if stored is not None:
            if self._owned("links", where, stored, org_id):
                self._settle("links", where, stored, fields)
            return True
        try:
            await self._create(
                "links", where, links_service.create_link(uow, org_id, None, links_service.NewLink(**fields), r.id)
            )
        except ImportFileError:
            if await self._missing_case_end(uow, org_id, r):
                return False
            raise
        return True

    async def _missing_case_end(self, uow: UnitOfWork, org_id: str, r: LinkRecord) -> bool:
        for kind, ident in ((r.parent_entity_type, r.parent_entity_id), (r.child_entity_type, r.child_entity_id)):
            if kind == "CASE":
                found = await uow.scalar(
                    sa.select(cases_table.c.id).where(cases_table.c.id == ident, cases_table.c.org_id == org_id)
                )
                if found is None:
                    return True
        return False


@dataclass
class _Batch:
    """What a batch of cases needs to know of what is stored, read in a few queries instead of several per case."""

    cases: dict[str, Case]
    numbers: dict[tuple[str, int], str]  # (project, number) → the case that has it
    users: set[str]  # the org's user ids
    types: set[str]  # case types known to exist
    cells: dict[str, TimelineCell]
    watchers: dict[str, set[str]]

    @classmethod
    async def read(cls, uow: UnitOfWork, org_id: str, records: list[CaseRecord]) -> _Batch:
        ids = [r.id for r in records]
        stored = {c.id: c for c in await uow.scalars(sa.select(Case).where(cases_table.c.id.in_(ids)))}
        numbers: dict[tuple[str, int], str] = {}
        wanted = {(r.project_id, int(r.key.rpartition("-")[2])) for r in records if r.key.rpartition("-")[2].isdigit()}
        if wanted:
            rows = await uow.execute(
                sa.select(cases_table.c.id, cases_table.c.project_id, cases_table.c.number).where(
                    cases_table.c.project_id.in_({p for p, _ in wanted}),
                    cases_table.c.number.in_({n for _, n in wanted}),
                )
            )
            numbers = {(row.project_id, row.number): row.id for row in rows}
        cells = [c.id for r in records for c in r.timeline or ()]
        found_cells = (
            {c.id: c for c in await uow.scalars(sa.select(TimelineCell).where(timeline_cells.c.id.in_(cells)))}
            if cells
            else {}
        )
        watching: dict[str, set[str]] = {}
        for row in await uow.execute(
            sa.select(watchers.c.case_id, watchers.c.user_id).where(watchers.c.case_id.in_(ids))
        ):
            watching.setdefault(row.case_id, set()).add(row.user_id)
        users = set(await uow.scalars(sa.select(users_table.c.id).where(users_table.c.org_id == org_id)))
        return cls(stored, numbers, users, {STANDARD_TYPE_ID}, found_cells, watching)


class _RowView:
    """A stored row read like an aggregate (attribute access), for `_settle`."""

    def __init__(self, row: sa.Row) -> None:
        self.__dict__.update(row._mapping)


def _compared(r: Record) -> set[str]:
    """What decides that a stored case is the same: its identity and content, and any time the file gives."""
    always = {"project_id", "number", "key", "title", "description", "type_id", "status", "priority"}
    always |= {"assignee_id", "attributes", "custom_attributes", "due_date", "resolved_reason"}
    given = {"created_at", "closed_at", "archived_at", "created_by_id", "modified_at", "modified_by_id"}
    return always | (r.given() & given)


def new_secret_file_name() -> str:
    return f"reissued-keys-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}.json"


async def import_file(
    context: AppContext,
    path: Path,
    *,
    on_case: Callable[[], None] | None = None,
    options: ImportOptions | None = None,
) -> ImportReport:
    """Import `path` (format: docs/import-format.md). Raises ImportFileError naming the bad record and field.

    A coroutine: run it on the loop that owns `context` (the CLI uses asyncio.run). `on_case` is called once
    per case handled, for progress bars.
    """
    document = load(Path(path))
    report = ImportReport()
    importer = Importer(context, report, options, on_case)
    try:
        for index, org in enumerate(document.orgs):
            await importer.org(index, org)
    finally:
        await importer.close()
    return report


def total_cases(path: Path) -> int:
    """How many cases the file holds (for sizing a progress bar before importing)."""
    return sum(len(org.cases) for org in load(Path(path)).orgs)
