"""The importer: every record goes through the same application services and aggregates as the API.

Idempotent by id: a record whose id is stored with the same content is left alone ("unchanged"); one
whose id is stored with other content is a conflict, reported and never overwritten. Only records
created here record domain events, so a second run of the same file writes no new outbox rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import cases as cases_table
from casem.adapters.storage.tables import credentials, projects
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.case_types import service as case_types
from casem.app.cases import service as cases
from casem.app.context import AppContext
from casem.app.custom_attributes import service as custom_attributes
from casem.app.identity import service as identity
from casem.app.importer.format import (
    CaseRecord,
    CaseTypeRecord,
    CustomAttributeRecord,
    ImportFileError,
    KeyRecord,
    OrgRecord,
    ProjectRecord,
    Record,
    TeamRecord,
    UserRecord,
    load,
)
from casem.app.projects import service as projects_service
from casem.domain.case_types import CaseType, CustomAttributeConfig
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
from casem.domain.identity import API_KEY, APP_KEY, Credential, Org, Team, User, hash_key
from casem.domain.projects import Project

CASE_BATCH = 200  # cases per transaction: progress is durable, and a huge file never holds one giant transaction
KINDS = ("orgs", "users", "teams", "keys", "case_types", "custom_attributes", "projects", "cases")


@dataclass
class Counts:
    created: int = 0
    unchanged: int = 0
    conflicts: int = 0


@dataclass
class ImportReport:
    counts: dict[str, Counts] = field(default_factory=lambda: {k: Counts() for k in KINDS})
    conflicts: list[str] = field(default_factory=list)

    @property
    def created(self) -> int:
        return sum(c.created for c in self.counts.values())

    def _created(self, kind: str) -> None:
        self.counts[kind].created += 1

    def _unchanged(self, kind: str) -> None:
        self.counts[kind].unchanged += 1

    def _conflict(self, kind: str, where: str, detail: str) -> None:
        self.counts[kind].conflicts += 1
        self.conflicts.append(f"{where}: {detail}")


def _field_of(pointer: str | None) -> str:
    return pointer.rstrip("/").rsplit("/", 1)[-1] if pointer else ""


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _Importer:
    def __init__(self, context: AppContext, report: ImportReport, on_case: Callable[[], None] | None) -> None:
        self.context = context
        self.report = report
        self.on_case = on_case or (lambda: None)
        # The session's identity map holds flushed objects weakly, and the unit of work collects events from
        # the objects it still holds at commit: keep every aggregate created here alive until its commit.
        self.created: list[Any] = []

    # -- comparison -----------------------------------------------------------------
    def _same(self, kind: str, where: str, stored: Any, wanted: dict[str, Any]) -> bool:
        """True when the stored record matches; otherwise record a conflict naming the differing fields."""
        differ = {k: (getattr(stored, k), v) for k, v in wanted.items() if getattr(stored, k) != v}
        if not differ:
            self.report._unchanged(kind)
            return True
        parts = "; ".join(f"{k} is {new!r} in the file but {old!r} here" for k, (old, new) in differ.items())
        self.report._conflict(kind, where, f"id already stored with other content ({parts}); left unchanged")
        return False

    async def _create(self, kind: str, where: str, create: Any) -> None:
        """Run one create through its service; a domain conflict is reported, bad input stops the import."""
        try:
            self.created.append(await create)
        except Conflict as exc:
            self.report._conflict(kind, where, exc.detail)
            return
        except InvalidInput as exc:
            field_name = _field_of(exc.pointer)
            raise ImportFileError(
                f"{where}: {'field ' + repr(field_name) + ': ' if field_name else ''}{exc.detail}"
            ) from None
        except NotFound as exc:
            raise ImportFileError(f"{where}: {exc}") from None
        except DomainError as exc:
            raise ImportFileError(f"{where}: {exc}") from None
        self.report._created(kind)

    # -- one org --------------------------------------------------------------------
    async def org(self, index: int, org: OrgRecord) -> None:
        base = f"orgs[{index}] (id {org.id})"
        async with self.context.uow() as uow:
            stored = await uow.session.get(Org, org.id)
            if stored is None:
                await self._create("orgs", base, identity.create_org(uow, org.name, org_id=org.id))
            else:
                self._same("orgs", base, stored, {"name": org.name})
            await uow.session.flush()
            for kind, records, step in (
                ("users", org.users, self.user),
                ("teams", org.teams, self.team),
                ("keys", org.keys, self.key),
                ("case_types", org.case_types, self.case_type),
                ("custom_attributes", org.custom_attributes, self.custom_attribute),
                ("projects", org.projects, self.project),
            ):
                for i, record in enumerate(records):
                    await step(uow, org.id, f"orgs[{index}].{kind}[{i}] (id {record.id})", record)
                await uow.session.flush()  # later sections refer to these rows
            await uow.commit()
            self.created.clear()
        for start in range(0, len(org.cases), CASE_BATCH):
            async with self.context.uow() as uow:
                highest: dict[str, int] = {}
                for i, record in enumerate(org.cases[start : start + CASE_BATCH], start):
                    number = await self.case(uow, org.id, f"orgs[{index}].cases[{i}] (id {record.id})", record)
                    if number is not None:
                        highest[record.project_id] = max(number, highest.get(record.project_id, 0))
                    self.on_case()
                await uow.session.flush()
                for project_id, number in highest.items():
                    # New cases continue after the highest imported number, never reusing an imported key.
                    await uow.execute(
                        sa.update(projects)
                        .where(projects.c.id == project_id, projects.c.case_counter < number)
                        .values(case_counter=number)
                    )
                await uow.commit()
                self.created.clear()

    def _owned(self, kind: str, where: str, stored: Any, org_id: str) -> bool:
        if getattr(stored, "org_id", org_id) != org_id:
            self.report._conflict(kind, where, "id already belongs to another org; left unchanged")
            return False
        return True

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
            self._same("users", where, stored, wanted)

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
            self._same("teams", where, stored, wanted)

    async def key(self, uow: UnitOfWork, org_id: str, where: str, r: KeyRecord) -> None:
        kind = API_KEY if r.kind == "api" else APP_KEY
        key_hash = hash_key(r.secret) if r.secret is not None else r.key_hash
        stored = await uow.session.get(Credential, r.id)
        if stored is not None:
            if self._owned("keys", where, stored, org_id):
                self._same(
                    "keys", where, stored, {"kind": kind, "name": r.name, "user_id": r.user_id, "key_hash": key_hash}
                )
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
                uow, org_id, kind, r.name, r.user_id, r.secret, r.id,
                key_hash=r.key_hash, last4=r.last4 if r.key_hash else "",
            )  # fmt: skip

        await self._create("keys", where, issue())

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
            self._same("case_types", where, stored, wanted)

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
            self._same("custom_attributes", where, stored, wanted)

    async def project(self, uow: UnitOfWork, org_id: str, where: str, r: ProjectRecord) -> None:
        stored = await uow.session.get(Project, r.id)
        if stored is None:
            create = projects_service.create_project(
                uow, org_id, None, key=r.key, name=r.name, enabled_custom_case_types=r.enabled_custom_case_types,
                team_uuid=r.team_id, project_id=r.id,
            )  # fmt: skip
            await self._create("projects", where, create)
        elif self._owned("projects", where, stored, org_id):
            wanted = {"key": r.key, "name": r.name, "team_id": r.team_id, "deleted_at": None}
            wanted["enabled_custom_case_types"] = r.enabled_custom_case_types
            self._same("projects", where, stored, wanted)

    async def case(self, uow: UnitOfWork, org_id: str, where: str, r: CaseRecord) -> int | None:
        """Create or compare one case; returns its number when created (to raise the project's counter)."""
        try:
            wanted = await self._case_fields(uow, org_id, r)
        except DomainError as exc:
            detail = exc.detail if isinstance(exc, InvalidInput | Conflict) else str(exc)
            field_name = _field_of(getattr(exc, "pointer", None))
            raise ImportFileError(
                f"{where}: {'field ' + repr(field_name) + ': ' if field_name else ''}{detail}"
            ) from None
        stored = await uow.session.get(Case, r.id)
        if stored is not None:
            if self._owned("cases", where, stored, org_id):
                self._same("cases", where, stored, {k: v for k, v in wanted.items() if k in _compared(r)})
            return None
        taken = await uow.scalar(
            sa.select(cases_table.c.id).where(
                cases_table.c.project_id == r.project_id, cases_table.c.number == wanted["number"]
            )
        )
        if taken is not None:
            self.report._conflict("cases", where, f"key {r.key} is already used by case {taken}; left unchanged")
            return None
        created_by = wanted.pop("created_by_id")
        if wanted["created_at"] is None:
            wanted.pop("created_at")
        if wanted["status"] == Status.CLOSED and wanted["closed_at"] is None:
            wanted["closed_at"] = wanted.get("created_at") or datetime.now(UTC)
        case = Case.open(actor_id=created_by, id=r.id, org_id=org_id, project_id=r.project_id, **wanted)
        uow.add(case)
        self.created.append(case)
        self.report._created("cases")
        return case.number

    async def _case_fields(self, uow: UnitOfWork, org_id: str, r: CaseRecord) -> dict[str, Any]:
        """The case as it would be stored, validated exactly as the API validates a new case."""
        project = await uow.get(Project, org_id, r.project_id, resource="project")
        prefix, _, digits = r.key.rpartition("-")
        if prefix != project.key or not digits.isdigit() or int(digits) < 1:
            raise InvalidInput(f"key {r.key!r} is not {project.key}-<number> of project {project.key}", "/key")
        type_id = await cases.check_type(uow, org_id, r.type_id, "/type_id")
        assignee = await cases.check_user(uow, org_id, r.assignee_id, "/assignee_id") if r.assignee_id else None
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
        }


def _compared(r: Record) -> set[str]:
    """What decides that a stored case is the same: its identity and content, and any time the file gives."""
    always = {"project_id", "number", "key", "title", "description", "type_id", "status", "priority"}
    always |= {"assignee_id", "attributes", "custom_attributes", "due_date", "resolved_reason"}
    return always | (r.given() & {"created_at", "closed_at", "archived_at", "created_by_id"})


async def import_file(context: AppContext, path: Path, *, on_case: Callable[[], None] | None = None) -> ImportReport:
    """Import `path` (format: docs/import-format.md). Raises ImportFileError naming the bad record and field.

    A coroutine: run it on the loop that owns `context` (the CLI uses asyncio.run). `on_case` is called once
    per case handled, for progress bars.
    """
    document = load(Path(path))
    report = ImportReport()
    importer = _Importer(context, report, on_case)
    for index, org in enumerate(document.orgs):
        await importer.org(index, org)
    return report


def total_cases(path: Path) -> int:
    """How many cases the file holds (for sizing a progress bar before importing)."""
    return sum(len(org.cases) for org in load(Path(path)).orgs)
