"""Batch case creation (case-indexer's IngestCases): many intakes, one transaction, the rules of create_case.

Each item is checked exactly as `create_case` checks one case (same errors, same pointers, same order), but
the reads are set-based (one query per kind of reference for the whole batch) and the writes are one
multi-row INSERT per table. Keys stay gap-free: each project's block of numbers is taken with one
`UPDATE ... RETURNING` that adds the block's size, which holds the project row's lock (PostgreSQL) or the
database write lock (SQLite) until commit, exactly like the one-case path. Idempotency by intake key holds
within the batch (a repeated key gets the case of its first occurrence) and across batches (a known key gets
its existing case). On PostgreSQL a batch that created some of the keys in the same project while this one
waited for the project's lock is seen by a second look once the lock is held (the numbers not needed go back
to the still-locked counter); the look is skipped for a project whose counter has not moved since the batch read
it, before its first look (no case was created there meanwhile). The rare race left, one key sent to two
projects at once, meets the unique constraint: the loser's transaction rolls back whole, counter included, and
`create_cases_retrying` runs it again, now finding the winner's case.

That constraint also lets a batch skip the read of its known intake keys (and the second look) when it is likely
that none is known: `KnownKeyLookups` bets so after a run of batches that found none. A lost bet costs the batch
one attempt, rolled back whole by the constraint, and the next run of batches reads again.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from casem.adapters.search.document import CaseDocument
from casem.adapters.storage.conflicts import is_unique_violation
from casem.adapters.storage.set_statements import one_of_chunks
from casem.adapters.storage.tables import case_types, cases, projects, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases.service import NewCase, attribute_configs, coerce_with_configs
from casem.app.ids import UUID_RE
from casem.app.search.documents import created_case_document
from casem.domain.case_types import CustomAttributeConfig
from casem.domain.cases import (
    STANDARD_TYPE_ID,
    STANDARD_TYPE_NAME,
    Case,
    Priority,
    Status,
    parse_enum,
    validate_description,
    validate_title,
)
from casem.domain.errors import DomainError, InvalidInput, NotFound
from casem.domain.events import DomainEvent
from casem.domain.ids import new_id
from casem.domain.projects import Project

# How each batch treated its intake keys: "read" them first, "skipped" the read (a bet won), or skipped it and met a
# known key ("bet_lost": the batch ran again with the read). Many lost bets mean known keys come spread out, not in
# runs, and the bet costs more than it saves (KnownKeyLookups.quiet_batches).
KNOWN_KEY_LOOKUPS = Counter(
    "casem_batch_intake_key_lookups_total", "Batches by how they looked their intake keys up", ["outcome"]
)

# How often a batch that lost an intake-key race is run again before the conflict is reported (one more than reads
# need: a batch that skipped its read and met a known key is run again with it).
RACE_ATTEMPTS = 4


@dataclass(frozen=True)
class BatchItem:
    org_id: str
    actor_id: str | None
    new: NewCase
    # The W3C trace context the item was sent in (plain strings): its case's event carries it, not the batch's.
    trace: Mapping[str, str] | None = None
    # The caller writes the created case's search document itself (case-indexer): its `case.created` says so.
    indexed_by_caller: bool = False


@dataclass
class BatchOutcome:
    """What became of one item: its case (created now or found by intake key), or why it was refused."""

    case: Case | None = None
    created: bool = False
    error: DomainError | None = None
    # Found by its intake key among the cases an earlier batch created (not a repeat within this batch).
    known: bool = False
    # A case created for a caller that indexes it (`indexed_by_caller`): its search document, built from what the
    # batch had at hand, so that the caller need not read the case back.
    document: CaseDocument | None = None


@dataclass
class _Checked:
    index: int
    item: BatchItem
    title: str
    description: str
    priority: Priority
    status: Status


def _check_fields(index: int, item: BatchItem) -> _Checked:
    """create_case's checks that need no database, in its order."""
    new = item.new
    title = validate_title(new.title)
    description = validate_description(new.description) if new.description is not None else ""
    priority = parse_enum(Priority, new.priority, "/data/attributes/priority") if new.priority else Priority.NOT_DEFINED
    status = parse_enum(Status, new.status, "/data/attributes/status_name") if new.status else Status.OPEN
    if not UUID_RE.match(new.project_id):
        raise InvalidInput(f"project id {new.project_id!r} is not a valid UUID", "/data/relationships/project")
    if new.type_id != STANDARD_TYPE_ID and not UUID_RE.match(new.type_id):
        raise InvalidInput(f"type_id {new.type_id!r} is not a valid UUID", "/data/attributes/type_id")
    return _Checked(index, item, title, description, priority, status)


def _with_intake_key_postgres(statement: sa.Select[Any], org_id: str, keys: Sequence[str]) -> sa.Select[Any]:
    """`statement` over cases, narrowed to the org's cases with one of these intake keys (PostgreSQL): the keys as a
    relation joined to the cases, not `intake_key = ANY(:keys)`. The latter, prepared (a generic plan, the keys a
    parameter), is planned before the table's statistics catch up with a tenant's first thousands of cases as a scan
    of all the org's cases by another index, each tested against the whole list in turn: 150 ms a batch of 500 at
    10,500 cases, growing with them. Joined, the keys are looked up in (org_id, intake_key) or hashed: 2-6 ms."""
    wanted = (
        sa.func.unnest(sa.bindparam(None, list(keys), type_=postgresql.ARRAY(sa.Text())))
        .table_valued("key")
        .render_derived()
    )
    return statement.join(wanted, sa.and_(cases.c.org_id == org_id, cases.c.intake_key == wanted.c.key))


async def _existing_by_intake_key(uow: UnitOfWork, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Case]:
    by_org: dict[str, list[str]] = defaultdict(list)
    for org_id, key in wanted:
        by_org[org_id].append(key)
    found: dict[tuple[str, str], Case] = {}
    for org_id, keys in by_org.items():
        if uow.db.dialect == "postgresql":
            statements = [_with_intake_key_postgres(sa.select(Case), org_id, sorted(set(keys)))]
        else:
            statements = [
                sa.select(Case).where(cases.c.org_id == org_id, condition)
                for condition in one_of_chunks(cases.c.intake_key, sorted(set(keys)), uow.db.dialect)
            ]
        for statement in statements:
            for case in await uow.scalars(statement):
                found[(org_id, case.intake_key)] = case
    return found


async def _live_types(uow: UnitOfWork, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The name of each wanted (org id, type id) pair that is a live case type of that org."""
    ids = sorted({type_id for _, type_id in wanted})
    live: dict[tuple[str, str], str] = {}
    for condition in one_of_chunks(case_types.c.id, ids, uow.db.dialect):
        rows = await uow.execute(
            sa.select(case_types.c.org_id, case_types.c.id, case_types.c.name).where(
                condition, case_types.c.deleted_at.is_(None)
            )
        )
        live.update(((org_id, type_id), name) for org_id, type_id, name in rows if (org_id, type_id) in wanted)
    return live


@functools.cache
def _one_project() -> sa.Select[tuple[Project]]:
    """The select of one project, built once (on first use: Project is mapped when storage is set up)."""
    return sa.select(Project).where(projects.c.id == sa.bindparam("the_project"))


async def _projects(uow: UnitOfWork, ids: set[str]) -> dict[str, Project]:
    found: dict[str, Project] = {}
    if len(ids) == 1:  # nearly every batch: one project
        [the_project] = ids
        for project in (await uow.execute(_one_project(), {"the_project": the_project})).scalars():
            found[project.id] = project
        return found
    for condition in one_of_chunks(projects.c.id, sorted(ids), uow.db.dialect):
        for project in await uow.scalars(sa.select(Project).where(condition)):
            found[project.id] = project
    return found


async def _projects_and_existing(
    uow: UnitOfWork, project_ids: set[str], wanted: list[tuple[str, str]]
) -> tuple[dict[str, Project], dict[tuple[str, str], Case]]:
    """The projects, then the cases already created for the wanted (org id, intake key) pairs. On PostgreSQL one
    round trip: the projects joined to the ids of the known cases (those cases loaded by a second query only when
    there are some, a replay)."""
    if uow.db.dialect != "postgresql" or not project_ids or not wanted:
        found_projects = await _projects(uow, project_ids)
        return found_projects, await _existing_by_intake_key(uow, wanted)
    by_org: dict[str, set[str]] = defaultdict(set)
    for org_id, key in wanted:
        by_org[org_id].add(key)
    per_org = [
        _with_intake_key_postgres(sa.select(cases.c.id).select_from(cases), org_id, sorted(keys))
        for org_id, keys in by_org.items()
    ]
    known_ids = sa.union_all(*per_org).subquery("known_ids") if len(per_org) > 1 else per_org[0].subquery("known_ids")
    known = sa.select(sa.func.array_agg(known_ids.c.id).label("ids")).subquery("known")
    [is_wanted_project] = one_of_chunks(projects.c.id, sorted(project_ids), "postgresql")
    rows = (
        await uow.execute(sa.select(known.c.ids, Project).select_from(known).outerjoin(Project, is_wanted_project))
    ).all()
    found_projects = {project.id: project for _, project in rows if project is not None}
    known_ids = rows[0].ids or []
    existing: dict[tuple[str, str], Case] = {}
    if known_ids:
        [is_known] = one_of_chunks(cases.c.id, known_ids, "postgresql")
        for case in await uow.scalars(sa.select(Case).where(is_known)):
            existing[(case.org_id, case.intake_key)] = case
    return found_projects, existing


async def _users(uow: UnitOfWork, ids: set[str]) -> dict[tuple[str, str], str]:
    """The handle of each of these users, by (org id, user id)."""
    found: dict[tuple[str, str], str] = {}
    for condition in one_of_chunks(users.c.id, sorted(ids), uow.db.dialect):
        rows = await uow.execute(sa.select(users.c.org_id, users.c.id, users.c.handle).where(condition))
        found.update(((org_id, user_id), handle) for org_id, user_id, handle in rows)
    return found


# Built once, like `_one_project`: every batch runs both. Building them (SQLAlchemy's expression objects and their
# cache keys) anew each batch was about a third of what a batch of one case cost on the event loop (2.1-2.5 ms, now
# 1.5-1.8 ms on SQLite and PostgreSQL alike), a fixed cost each IngestCases call paid.
_TAKE_NUMBERS = (
    sa.update(projects)
    .where(
        projects.c.id == sa.bindparam("the_project"),
        projects.c.org_id == sa.bindparam("the_org"),
        projects.c.deleted_at.is_(None),
    )
    .values(case_counter=projects.c.case_counter + sa.bindparam("numbers", type_=sa.Integer()))
    .returning(projects.c.case_counter)
)


async def _allocate_block(uow: UnitOfWork, org_id: str, project_id: str, count: int) -> int | None:
    """Take `count` consecutive case numbers of the project; returns the first, None if the project is gone."""
    taken = await uow.execute(_TAKE_NUMBERS, {"the_project": project_id, "the_org": org_id, "numbers": count})
    row = taken.one_or_none()
    return None if row is None else row.case_counter - count + 1


async def _drop_created_meanwhile(
    uow: UnitOfWork,
    by_project: dict[str, list[tuple[_Checked, Project, dict[str, Any]]]],
    outcomes: list[BatchOutcome],
) -> None:
    """PostgreSQL, READ COMMITTED: a batch that created some of these intake keys in the same project committed
    before this one got the project's lock, after the first look. Now that the locks are held, look again:
    those items get the committed case, and their numbers go back to the counter (still locked: gap-free)."""
    wanted = [(c.item.org_id, c.item.new.intake_key) for block in by_project.values() for c, _, _ in block]
    found = await _existing_by_intake_key(uow, [(org, key) for org, key in wanted if key])
    if not found:
        return
    for project_id, block in by_project.items():
        kept = []
        for entry in block:
            c = entry[0]
            case = found.get((c.item.org_id, c.item.new.intake_key)) if c.item.new.intake_key else None
            if case is None:
                kept.append(entry)
            else:
                outcomes[c.index].case = case
                outcomes[c.index].known = True
        if len(kept) < len(block):
            await uow.execute(
                sa.update(projects)
                .where(projects.c.id == project_id)
                .values(case_counter=projects.c.case_counter - (len(block) - len(kept)))
            )
            block[:] = kept


async def create_cases(
    uow: UnitOfWork, items: Sequence[BatchItem], *, look_up_known: bool = True
) -> list[BatchOutcome]:
    """Create the batch's cases in the caller's transaction (commit it to keep them); one outcome per item.

    `look_up_known=False`: the intake keys are not read first, a bet that none is known; if one is, the insert meets
    the unique constraint on (org, intake key) and raises, and the transaction must be rolled back."""
    outcomes = [BatchOutcome() for _ in items]
    leaders: dict[tuple[str, str], int] = {}
    repeats: list[tuple[int, int]] = []
    candidates: list[int] = []
    for i, item in enumerate(items):
        if item.new.intake_key:
            first = leaders.setdefault((item.org_id, item.new.intake_key), i)
            if first != i:
                repeats.append((i, first))
                continue
        candidates.append(i)

    # The projects first, then the intake keys: a batch creating some of these keys in one of these projects that
    # commits after this read changes the project's counter, which tells the block allocation below to look again.
    # (On PostgreSQL both are read by one statement, so with one snapshot: what it does not see moves the counter.)
    found_projects, existing = await _projects_and_existing(
        uow,
        {items[i].new.project_id for i in candidates if UUID_RE.match(items[i].new.project_id)},
        [(items[i].org_id, items[i].new.intake_key) for i in candidates if items[i].new.intake_key and look_up_known],
    )
    counters_read = {project_id: project.case_counter for project_id, project in found_projects.items()}
    checked: list[_Checked] = []
    for i in candidates:
        item = items[i]
        found = existing.get((item.org_id, item.new.intake_key)) if item.new.intake_key else None
        if found is not None:
            outcomes[i].case = found
            outcomes[i].known = True
            continue
        try:
            checked.append(_check_fields(i, item))
        except DomainError as error:
            outcomes[i].error = error

    # References, one query per kind for the whole batch.
    types = await _live_types(
        uow, {(c.item.org_id, c.item.new.type_id) for c in checked if c.item.new.type_id != STANDARD_TYPE_ID}
    )
    assignees = await _users(
        uow,
        {c.item.new.assignee_id for c in checked if c.item.new.assignee_id and UUID_RE.match(c.item.new.assignee_id)},
    )
    configs: dict[tuple[str, str], dict[str, CustomAttributeConfig]] = {}
    ready: list[tuple[_Checked, Project, dict[str, Any]]] = []
    for c in checked:
        org_id, new = c.item.org_id, c.item.new
        try:
            if new.type_id != STANDARD_TYPE_ID and (org_id, new.type_id) not in types:
                raise NotFound("case type", new.type_id)
            project = found_projects.get(new.project_id)
            if project is None or project.org_id != org_id or project.deleted_at is not None:
                raise NotFound("project", new.project_id)
            if (
                new.type_id != STANDARD_TYPE_ID
                and project.enabled_custom_case_types
                and new.type_id not in project.enabled_custom_case_types
            ):
                raise InvalidInput(
                    f"case type {new.type_id} is not enabled in project {project.key}", "/data/attributes/type_id"
                )
            if new.assignee_id:
                if not UUID_RE.match(new.assignee_id):
                    raise InvalidInput(
                        f"user id {new.assignee_id!r} is not a valid UUID", "/data/relationships/assignee"
                    )
                if (org_id, new.assignee_id) not in assignees:
                    raise NotFound("user", new.assignee_id)
            custom: dict[str, Any] = {}
            if new.custom_attributes:
                if (org_id, new.type_id) not in configs:
                    configs[(org_id, new.type_id)] = await attribute_configs(uow, org_id, new.type_id)
                custom = coerce_with_configs(
                    configs[(org_id, new.type_id)], new.custom_attributes, "/data/attributes/custom_attributes"
                )
        except DomainError as error:
            outcomes[c.index].error = error
            continue
        ready.append((c, project, custom))

    # Case numbers: one block per project, projects in id order (concurrent batches lock them alike).
    by_project: dict[str, list[tuple[_Checked, Project, dict[str, Any]]]] = defaultdict(list)
    for entry in ready:
        by_project[entry[1].id].append(entry)
    firsts: dict[str, int] = {}
    for project_id in sorted(by_project):
        block = by_project[project_id]
        first = await _allocate_block(uow, block[0][1].org_id, project_id, len(block))
        if first is None:  # deleted since it was read
            for c, _, _ in by_project.pop(project_id):
                outcomes[c.index].error = NotFound("project", project_id)
            continue
        firsts[project_id] = first
    if uow.db.dialect != "sqlite" and look_up_known:
        # Only where the counter moved since it was read: no batch created a case in the other projects meanwhile.
        moved = {pid: block for pid, block in by_project.items() if firsts[pid] - 1 != counters_read.get(pid)}
        await _drop_created_meanwhile(uow, moved, outcomes)
    created: list[Case] = []
    for project_id, block in by_project.items():
        if not block:  # every item of it was created meanwhile
            continue
        project = block[0][1]
        for number, (c, _, custom) in enumerate(block, start=firsts[project_id]):
            new = c.item.new
            case = uow.build(
                Case,
                created_by_id=c.item.actor_id,
                id=new.case_id or new_id(),
                org_id=c.item.org_id,
                project_id=project_id,
                number=number,
                key=f"{project.key}-{number}",
                title=c.title,
                description=c.description,
                type_id=new.type_id,
                status=c.status.value,
                priority=c.priority.value,
                assignee_id=new.assignee_id,
                attributes=dict(new.attributes or {}),
                custom_attributes=custom,
                intake_key=new.intake_key,
            )
            case.record_opened(indexed_by_creator=c.item.indexed_by_caller)
            if c.item.trace:
                uow.trace_case(case.id, c.item.trace)
            if c.status is Status.CLOSED:
                case.closed_at = case.created_at
            outcomes[c.index].case = case
            outcomes[c.index].created = True
            created.append(case)
    if created:
        await uow.insert_new(created)  # sets each case's revision, which its document is versioned by
    for c, project, _ in ready:
        outcome = outcomes[c.index]
        if outcome.created and c.item.indexed_by_caller and outcome.case is not None:
            case = outcome.case
            standard = case.type_id == STANDARD_TYPE_ID  # the built-in type: not read above, and never renamed
            outcome.document = created_case_document(
                case,
                project_key=project.key,
                type_name=STANDARD_TYPE_NAME if standard else types[(case.org_id, case.type_id)],
                assignee_handle=assignees[(case.org_id, case.assignee_id)] if case.assignee_id else None,
            )
    for i, first in repeats:
        outcomes[i] = BatchOutcome(case=outcomes[first].case, created=False, error=outcomes[first].error)
    return outcomes


@dataclass
class KnownKeyLookups:
    """Whether a caller's next batch reads which of its intake keys are known before it writes them, learnt from
    its batches before. Known keys come in runs (a redelivery after a crash or a rebalance, a producer re-sending),
    and between runs none is known: after `quiet_batches` batches in a row that found none, the next ones skip the
    read, until one finds a known key the hard way (see `create_cases`). The read is most of what a batch asks the
    database before it writes: its intake keys looked up in the org's cases."""

    quiet_batches: int = 8
    _quiet: int = field(default=0, init=False)

    def look_up(self) -> bool:
        return self._quiet < self.quiet_batches

    def saw(self, known: bool) -> None:
        self._quiet = 0 if known else self._quiet + 1


async def create_cases_retrying(
    open_uow: Callable[[], UnitOfWork], items: Sequence[BatchItem], lookups: KnownKeyLookups | None = None
) -> tuple[list[BatchOutcome], list[DomainEvent]]:
    """`create_cases` in a transaction of its own, committed; run again when it lost an intake-key race (or a bet
    that none of its keys was known: `lookups`, without which every batch reads its keys first)."""
    look_up = lookups is None or lookups.look_up()
    for attempt in range(1, RACE_ATTEMPTS + 1):
        try:
            async with open_uow() as uow:
                outcomes = await create_cases(uow, items, look_up_known=look_up)
                events = await uow.commit()
        except IntegrityError as exc:
            if attempt == RACE_ATTEMPTS or not is_unique_violation(exc):
                raise
            if lookups is not None and not look_up:
                KNOWN_KEY_LOOKUPS.labels("bet_lost").inc()
                lookups.saw(known=True)  # a lost bet: read the keys again for the next run of batches
            look_up = True
            continue
        KNOWN_KEY_LOOKUPS.labels("read" if look_up else "skipped").inc()
        if lookups is not None:
            lookups.saw(known=any(o.known for o in outcomes))
        return outcomes, events
    raise AssertionError("unreachable")
