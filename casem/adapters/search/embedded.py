"""Embedded search: SQLite FTS5, one database file per tenant (default var/search-<tenant>.db).

An "index" is a generation of tables (cases_<g>, attrs_<g>, text_<g>, comments_<g>, tally_<g>) and the
tenant's alias is a row in `meta` naming the current one, so a reindex fills the next generation
and swaps that row in one transaction, as the OpenSearch adapter swaps its alias. Each read runs
in one read transaction (WAL), which pins the generation it started with.

While a reindex builds, `meta` names the generation it builds ('building'): every write, from any
process, goes to it as well as to the current one. A versioned document replaces only one of a lower
or equal version, and a deleted case leaves a tombstone that refuses later versioned writes of it.

Totals stay exact and cheap where they can: `tally_<g>` keeps, in each write's transaction, the cases per
org, state (status, priority, archived) and group_by value, so a query on the state alone is counted from a
few rows; a query of words and exact-value fields is counted by FTS5 itself: the text table's `facets` column
holds each case's org, state, attributes, project, assignee and type as tokens (see `_FacetQuery`, and
`_fts_total` for when that is exact); otherwise a query with a word, attribute, project or assignee condition
is counted from that condition's row ids (see `_driver`), and any other counts the org's matching cases through
an index. Generations built before the `facets` column keep the older plans until a reindex.

SQLite calls are blocking: they run in worker threads, one connection per tenant behind a lock.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from casem.adapters.private_files import private_sqlite_file
from casem.adapters.search.document import (
    ATTR_SEPARATOR,
    PRIORITY_RANK,
    STATUS_RANK,
    CaseDocument,
    StampedDocument,
    attribute_pairs,
    epoch_millis,
    fold,
    stamp,
    stamped_all,
    words,
)
from casem.adapters.search.port import (
    GROUP_FIELDS,
    MAX_GROUP_VALUES,
    CountResult,
    Docs,
    SearchPage,
    SearchPort,
    check_page,
    iterate,
    resolve_tenant,
)
from casem.adapters.sqlite_locking import begin_immediate
from casem.domain.search_query import And, Field, MatchAll, Node, Not, Or, Text
from casem.topology.tenants import data_dir

T = TypeVar("T")
_BATCH = 500
# Same word split as the OpenSearch analyzer: letters and digits, accents folded.
_TOKENIZE = "unicode61 remove_diacritics 2 categories 'L* N*'"
_INDEX_NAME = re.compile(r"^(?P<alias>.+)-v(?P<gen>\d+)$")

# (column with the raw value, column with the folded value) of the id-or-name fields.
_EITHER = {
    "project": ("project_key_lc", "project_id_lc"),
    "assignee": ("assignee_handle_lc", "assignee_id_lc"),
    "type": ("type_name_lc", "type_id_lc"),
}
_SORT_COLUMNS = {
    "created_at": "created_ms",
    "modified_at": "modified_ms",
    "priority": "priority_rank",
    "status": "status_rank",
}
# Filters common enough to deserve an index of their own (both columns of `project:` and `assignee:`).
_FILTERED = ("project_key_lc", "project_id_lc", "assignee_handle_lc", "assignee_id_lc")
_BY_RANK = {
    "status": ("status_rank", {rank: value for value, rank in STATUS_RANK.items()}),
    "priority": ("priority_rank", {rank: value for value, rank in PRIORITY_RANK.items()}),
}
# How far into the results a page may reach to be found by asking about words case by case (see `search`).
_PROBE_REACH = 1_000
_FOLDED = ("key", "project_id", "project_key", "type_id", "type_name", "assignee_id", "assignee_handle")


def _schema(g: int) -> list[str]:
    folded = ", ".join(f"{c}_lc TEXT" for c in _FOLDED)
    return [
        f"""CREATE TABLE cases_{g} (
            rid INTEGER PRIMARY KEY, org_id TEXT NOT NULL, id TEXT NOT NULL,
            status TEXT NOT NULL, priority TEXT NOT NULL, status_rank INTEGER, priority_rank INTEGER,
            project_id TEXT, project_key TEXT, type_id TEXT, type_name TEXT,
            assignee_id TEXT, assignee_handle TEXT, {folded}, archived INTEGER NOT NULL,
            created_ms INTEGER, modified_ms INTEGER, checksum TEXT NOT NULL, doc TEXT NOT NULL,
            version INTEGER, UNIQUE (org_id, id))""",
        f"CREATE TABLE attrs_{g} (rid INTEGER NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,"
        " pair_lc TEXT NOT NULL)",
        f"CREATE INDEX attrs_{g}_pair ON attrs_{g} (pair_lc, rid)",
        f"CREATE INDEX attrs_{g}_rid ON attrs_{g} (rid, name)",
        # `facets`: the case's org, state and exact-value fields as tokens, so FTS5 counts a query's matches itself
        # (see `_FacetQuery`); words are looked for in title and description only.
        f'CREATE VIRTUAL TABLE text_{g} USING fts5(title, description, facets, tokenize="{_TOKENIZE}")',
        f'CREATE VIRTUAL TABLE comments_{g} USING fts5(body, rid UNINDEXED, tokenize="{_TOKENIZE}")',
        *_indexes(g),
        _tally_schema(g),
    ]


def _indexes(g: int) -> list[str]:
    """The read paths' indexes, so a search or a count never reads the wide rows (the stored document) of
    cases it does not return. Sort indexes: an org's cases in each sort order, the default view (not
    archived) first, walked until a page is full; the trailing `id DESC` makes their backward walk the exact
    order of a descending sort (newest first, then id ascending). Filter indexes: the equality filters of the
    query language, found before sorting; `state` answers status/priority counts without the table, and pages
    of a status and priority filter in created or either rank order."""
    sort = [
        f"CREATE INDEX IF NOT EXISTS cases_{g}_by_{name} ON cases_{g} (org_id, archived, {cols}, id DESC)"
        for name, cols in (
            ("created", "created_ms"),
            ("modified", "modified_ms, created_ms"),
            ("priority", "priority_rank, created_ms"),
            ("status", "status_rank, created_ms"),
        )
    ]
    filters = [
        f"CREATE INDEX IF NOT EXISTS cases_{g}_state"
        f" ON cases_{g} (org_id, status_rank, priority_rank, archived, created_ms, id DESC)",
        f"CREATE INDEX IF NOT EXISTS cases_{g}_key ON cases_{g} (org_id, key_lc)",
        # Counts driven by a set of row ids look each one up here: a few narrow entries a page, where the
        # table's rows (with the stored document) take a page or more each.
        f"CREATE INDEX IF NOT EXISTS cases_{g}_rid ON cases_{g} (rid, org_id, archived, status_rank, priority_rank)",
    ]
    filters += [f"CREATE INDEX IF NOT EXISTS cases_{g}_{c} ON cases_{g} (org_id, {c}, archived)" for c in _FILTERED]
    # An attribute's values in order, each with its cases: counts by attribute read this index alone.
    filters.append(f"CREATE INDEX IF NOT EXISTS attrs_{g}_name ON attrs_{g} (name, value, rid)")
    return sort + filters


# The group_by columns a tally keeps besides the state (status, priority, archived are its key).
_TALLIED = ("project_id", "project_key", "type_id", "type_name", "assignee_id", "assignee_handle")
_STATE = ("status", "priority", "archived")


def _tally_schema(g: int) -> str:
    """Cases per org and state (status, priority, archived), and per value of each group_by field in that state,
    kept exact by every write: a count or a total whose query filters on the state alone reads these few rows
    instead of counting the cases. facet '' counts the cases; a column's name, its values (none for NULL);
    '@<attribute>' each value of an attribute (a case once per distinct value); '#<attribute>' the cases
    having the attribute at all (so the cases without it are the rest)."""
    return (
        f"CREATE TABLE IF NOT EXISTS tally_{g} (org_id TEXT NOT NULL, status_rank INTEGER NOT NULL,"
        " priority_rank INTEGER NOT NULL, archived INTEGER NOT NULL, facet TEXT NOT NULL, value TEXT NOT NULL,"
        " n INTEGER NOT NULL, PRIMARY KEY (org_id, status_rank, priority_rank, archived, facet, value))"
        " WITHOUT ROWID"
    )


def _fill_tally(conn: sqlite3.Connection, g: int) -> None:
    """The tally of a generation written before tallies existed, from its cases (same rows as the writes keep)."""
    state = "c.org_id, c.status_rank, c.priority_rank, c.archived"
    insert = f"INSERT INTO tally_{g} (org_id, status_rank, priority_rank, archived, facet, value, n)"
    conn.execute(f"{insert} SELECT {state}, '', '', COUNT(*) FROM cases_{g} c GROUP BY {state}")
    for column in _TALLIED:
        conn.execute(
            f"{insert} SELECT {state}, '{column}', c.{column}, COUNT(*) FROM cases_{g} c"
            f" WHERE c.{column} IS NOT NULL GROUP BY {state}, c.{column}"
        )
    joined = f"FROM attrs_{g} a JOIN cases_{g} c ON c.rid = a.rid"
    conn.execute(
        f"{insert} SELECT {state}, '@' || a.name, a.value, COUNT(DISTINCT a.rid) {joined}"
        f" GROUP BY {state}, a.name, a.value"
    )
    conn.execute(f"{insert} SELECT {state}, '#' || a.name, '', COUNT(DISTINCT a.rid) {joined} GROUP BY {state}, a.name")


# Tally changes of one write transaction, summed before they are written: (generation, org, status rank,
# priority rank, archived, facet, value) -> change. A batch of cases shares most of its rows.
TallyChanges = Counter[tuple[int, str, int, int, int, str, str]]


def _tally(changes: TallyChanges, g: int, row: Mapping[str, Any], pairs: Iterable[tuple[str, str]], delta: int) -> None:
    """Count one case (delta 1: written, -1: removed) in `changes`: `row` has its org, state and columns."""
    pairs = set(pairs)
    facets = [("", ""), *((c, row[c]) for c in _TALLIED if row[c] is not None)]
    facets += [("@" + name, value) for name, value in pairs]
    facets += [("#" + name, "") for name in {name for name, _ in pairs}]
    key = (g, row["org_id"], row["status_rank"], row["priority_rank"], row["archived"])
    for facet, value in facets:
        changes[(*key, facet, value)] += delta


def _write_tally(conn: sqlite3.Connection, changes: TallyChanges) -> None:
    """Apply the summed changes in the write's transaction, dropping rows that count no case any more."""
    upsert = (
        "(org_id, status_rank, priority_rank, archived, facet, value, n) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT DO UPDATE SET n = n + excluded.n"
    )
    for g in {key[0] for key in changes}:
        rows = [(*key[1:], n) for key, n in changes.items() if key[0] == g and n]
        conn.executemany(f"INSERT INTO tally_{g} {upsert}", rows)
        conn.executemany(
            f"DELETE FROM tally_{g} WHERE org_id = ? AND status_rank = ? AND priority_rank = ? AND archived = ?"
            " AND facet = ? AND value = ? AND n <= 0",
            [row[:6] for row in rows if row[6] < 0],
        )
    changes.clear()


def _state_only(node: Node) -> bool:
    """Whether the query tests nothing but status, priority and archived (what a tally row's key holds)."""
    match node:
        case MatchAll():
            return True
        case Field(name=name) if not node.is_attribute:
            return name in _STATE
        case Not(child):
            return _state_only(child)
        case And(children) | Or(children):
            return all(_state_only(child) for child in children)
    return False


def _driver(node: Node) -> tuple[Node, Node] | None:
    """A condition of the query (a top-level AND's) that is a set of row ids to count from, and the rest.

    Counting the matches of such a query by walking all of the org's cases and testing each against the set costs
    the whole org whatever the set's size; looking up only the set's rows (in the narrow `rid` index) costs the
    set. Project and assignee sets are the most selective, then attribute values, then words. Not when the query
    also names a status or priority: the state index then narrows the walk to those cases already."""
    children = node.children if isinstance(node, And) else (node,)
    if any(isinstance(c, Field) and c.name in ("status", "priority") and not c.is_attribute for c in children):
        return None
    for kind in ("project_or_assignee", "attribute", "text"):
        for n, child in enumerate(children):
            if _set_kind(child) == kind:
                rest = children[:n] + children[n + 1 :]
                return child, And(rest) if rest else MatchAll()
    return None


def _has_text(node: Node) -> bool:
    match node:
        case Text():
            return True
        case Not(child):
            return _has_text(child)
        case And(children) | Or(children):
            return any(_has_text(child) for child in children)
    return False


def _has_attribute(node: Node) -> bool:
    match node:
        case Field():
            return node.is_attribute
        case Not(child):
            return _has_attribute(child)
        case And(children) | Or(children):
            return any(_has_attribute(child) for child in children)
    return False


def _set_kind(node: Node) -> str | None:
    if isinstance(node, Or):
        # An OR of sets is their union; it counts as its least selective kind.
        kinds = [_set_kind(child) for child in node.children]
        if None in kinds:
            return None
        return max(kinds, key=("project_or_assignee", "attribute", "text").index)  # type: ignore[arg-type]
    if isinstance(node, Text):
        return "text"
    if isinstance(node, Field):
        if node.is_attribute:
            return "attribute"
        if node.name in ("project", "assignee"):
            return "project_or_assignee"
    return None


# Token prefixes of the `facets` column, each followed by a value's UTF-8 bytes in hex (letters and digits only: one
# token, never split, never equal to another field's): org, attribute pair (folded, as `pair_lc`), and the folded
# project, assignee and type columns. The state: a0/a1 (archived), s<status rank>, r<priority rank>.
_FACET_PREFIX = {
    "org_id": "o",
    "pair_lc": "v",
    "project_key_lc": "pk",
    "project_id_lc": "pi",
    "assignee_handle_lc": "uh",
    "assignee_id_lc": "ui",
    "type_name_lc": "tn",
    "type_id_lc": "ti",
}


_FACET_TOKEN = re.compile(r"a[01]|[sr][0-9]+|(o|v|pk|pi|uh|ui|tn|ti)([0-9a-f]{2})*")


def _could_be_facet(word: str) -> bool:
    """Whether a word of the query could equal a token of the `facets` column (any non-ASCII word might: FTS5 folds
    its accents away)."""
    return not word.isascii() or _FACET_TOKEN.fullmatch(word.lower()) is not None


def _facet(column: str, value: str) -> str:
    return _FACET_PREFIX[column] + value.encode().hex()


def _facets(row: Mapping[str, Any], pairs: Iterable[tuple[str, str]]) -> str:
    """The `facets` column of a case: its org, state and exact-value fields as tokens."""
    tokens = [_facet("org_id", row["org_id"]), f"a{row['archived']}", f"s{row['status_rank']}"]
    tokens.append(f"r{row['priority_rank']}")
    tokens += [_facet(c, row[c]) for c in _FACET_PREFIX if c.endswith("_lc") and c != "pair_lc" and row.get(c)]
    tokens += sorted({_facet("pair_lc", fold(k) + ATTR_SEPARATOR + fold(v)) for k, v in pairs})
    return " ".join(tokens)


# Words are looked for in title and description only, never in the `facets` column (a no-op where it is absent).
_TEXT_COLUMNS = "{title description} : "


def _conjuncts(node: Node) -> list[Node]:
    """The conditions a case must all meet: a top-level AND's, nested ANDs opened."""
    if isinstance(node, And):
        return [c for child in node.children for c in _conjuncts(child)]
    return [node]


def _drop(g: int) -> list[str]:
    return [f"DROP TABLE IF EXISTS {t}_{g}" for t in ("cases", "attrs", "text", "comments", "tally")]


class _Compiler:
    """The query AST as a SQL condition over `cases_<g> AS c` of one org, with its parameters."""

    def __init__(self, g: int, org_id: str, probe_words: bool = False, probe_attributes: bool = False) -> None:
        self.g = g
        self.org_id = org_id
        self.params: list[Any] = []
        # Attribute values looked up case by case in the (pair, rid) index, not collected first (see `search`).
        self.probe_attributes = probe_attributes
        # Words tested case by case (see `text`), after the other conditions of an AND, which are cheaper.
        self.probe_words = probe_words

    def sql(self, node: Node) -> str:
        match node:
            case MatchAll():
                return "1"
            case And(children) if self.probe_words:
                return "(" + " AND ".join(self.sql(c) for c in sorted(children, key=_has_text)) + ")"
            case And(children):
                return "(" + " AND ".join(self.sql(c) for c in children) + ")"
            case Or(children):
                return "(" + " OR ".join(self.sql(c) for c in children) + ")"
            case Not(child):
                return f"NOT {self.sql(child)}"
            case Text(value):
                return self.text(value)
            case Field():
                return self.field(node)
        raise TypeError(f"not a query node: {node!r}")

    def rid_set(self, node: Node) -> str:
        """The subquery of row ids a text, attribute, project or assignee condition (or an OR of them) tests (see
        `_driver`)."""
        if isinstance(node, Or):
            return " UNION ALL ".join(self.rid_set(child) for child in node.children)
        condition = self.sql(node)
        assert condition.startswith("c.rid IN (") and condition.endswith(")"), condition
        return condition.removeprefix("c.rid IN (").removesuffix(")")

    def text(self, value: str) -> str:
        # One set of row ids (the key match included), built once per statement: the condition then needs
        # nothing but the row id, so a walk of a sort index never reads the table to test it.
        self.params += [self.org_id, fold(value)]
        parts = [f"SELECT rid FROM cases_{self.g} WHERE org_id = ? AND key_lc = ?"]
        tokens = words(value)
        if tokens and self.probe_words:
            # A walk of a sort index that needs only a few cases asks FTS5 about each one (a rowid lookup in the
            # phrase's matches) instead of first collecting every match of the phrase. Comments stay a set: their
            # table is not keyed by case.
            phrase = '"' + " ".join(tokens) + '"'
            parts.append(f"SELECT rid FROM comments_{self.g} WHERE comments_{self.g} MATCH ?")
            self.params += [phrase, _TEXT_COLUMNS + phrase]
            return (
                "(c.rid IN (" + " UNION ALL ".join(parts) + ")"
                f" OR EXISTS (SELECT 1 FROM text_{self.g} WHERE text_{self.g} MATCH ? AND text_{self.g}.rowid = c.rid))"
            )
        if tokens:
            # Tokens are letters and digits only, so quoting them makes a safe FTS5 phrase.
            phrase = '"' + " ".join(tokens) + '"'
            parts.append(f"SELECT rowid FROM text_{self.g} WHERE text_{self.g} MATCH ?")
            parts.append(f"SELECT rid FROM comments_{self.g} WHERE comments_{self.g} MATCH ?")
            self.params += [_TEXT_COLUMNS + phrase, phrase]
        return "c.rid IN (" + " UNION ALL ".join(parts) + ")"

    def field(self, node: Field) -> str:
        name, value = node.name, node.value
        if node.is_attribute:
            self.params.append(fold(name) + ATTR_SEPARATOR + fold(value))
            if self.probe_attributes:
                return f"EXISTS (SELECT 1 FROM attrs_{self.g} a WHERE a.pair_lc = ? AND a.rid = c.rid)"
            return f"c.rid IN (SELECT rid FROM attrs_{self.g} WHERE pair_lc = ?)"
        if name in ("status", "priority"):
            # By rank (one rank per value), so the rank sort indexes serve the filter as well as the order. Ranks
            # are never NULL: `=` is true or false (so NOT is right), and ORs of it become one index lookup.
            rank = (STATUS_RANK if name == "status" else PRIORITY_RANK).get(value)
            if rank is None:
                return "0"  # not a value the field takes: matches nothing
            self.params.append(rank)
            return f"c.{name}_rank = ?"
        if name == "key":
            self.params.append(fold(value))
            return "c.key_lc = ?"
        if name == "archived":
            return {"true": "c.archived = 1", "false": "c.archived = 0"}.get(value, "0")
        by_name, by_id = _EITHER[name]
        if by_name in _FILTERED and by_id in _FILTERED:
            # The row ids of either column's index, as one set: a walk in sort order tests it without the table.
            self.params += [self.org_id, fold(value), self.org_id, fold(value)]
            return (
                f"c.rid IN (SELECT rid FROM cases_{self.g} WHERE org_id = ? AND {by_name} = ?"
                f" UNION ALL SELECT rid FROM cases_{self.g} WHERE org_id = ? AND {by_id} = ?)"
            )
        self.params += [fold(value), fold(value)]
        # IS, not =: an unassigned case must give false, not NULL, or NOT would drop it too.
        return f"(c.{by_name} IS ? OR c.{by_id} IS ?)"


class _FacetQuery:
    """The query AST as one FTS5 query over `text_<g>` (words in title and description, every other condition a
    token of the `facets` column, the org's token ANDed in), so FTS5 counts the matches by merging its sorted lists
    of row ids in C: no per-case lookup, no set of row ids to deduplicate.

    Exact only where the FTS5 row alone decides the condition: not `key:` (a field of its own), and a word is
    also matched by a case's key and comments, which the caller accounts for (see `EmbeddedSearch._fts_total`).
    `sql` is None for a query it cannot state."""

    _NEVER = 'facets : "znever"'  # a token no case has: a value the field cannot take matches nothing

    def __init__(self, org_id: str, node: Node, whole_table: bool = False) -> None:
        """`whole_table`: the org has every case of the generation, so the org's token need not be ANDed in (its
        list is as long as the table); it still stands for "every case" under a NOT."""
        self.org = f'facets : "{_facet("org_id", org_id)}"'
        self.texts: list[Text] = []
        body = self._fts(node)
        self.sql = None if body is None else body if whole_table else f"{self.org} AND {body}"

    def _fts(self, node: Node) -> str | None:
        match node:
            case MatchAll():
                return self.org
            case And(children) if any(not isinstance(c, Not) for c in children):
                # FTS5's NOT is binary: the negated conditions are taken from the others' matches (no list of every
                # case to take them from).
                positive = [self._fts(c) for c in children if not isinstance(c, Not)]
                negative = [self._fts(c.child) for c in children if isinstance(c, Not)]
                if None in positive or None in negative:
                    return None
                expression = "(" + " AND ".join(positive) + ")"  # type: ignore[arg-type]
                for excluded in negative:
                    expression = f"({expression} NOT {excluded})"
                return expression
            case And(children) | Or(children):
                parts = [self._fts(child) for child in children]
                if None in parts or not parts:
                    return None
                joint = " AND " if isinstance(node, And) else " OR "
                return "(" + joint.join(parts) + ")"  # type: ignore[arg-type]
            case Not(child):
                inner = self._fts(child)
                return None if inner is None else f"({self.org} NOT {inner})"
            case Text(value):
                tokens = words(value)
                if not tokens:
                    return None  # matched by the key alone
                self.texts.append(node)
                phrase = '"' + " ".join(tokens) + '"'
                # Column filters make FTS5 read every match's positions: only when a word could be a facet token.
                return _TEXT_COLUMNS + phrase if any(_could_be_facet(t) for t in tokens) else phrase
            case Field():
                return self._field(node)
        return None

    def _field(self, node: Field) -> str | None:
        name, value = node.name, node.value
        if node.is_attribute:
            return f'facets : "{_facet("pair_lc", fold(name) + ATTR_SEPARATOR + fold(value))}"'
        if name in ("status", "priority"):
            rank = (STATUS_RANK if name == "status" else PRIORITY_RANK).get(value)
            return self._NEVER if rank is None else f'facets : "{"s" if name == "status" else "r"}{rank}"'
        if name == "archived":
            return {"true": 'facets : "a1"', "false": 'facets : "a0"'}.get(value, self._NEVER)
        if name in _EITHER:
            by_name, by_id = _EITHER[name]
            return f'(facets : "{_facet(by_name, fold(value))}" OR facets : "{_facet(by_id, fold(value))}")'
        return None  # key: not a facet


def _most_frequent(counted: Mapping[Any, int]) -> dict[str | None, int]:
    """The MAX_GROUP_VALUES most frequent values (ties by value), then the cases without one (None) if any."""
    values = sorted(((v, n) for v, n in counted.items() if v is not None and n), key=lambda item: (-item[1], item[0]))
    out: dict[str | None, int] = dict(values[:MAX_GROUP_VALUES])
    if counted.get(None):
        out[None] = counted[None]
    return out


class EmbeddedSearch(SearchPort):
    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory is not None else data_dir()
        self._conns: dict[str, sqlite3.Connection] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # --- plumbing ------------------------------------------------------------------------------

    def _conn(self, tenant: str) -> tuple[sqlite3.Connection, threading.Lock]:
        with self._guard:
            if tenant not in self._conns:
                path = private_sqlite_file(self.directory / f"search-{tenant}.db")
                conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA busy_timeout=10000")
                conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
                conn.execute(
                    # Per generation, as OpenSearch keeps its delete tombstones per index.
                    "CREATE TABLE IF NOT EXISTS deleted_cases (gen INTEGER, org_id TEXT, id TEXT,"
                    " PRIMARY KEY (gen, org_id, id))"
                )
                for (table,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'cases_[0-9]*'"
                ).fetchall():
                    # Generations built before documents had versions get the column (NULL: unversioned).
                    if "version" not in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}:
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN version INTEGER")
                    # Generations built before the read paths had indexes get them (once: IF NOT EXISTS).
                    g = int(table.removeprefix("cases_"))
                    for stmt in _indexes(g):
                        conn.execute(stmt)
                    self._add_tally(conn, g)
                self._conns[tenant] = conn
                self._locks[tenant] = threading.Lock()
            return self._conns[tenant], self._locks[tenant]

    @staticmethod
    def _add_tally(conn: sqlite3.Connection, g: int) -> None:
        """Give a generation written before tallies its tally, filled in the same transaction as it is created
        (a write lock first: another process opening the store at the same time waits, then finds it)."""
        exists = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        if conn.execute(exists, (f"tally_{g}",)).fetchone() is not None:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute(exists, (f"tally_{g}",)).fetchone() is None:
                conn.execute(_tally_schema(g))
                _fill_tally(conn, g)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    async def _run(self, tenant: str, fn: Callable[[sqlite3.Connection], T], write: bool = False) -> T:
        """Run fn in a worker thread inside one transaction on the tenant's connection."""
        name = resolve_tenant(tenant).name

        def work() -> T:
            conn, lock = self._conn(name)
            with lock:
                if write:  # polled: case-indexer and the search-indexing flavor write from two processes
                    begin_immediate(conn)
                else:
                    conn.execute("BEGIN")
                try:
                    result = fn(conn)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return result

        return await asyncio.to_thread(work)

    @staticmethod
    def _current(conn: sqlite3.Connection) -> tuple[str, int] | None:
        row = conn.execute("SELECT value FROM meta WHERE name = 'alias'").fetchone()
        if row is None:
            return None
        m = _INDEX_NAME.match(row[0])
        assert m is not None, row[0]
        return row[0], int(m["gen"])

    def _generation(self, conn: sqlite3.Connection, tenant: str) -> int:
        current = self._current(conn)
        if current is None:
            raise LookupError(f"no search index for tenant {tenant!r}: call ensure_index first")
        return current[1]

    # --- writes --------------------------------------------------------------------------------

    @staticmethod
    def _building(conn: sqlite3.Connection) -> int | None:
        row = conn.execute("SELECT value FROM meta WHERE name = 'building'").fetchone()
        return int(row[0]) if row else None

    def _generations(self, conn: sqlite3.Connection, tenant: str) -> list[int]:
        """Where writes go: the current generation, and the one a reindex is building."""
        g = self._generation(conn, tenant)
        building = self._building(conn)
        return [g] if building is None or building == g else [g, building]

    @staticmethod
    def _insert(
        conn: sqlite3.Connection,
        g: int,
        stamped: StampedDocument,
        changes: TallyChanges,
        replace_equal: bool = True,
        *,
        facets: bool,
    ) -> bool:
        """Write the document unless a newer version of it is stored (or, without `replace_equal`, the same one), or
        the very same document is (same version and checksum: a rewrite would remove and insert its row and text for
        nothing), or the case was deleted; False then. `facets`: whether generation g has them (`_has_facets`, asked
        once per write, not once per document: it reads the schema, about 8% of what writing a document cost)."""
        doc = stamped.fields
        version = stamped.version
        old = conn.execute(
            f"SELECT rid, version, checksum FROM cases_{g} WHERE org_id = ? AND id = ?", (doc["org_id"], doc["id"])
        )
        row = old.fetchone()
        if version is not None:
            if (
                row is not None
                and row[1] is not None
                and (row[1] > version or (row[1] == version and not replace_equal))
            ):
                return False
            if row is not None and row[1] == version and row[2] == doc["checksum"]:
                return False
            gone = conn.execute(
                "SELECT 1 FROM deleted_cases WHERE gen = ? AND org_id = ? AND id = ?", (g, doc["org_id"], doc["id"])
            )
            if gone.fetchone() is not None:
                return False
        if row is not None:
            EmbeddedSearch._remove(conn, g, row[0], changes)
        folded = {f"{c}_lc": fold(doc[c]) if doc.get(c) else None for c in _FOLDED}  # type: ignore[literal-required]
        values: dict[str, Any] = {
            "org_id": doc["org_id"],
            "id": doc["id"],
            "status": doc["status"],
            "priority": doc["priority"],
            "status_rank": STATUS_RANK[doc["status"]],
            "priority_rank": PRIORITY_RANK[doc["priority"]],
            **{c: doc.get(c) for c in ("project_id", "project_key", "type_id", "type_name")},
            "assignee_id": doc.get("assignee_id"),
            "assignee_handle": doc.get("assignee_handle"),
            **folded,
            "archived": 1 if doc.get("archived") else 0,
            "created_ms": epoch_millis(doc.get("created_at")),
            "modified_ms": epoch_millis(doc.get("modified_at")),
            "checksum": doc["checksum"],
            "doc": stamped.text,
            "version": version,
        }
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        rid = conn.execute(f"INSERT INTO cases_{g} ({cols}) VALUES ({marks})", list(values.values())).lastrowid
        pairs = attribute_pairs(doc)
        _tally(changes, g, values, pairs, 1)
        if facets:
            conn.execute(
                f"INSERT INTO text_{g} (rowid, title, description, facets) VALUES (?, ?, ?, ?)",
                (rid, doc.get("title") or "", doc.get("description") or "", _facets(values, pairs)),
            )
        else:  # a generation built before facets: counted the older way until a reindex
            conn.execute(
                f"INSERT INTO text_{g} (rowid, title, description) VALUES (?, ?, ?)",
                (rid, doc.get("title") or "", doc.get("description") or ""),
            )
        # One row per comment, so a phrase never spans two comments (as in OpenSearch).
        conn.executemany(
            f"INSERT INTO comments_{g} (body, rid) VALUES (?, ?)", [(c, rid) for c in doc.get("comments") or []]
        )
        conn.executemany(
            f"INSERT INTO attrs_{g} (rid, name, value, pair_lc) VALUES (?, ?, ?, ?)",
            [(rid, k, v, fold(k) + ATTR_SEPARATOR + fold(v)) for k, v in pairs],
        )
        return True

    @staticmethod
    def _has_facets(conn: sqlite3.Connection, g: int) -> bool:
        """Whether generation g's text table has the `facets` column (generations built before it do not)."""
        row = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (f"text_{g}",)).fetchone()
        return row is not None and "facets" in row[0]

    @staticmethod
    def _remove(conn: sqlite3.Connection, g: int, rid: int, changes: TallyChanges) -> None:
        listed = ", ".join(("org_id", "status_rank", "priority_rank", "archived", *_TALLIED))
        found = conn.execute(f"SELECT {listed} FROM cases_{g} WHERE rid = ?", (rid,)).fetchone()
        if found is not None:
            pairs = conn.execute(f"SELECT name, value FROM attrs_{g} WHERE rid = ?", (rid,)).fetchall()
            _tally(changes, g, dict(zip(listed.split(", "), found, strict=True)), pairs, -1)
        conn.execute(f"DELETE FROM cases_{g} WHERE rid = ?", (rid,))
        conn.execute(f"DELETE FROM text_{g} WHERE rowid = ?", (rid,))
        conn.execute(f"DELETE FROM comments_{g} WHERE rid = ?", (rid,))
        conn.execute(f"DELETE FROM attrs_{g} WHERE rid = ?", (rid,))

    async def ensure_index(self, tenant: str) -> str:
        alias = resolve_tenant(tenant).search_alias

        def work(conn: sqlite3.Connection) -> str:
            current = self._current(conn)
            if current is not None:
                return current[0]
            name = f"{alias}-v1"
            for stmt in _schema(1):
                conn.execute(stmt)
            conn.execute("INSERT INTO meta (name, value) VALUES ('alias', ?)", (name,))
            return name

        return await self._run(tenant, work, write=True)

    async def current_index(self, tenant: str) -> str | None:
        current = await self._run(tenant, self._current)
        return current[0] if current else None

    async def bulk_upsert(
        self, tenant: str, docs: Iterable[Mapping[str, Any] | StampedDocument], *, replace_equal: bool = True
    ) -> int:
        prepared = stamped_all(docs)

        def work(conn: sqlite3.Connection) -> int:
            changes: TallyChanges = Counter()
            for g in self._generations(conn, tenant):
                facets = self._has_facets(conn, g)
                for doc in prepared:
                    self._insert(conn, g, doc, changes, replace_equal, facets=facets)
            _write_tally(conn, changes)
            return len(prepared)

        return await self._run(tenant, work, write=True)

    async def delete(self, tenant: str, org_id: str, case_id: str) -> bool:
        def work(conn: sqlite3.Connection) -> bool:
            # A deleted case never comes back: a late versioned write of its last document is refused.
            removed = False
            changes: TallyChanges = Counter()
            for n, g in enumerate(self._generations(conn, tenant)):
                conn.execute(
                    "INSERT OR IGNORE INTO deleted_cases (gen, org_id, id) VALUES (?, ?, ?)", (g, org_id, case_id)
                )
                row = conn.execute(f"SELECT rid FROM cases_{g} WHERE org_id = ? AND id = ?", (org_id, case_id))
                if (found := row.fetchone()) is not None:
                    self._remove(conn, g, found[0], changes)
                    removed = removed or n == 0
            _write_tally(conn, changes)
            return removed

        return await self._run(tenant, work, write=True)

    # --- reads ---------------------------------------------------------------------------------

    async def search(
        self,
        tenant: str,
        org_id: str,
        query: Node,
        sort_field: str = "created_at",
        sort_asc: bool = False,
        page_size: int = 10,
        page_number: int = 0,
    ) -> SearchPage:
        check_page(sort_field, page_size, page_number)
        column = _SORT_COLUMNS[sort_field]
        if sort_asc and sort_field == "modified_at":
            # NULLs (a case never modified) sort last either way, as OpenSearch's default does. SQLite puts them
            # first going up and last going down; only this order needs the flag (and cannot walk an index).
            order = f"(c.{column} IS NULL), c.{column} ASC"
        else:
            # The other sort columns are never NULL (derived from required fields): plain, so an index serves.
            order = f"c.{column} {'ASC' if sort_asc else 'DESC'}"
        if sort_field not in ("created_at",):
            order += ", c.created_ms DESC"
        order += ", c.id ASC"

        def work(conn: sqlite3.Connection) -> SearchPage:
            g = self._generation(conn, tenant)
            if _state_only(query):
                total = self._tallied(conn, g, org_id, query, [])[0]
            elif (fts_total := self._fts_total(conn, g, org_id, query)) is not None:
                total = fts_total
            else:
                source, counted_where, counted_params = self._matches(g, org_id, query)
                total = conn.execute(f"SELECT COUNT(*) FROM {source} WHERE {counted_where}", counted_params).fetchone()[
                    0
                ]
            if total <= page_number * page_size:
                return SearchPage([], total)  # past the last page: nothing to sort
            # When at least half the org's cases match and the page is near the front, a walk in sort order meets
            # the page's cases within about twice as many cases: words are then asked about case by case. An
            # attribute value costs a lookup in the (pair, rid) index a case, far less than FTS5's: asked about case
            # by case from a tenth of the org on (a walk of ten times the page, where collecting its set first reads
            # a tenth of the org or more).
            near = (page_number + 1) * page_size <= _PROBE_REACH
            text, attribute = _has_text(query), _has_attribute(query)
            share = total / max(1, self._org_cases(conn, g, org_id)) if near and (text or attribute) else 0.0
            compiler = _Compiler(
                g, org_id, probe_words=text and share >= 0.5, probe_attributes=attribute and share >= 0.1
            )
            where = f"c.org_id = ? AND {compiler.sql(query)}"
            params = [org_id, *compiler.params]
            rows = conn.execute(
                f"SELECT c.id FROM cases_{g} c WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
                [*params, page_size, page_number * page_size],
            )
            return SearchPage([r[0] for r in rows], total)

        return await self._run(tenant, work)

    async def count(self, tenant: str, org_id: str, query: Node, group_by: list[str]) -> CountResult:
        def work(conn: sqlite3.Connection) -> CountResult:
            g = self._generation(conn, tenant)
            if _state_only(query):
                total, groups = self._tallied(conn, g, org_id, query, group_by)
                return CountResult(total, groups)
            if not group_by and (fts_total := self._fts_total(conn, g, org_id, query)) is not None:
                return CountResult(fts_total, {})
            return self._counted(conn, g, org_id, query, group_by)

        return await self._run(tenant, work)

    @staticmethod
    def _org_cases(conn: sqlite3.Connection, g: int, org_id: str) -> int:
        row = conn.execute(f"SELECT SUM(n) FROM tally_{g} WHERE org_id = ? AND facet = ''", (org_id,)).fetchone()
        return row[0] or 0

    def _fts_total(self, conn: sqlite3.Connection, g: int, org_id: str, query: Node) -> int | None:
        """The org's cases matching `query` counted by FTS5 over the `facets` column and the words (see `_FacetQuery`);
        None when it cannot count this query exactly.

        A word also matches a case by its key or its comments. When no word of the query has such a match in the
        org, the FTS5 count is the total. When one has (the query being that word, or that word AND the rest), the
        cases matched that way and not by the word's FTS5 row are counted apart, from that (usually small) set."""
        if not self._has_facets(conn, g):
            return None
        by_archived = dict(
            conn.execute(
                f"SELECT archived, SUM(n) FROM tally_{g} WHERE org_id = ? AND facet = '' GROUP BY archived", (org_id,)
            ).fetchall()
        )
        everyone = conn.execute(f"SELECT SUM(n) FROM tally_{g} WHERE facet = ''").fetchone()[0] or 0
        whole_table = sum(by_archived.values()) == everyone
        children = _conjuncts(query)
        hidden = Field("archived", "false")
        # Archived cases hidden (every query but those naming `archived:`), and fewer of them than the others: the
        # matches of the rest, less those archived (a short list FTS5 seeks along), read fewer rows than
        # intersecting the long list of cases not archived.
        complement = hidden in children and by_archived.get(1, 0) < by_archived.get(0, 0)
        if complement:
            rest = tuple(child for child in children if child != hidden)
            facet_query = _FacetQuery(org_id, And(rest) if rest else MatchAll(), whole_table)
        else:
            facet_query = _FacetQuery(org_id, query, whole_table)
        if facet_query.sql is None:
            return None
        keyed = [text for text in facet_query.texts if self._word_elsewhere(conn, g, org_id, text)]
        if keyed and (len(keyed) > 1 or not any(child is keyed[0] for child in children)):
            return None  # such a word inside a NOT or an OR: its other matches cannot be counted apart
        count = f"SELECT COUNT(*) FROM text_{g} WHERE text_{g} MATCH ?"
        total = conn.execute(count, (facet_query.sql,)).fetchone()[0]
        if complement:
            total -= conn.execute(count, (f'({facet_query.sql}) AND facets : "a1"',)).fetchone()[0]
        if not keyed:
            return total
        word = keyed[0]
        rest = tuple(child for child in children if child is not word)
        compiler = _Compiler(g, org_id)
        condition = compiler.sql(And(rest)) if rest else "1"
        phrase = '"' + " ".join(words(word.value)) + '"'
        elsewhere = (
            f"SELECT rid FROM cases_{g} WHERE org_id = ? AND key_lc = ?"
            f" UNION ALL SELECT rid FROM comments_{g} WHERE comments_{g} MATCH ?"
        )
        apart = conn.execute(
            f"SELECT COUNT(*) FROM (SELECT DISTINCT rid FROM ({elsewhere})) s CROSS JOIN cases_{g} c"
            f" INDEXED BY cases_{g}_rid ON c.rid = s.rid WHERE c.org_id = ? AND {condition}"
            f" AND NOT EXISTS (SELECT 1 FROM text_{g} WHERE text_{g} MATCH ? AND text_{g}.rowid = c.rid)",
            [org_id, fold(word.value), phrase, org_id, *compiler.params, _TEXT_COLUMNS + phrase],
        ).fetchone()[0]
        return total + apart

    @staticmethod
    def _word_elsewhere(conn: sqlite3.Connection, g: int, org_id: str, text: Text) -> bool:
        """Whether a case of the org matches this word by its key or by a comment."""
        phrase = '"' + " ".join(words(text.value)) + '"'
        if conn.execute(
            f"SELECT 1 FROM cases_{g} WHERE org_id = ? AND key_lc = ? LIMIT 1", (org_id, fold(text.value))
        ).fetchone():
            return True
        in_org = conn.execute(
            f"SELECT 1 FROM comments_{g} m JOIN cases_{g} c ON c.rid = m.rid WHERE comments_{g} MATCH ?"
            " AND c.org_id = ? LIMIT 1",
            (phrase, org_id),
        )
        return in_org.fetchone() is not None

    @staticmethod
    def _matches(g: int, org_id: str, query: Node) -> tuple[str, str, list[Any]]:
        """FROM, WHERE and parameters of the org's cases matching `query`, as `c`, for counting them: from a set of
        row ids when the query has one to start from (see `_driver`), else all of the org's cases."""
        driven = _driver(query)
        if driven is None:
            compiler = _Compiler(g, org_id)
            return f"cases_{g} c", f"c.org_id = ? AND {compiler.sql(query)}", [org_id, *compiler.params]
        driver, rest = driven
        from_set = _Compiler(g, org_id)
        rids = from_set.rid_set(driver)
        compiler = _Compiler(g, org_id)
        condition = compiler.sql(rest)
        # CROSS JOIN: the set first (SQLite keeps that order), each row once (a case can match two ways).
        source = (
            f"(SELECT DISTINCT rid FROM ({rids})) s CROSS JOIN cases_{g} c INDEXED BY cases_{g}_rid ON c.rid = s.rid"
        )
        return source, f"c.org_id = ? AND {condition}", [*from_set.params, org_id, *compiler.params]

    @staticmethod
    def _tallied(
        conn: sqlite3.Connection, g: int, org_id: str, query: Node, group_by: list[str]
    ) -> tuple[int, dict[str, dict[str | None, int]]]:
        """Total and groups of a query on the state alone, summed from the tally rows of the states it matches."""
        compiler = _Compiler(g, org_id)  # its state conditions name only columns the tally has too
        where = f"c.org_id = ? AND {compiler.sql(query)}"
        params = [org_id, *compiler.params]
        total = 0
        by_state: dict[str, dict[Any, int]] = {name: {} for name in _STATE}
        for status_rank, priority_rank, archived, n in conn.execute(
            f"SELECT c.status_rank, c.priority_rank, c.archived, c.n FROM tally_{g} c WHERE {where} AND c.facet = ''",
            params,
        ):
            total += n
            for name, value in (
                ("status", _BY_RANK["status"][1][status_rank]),
                ("priority", _BY_RANK["priority"][1][priority_rank]),
                ("archived", "true" if archived else "false"),
            ):
                by_state[name][value] = by_state[name].get(value, 0) + n
        facets: dict[str, str] = {}  # facet -> group_by name
        for name in group_by:
            column = GROUP_FIELDS.get(name)
            if column in _TALLIED:
                facets[column] = name
            elif column is None:
                facets["@" + name] = name
                facets["#" + name] = name
        summed: dict[str, dict[Any, int]] = {facet: {} for facet in facets}
        if facets:
            marks = ", ".join("?" for _ in facets)
            for facet, value, n in conn.execute(
                f"SELECT c.facet, c.value, SUM(c.n) FROM tally_{g} c WHERE {where} AND c.facet IN ({marks})"
                " GROUP BY c.facet, c.value",
                [*params, *facets],
            ):
                summed[facet][value] = n
        groups: dict[str, dict[str | None, int]] = {}
        for name in group_by:
            column = GROUP_FIELDS.get(name)
            if column in _STATE:
                counted = dict(by_state[column])
            elif column is not None:
                counted = {**summed[column], None: total - sum(summed[column].values())}
            else:
                counted = {**summed["@" + name], None: total - sum(summed["#" + name].values())}
            groups[name] = _most_frequent(counted)
        return total, groups

    def _counted(self, conn: sqlite3.Connection, g: int, org_id: str, query: Node, group_by: list[str]) -> CountResult:
        """Total and groups counted over the matching cases (any query)."""
        source, where, params = self._matches(g, org_id, query)
        # One pass for the total and every group kept in the table: counted per combination of their values,
        # then summed per field here (instead of a pass per field, and one more per field for its NULLs).
        columns = list(dict.fromkeys(GROUP_FIELDS[name] for name in group_by if name in GROUP_FIELDS))
        per_column: dict[str, dict[Any, int]] = {column: {} for column in columns}
        if columns:
            # Status and priority by rank: what the indexes hold (one rank per value).
            listed = ", ".join(f"c.{_BY_RANK[column][0] if column in _BY_RANK else column}" for column in columns)
            total = 0
            for *values, n in conn.execute(
                f"SELECT {listed}, COUNT(*) FROM {source} WHERE {where} GROUP BY {listed}", params
            ):
                total += n
                for column, value in zip(columns, values, strict=True):
                    if column in _BY_RANK:
                        value = _BY_RANK[column][1][value]
                    per_column[column][value] = per_column[column].get(value, 0) + n
        else:
            total = conn.execute(f"SELECT COUNT(*) FROM {source} WHERE {where}", params).fetchone()[0]
        groups: dict[str, dict[str | None, int]] = {}
        for name in group_by:
            if (column := GROUP_FIELDS.get(name)) is not None:
                counted = per_column[column]
                if column == "archived":
                    counted = {("true" if value else "false"): n for value, n in counted.items()}
            else:
                counted = self._attribute_counts(conn, g, source, where, params, name, total)
            groups[name] = _most_frequent(counted)
        return CountResult(total, groups)

    @staticmethod
    def _attribute_counts(
        conn: sqlite3.Connection, g: int, source: str, where: str, params: list[Any], name: str, total: int
    ) -> dict[Any, int]:
        """Cases per value of attribute `name` among the matches, and under None those without it."""
        counted: dict[Any, int] = {}
        having: set[int] = set()
        # The attribute's (value, case) index walked once, each case tested against the matches (built once).
        for value, rid in conn.execute(
            f"SELECT DISTINCT a.value, a.rid FROM attrs_{g} a WHERE a.name = ?"
            f" AND a.rid IN (SELECT c.rid FROM {source} WHERE {where})",
            [name, *params],
        ):
            counted[value] = counted.get(value, 0) + 1
            having.add(rid)
        counted[None] = total - len(having)
        return counted

    async def get(self, tenant: str, org_id: str, case_id: str) -> CaseDocument | None:
        def work(conn: sqlite3.Connection) -> CaseDocument | None:
            g = self._generation(conn, tenant)
            row = conn.execute(f"SELECT doc FROM cases_{g} WHERE org_id = ? AND id = ?", (org_id, case_id))
            found = row.fetchone()
            return json.loads(found[0]) if found else None

        return await self._run(tenant, work)

    async def versions(self, tenant: str, refs: Sequence[tuple[str, str]]) -> dict[str, int]:
        wanted = {case_id: org_id for org_id, case_id in refs}
        if not wanted:
            return {}

        def work(conn: sqlite3.Connection) -> dict[str, int]:
            g = self._generation(conn, tenant)
            found: dict[str, int] = {}
            ids = list(wanted)
            for start in range(0, len(ids), 500):  # below SQLite's bound-parameter limit
                chunk = ids[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                rows = conn.execute(f"SELECT org_id, id, version FROM cases_{g} WHERE id IN ({marks})", chunk)
                found |= {i: int(v) for o, i, v in rows.fetchall() if v is not None and wanted.get(i) == o}
            return found

        return await self._run(tenant, work)

    async def all_checksums(self, tenant: str, org_id: str | None = None) -> dict[str, str]:
        def work(conn: sqlite3.Connection) -> dict[str, str]:
            g = self._generation(conn, tenant)
            if org_id is None:
                rows = conn.execute(f"SELECT id, checksum FROM cases_{g}")
            else:
                rows = conn.execute(f"SELECT id, checksum FROM cases_{g} WHERE org_id = ?", (org_id,))
            return dict(rows.fetchall())

        return await self._run(tenant, work)

    # --- index lifecycle -----------------------------------------------------------------------

    async def reindex(self, tenant: str, docs: Docs) -> str:
        alias = resolve_tenant(tenant).search_alias
        await self.ensure_index(tenant)

        def create(conn: sqlite3.Connection) -> int:
            # The next generation after every table present, current or left by a failed build.
            gens = [
                int(m.group(1))
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                if (m := re.fullmatch(r"cases_(\d+)", name))
            ]
            g = max(gens) + 1
            for stmt in _schema(g):
                conn.execute(stmt)
            # From this commit on, every write lands in this generation too (see the module docstring).
            conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('building', ?)", (str(g),))
            return g

        g = await self._run(tenant, create, write=True)

        def fill(batch: list[StampedDocument]) -> Callable[[sqlite3.Connection], None]:
            def work(conn: sqlite3.Connection) -> None:
                changes: TallyChanges = Counter()
                facets = self._has_facets(conn, g)
                for doc in batch:
                    self._insert(conn, g, doc, changes, facets=facets)
                _write_tally(conn, changes)

            return work

        try:
            batch: list[StampedDocument] = []
            async for doc in iterate(docs):
                batch.append(stamp(doc))
                if len(batch) >= _BATCH:  # short write transactions: searches interleave
                    await self._run(tenant, fill(batch), write=True)
                    batch = []
            if batch:
                await self._run(tenant, fill(batch), write=True)
        except BaseException:

            def abandon(conn: sqlite3.Connection) -> None:
                conn.execute("DELETE FROM meta WHERE name = 'building'")
                conn.execute("DELETE FROM deleted_cases WHERE gen = ?", (g,))
                for stmt in _drop(g):
                    conn.execute(stmt)

            await self._run(tenant, abandon, write=True)
            raise

        name = f"{alias}-v{g}"

        def swap(conn: sqlite3.Connection) -> None:
            old = self._generation(conn, tenant)
            conn.execute("UPDATE meta SET value = ? WHERE name = 'alias'", (name,))
            conn.execute("DELETE FROM meta WHERE name = 'building'")
            conn.execute("DELETE FROM deleted_cases WHERE gen = ?", (old,))
            for stmt in _drop(old):
                conn.execute(stmt)

        await self._run(tenant, swap, write=True)
        return name

    async def drop(self, tenant: str) -> None:
        def work(conn: sqlite3.Connection) -> None:
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                if m := re.fullmatch(r"cases_(\d+)", name):
                    for stmt in _drop(int(m.group(1))):
                        conn.execute(stmt)
            conn.execute("DELETE FROM meta WHERE name IN ('alias', 'building')")
            conn.execute("DELETE FROM deleted_cases")

        await self._run(tenant, work, write=True)

    async def refresh(self, tenant: str | None = None) -> None:
        """Nothing to do: a committed write is visible to the next read."""

    async def close(self) -> None:
        with self._guard:
            for conn in self._conns.values():
                conn.close()
            self._conns.clear()
            self._locks.clear()
