"""Help for the console's search box: what may come next at the caret, and where a query goes wrong.

Suggestions are computed from the word under the caret: `prio` suggests the field `priority:`, and
`priority:p` the values `P1`…`P5`. Values come from the org's own data where they are open-ended
(project keys, people, case types) and from the domain's enumerations otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa

from casem.adapters.storage.tables import case_types, projects, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.cases import Priority, Status
from casem.domain.search_query import KNOWN_FIELDS, QuerySyntaxError, parse_query

SUGGESTIONS_MAX = 8
FIELD_HELP = {
    "status": "open, in progress or closed",
    "priority": "P1 (most urgent) to P5, or NOT_DEFINED",
    "project": "a project key",
    "assignee": "a person's e-mail or handle",
    "type": "a case type's name",
    "key": "one case, e.g. PROJ-12",
    "archived": "true to search archived cases",
}
# The word under the caret: back to the last blank or parenthesis (a quoted value is not completed).
_WORD = re.compile(r"[^\s()]*$")


@dataclass(frozen=True)
class Suggestion:
    insert: str  # what replaces the word under the caret
    label: str
    hint: str = ""


@dataclass(frozen=True)
class QueryProblem:
    position: int
    message: str


def check_query(query: str) -> QueryProblem | None:
    try:
        parse_query(query)
    except QuerySyntaxError as exc:
        return QueryProblem(exc.position, str(exc))
    return None


def word_at(query: str, caret: int) -> tuple[int, str]:
    """(start, text) of the word that ends at the caret."""
    caret = max(0, min(caret, len(query)))
    match = _WORD.search(query[:caret])
    start = match.start() if match else caret
    return start, query[start:caret]


async def _values(uow: UnitOfWork, org_id: str, field: str, prefix: str) -> list[tuple[str, str]]:
    lowered = prefix.lower()
    if field == "status":
        return [(s.value, "") for s in Status]
    if field == "priority":
        return [(p.value, "") for p in Priority]
    if field == "archived":
        return [("true", ""), ("false", "")]
    like = f"{lowered.replace('%', '').replace('_', '')}%"
    if field == "project":
        rows = await uow.execute(
            sa.select(projects.c.key, projects.c.name)
            .where(
                projects.c.org_id == org_id, projects.c.deleted_at.is_(None), sa.func.lower(projects.c.key).like(like)
            )
            .order_by(projects.c.key)
            .limit(SUGGESTIONS_MAX)
        )
        return [(r.key, r.name) for r in rows]
    if field == "assignee":
        rows = await uow.execute(
            sa.select(users.c.email, users.c.name)
            .where(users.c.org_id == org_id, sa.func.lower(users.c.email).like(like))
            .order_by(users.c.email)
            .limit(SUGGESTIONS_MAX)
        )
        return [(r.email, r.name or "") for r in rows]
    if field == "type":
        rows = await uow.execute(
            sa.select(case_types.c.name)
            .where(
                sa.or_(case_types.c.org_id == org_id, case_types.c.org_id.is_(None)),
                case_types.c.deleted_at.is_(None),
            )
            .order_by(case_types.c.name)
        )
        return [(r.name, "") for r in rows]
    return []


def _quoted(value: str) -> str:
    if re.search(r'[\s()"\\]', value) or not value:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


async def suggest(uow: UnitOfWork, org_id: str, query: str, caret: int) -> tuple[int, int, list[Suggestion]]:
    """(start, end, suggestions): each suggestion replaces query[start:end]."""
    start, word = word_at(query, caret)
    negated = word.startswith("-")
    body = word[1:] if negated else word
    sign = "-" if negated else ""
    if ":" in body:
        name, _, prefix = body.partition(":")
        field = name.lower() if name.lower() in KNOWN_FIELDS else name
        found = []
        for value, hint in await _values(uow, org_id, field, prefix):
            if value.lower().startswith(prefix.lower().strip('"')):
                found.append(Suggestion(f"{sign}{name}:{_quoted(value)} ", value, hint))
        return start, caret, found[:SUGGESTIONS_MAX]
    lowered = body.lower()
    fields = [
        Suggestion(f"{sign}{name}:", f"{name}:", FIELD_HELP[name])
        for name in sorted(KNOWN_FIELDS)
        if name.startswith(lowered)
    ]
    return start, caret, fields[:SUGGESTIONS_MAX]
