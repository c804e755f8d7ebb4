"""The embedded store's layout: stores written before the read-path indexes get them when opened, and the
common queries walk an index instead of sorting or reading every case of the org (checked with SQLite's
EXPLAIN QUERY PLAN, not with timings)."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from casem.adapters.search import EmbeddedSearch, embedded
from casem.adapters.search.embedded import _Compiler
from casem.app.search.service import compile_filter
from casem.domain.search_query import And, Field, Node, Text, fields_in, parse_query
from casem.topology.tenants import CASE_MANAGEMENT
from tests.search.test_contract import _GROUPS, B1, ORG_A, ORG_A_CASES, _varied, case, load

T = CASE_MANAGEMENT
DB = f"search-{T}.db"


def _read_path_indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").fetchall()
    # What the reads use: everything but the pair and rid indexes of attrs, there from the first layout on.
    return {name for (name,) in rows} - {"attrs_1_pair", "attrs_1_rid"}


async def _answers(search: EmbeddedSearch) -> list[object]:
    queries = ["", "disk", "status:open priority:P1", "project:PROJ -assignee:jane@example.com", "service:web-store"]
    answers: list[object] = []
    for query in queries:
        for sort in ("created_at", "modified_at", "priority", "status"):
            for asc in (False, True):
                answers.append(await search.search(T, ORG_A, compile_filter(query), sort, asc, page_size=100))
        answers.append(await search.count(T, ORG_A, compile_filter(query), ["status", "priority", "service"]))
    return answers


async def test_a_store_from_before_the_indexes_gets_them_on_open(tmp_path: Path) -> None:
    search = EmbeddedSearch(tmp_path)
    await load(search, [*ORG_A_CASES, B1])
    expected = await _answers(search)
    await search.close()
    indexes = _read_path_indexes(tmp_path / DB)
    assert len(indexes) >= 8
    with sqlite3.connect(tmp_path / DB) as conn:  # the layout stores had before: no read-path index
        for name in indexes:
            conn.execute(f"DROP INDEX {name}")
    assert _read_path_indexes(tmp_path / DB) == set()

    reopened = EmbeddedSearch(tmp_path)
    try:
        assert await _answers(reopened) == expected
    finally:
        await reopened.close()
    assert _read_path_indexes(tmp_path / DB) == indexes


@pytest.mark.parametrize(
    ("query", "sort_field"),
    [
        ("", "created_at"),
        ("", "priority"),
        ("", "status"),
        ("", "modified_at"),
        ("disk", "created_at"),
        ("status:open priority:P1", "priority"),
        ("project:PROJ assignee:jane@example.com", "created_at"),
        ("service:web-store OR service:auth", "priority"),
    ],
)
async def test_a_descending_page_walks_an_index_without_sorting(tmp_path: Path, query: str, sort_field: str) -> None:
    search = EmbeddedSearch(tmp_path)
    statements: list[str] = []
    try:
        await load(search, [*ORG_A_CASES, B1])
        conn, _ = search._conn(T)
        conn.set_trace_callback(statements.append)
        await search.search(T, ORG_A, compile_filter(query), sort_field, False, page_size=10)
        conn.set_trace_callback(None)
    finally:
        await search.close()
    page = next(s for s in statements if s.startswith("SELECT c.id "))  # (FTS5 runs statements of its own)
    with sqlite3.connect(tmp_path / DB) as raw:
        plan = [row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {page}")]
    assert not any("TEMP B-TREE FOR ORDER BY" in step for step in plan), plan
    # The cases of the org are found through an index, never by reading the whole table.
    outer = [step for step in plan if "cases_1 " in step or step.startswith(("SEARCH c ", "SCAN c "))]
    assert outer and all("INDEX" in step for step in outer), plan


def _tally_rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM tally_1 ORDER BY 1, 2, 3, 4, 5, 6").fetchall()


async def test_a_store_from_before_the_tally_gets_it_filled_on_open(tmp_path: Path) -> None:
    search = EmbeddedSearch(tmp_path)
    await load(search, [*ORG_A_CASES, B1])
    expected = await _answers(search)
    await search.close()
    kept = _tally_rows(tmp_path / DB)  # as the writes kept it
    assert kept
    with sqlite3.connect(tmp_path / DB) as conn:  # the layout stores had before: no tally
        conn.execute("DROP TABLE tally_1")

    reopened = EmbeddedSearch(tmp_path)
    try:
        assert await _answers(reopened) == expected
    finally:
        await reopened.close()
    assert _tally_rows(tmp_path / DB) == kept  # filled from the cases: the same rows the writes keep


async def test_the_tally_answers_as_counting_the_cases_does_after_any_writes(tmp_path: Path) -> None:
    rng = random.Random(3)
    search = EmbeddedSearch(tmp_path)
    try:
        await search.ensure_index(T)
        for _ in range(200):
            n = rng.randint(1, 30)
            if rng.random() < 0.25:
                await search.delete(T, ORG_A, _varied(n, rng)["id"])
            else:
                await search.bulk_upsert(T, [_varied(n, rng, org=rng.choice([ORG_A, ORG_A, B1["org_id"]]))])
        conn, _ = search._conn(T)
        queries = ["", "status:open archived:false", "-status:closed", "priority:(P1 OR P2) -archived:true"]
        for query in [*queries, "status:nonsense"]:
            node = parse_query(query)
            tallied = await search.count(T, ORG_A, node, _GROUPS)
            counted = search._counted(conn, 1, ORG_A, node, _GROUPS)  # the plan of any other query
            assert tallied == counted, query
            assert (await search.search(T, ORG_A, node, page_size=1)).total == counted.total, query
        assert counted.total == 0 and (await search.count(T, ORG_A, parse_query(""), [])).total > 0
    finally:
        await search.close()


async def test_a_count_on_the_state_alone_reads_the_tally_not_the_cases(tmp_path: Path) -> None:
    search = EmbeddedSearch(tmp_path)
    statements: list[str] = []
    try:
        await load(search, [*ORG_A_CASES, B1])
        conn, _ = search._conn(T)
        conn.set_trace_callback(statements.append)
        await search.count(T, ORG_A, compile_filter("status:(open OR in_progress)"), ["status", "service", "project"])
        await search.search(T, ORG_A, compile_filter("status:open priority:P1"), "priority", page_size=10)
        conn.set_trace_callback(None)
    finally:
        await search.close()
    reads = [s for s in statements if s.startswith("SELECT") and "meta" not in s]
    assert len([s for s in reads if "tally_1" in s]) == 3, reads  # the count's two reads, the page's total
    assert [s for s in reads if "cases_1" in s] == [next(s for s in reads if s.startswith("SELECT c.id "))], reads


_DRIVEN = [
    "disk",  # in a title and a comment of the same case: counted once
    "disk -archived:true",
    "service:web-store",
    "service:web-store OR service:auth",
    "service:web-store OR disk",
    "project:OPS",
    "assignee:jane@example.com disk",
    "project:PROJ -assignee:jane@example.com",
    "nothing-like-this",
]


async def test_a_total_with_a_set_to_start_from_counts_it_through_the_rid_index(tmp_path: Path) -> None:
    search = EmbeddedSearch(tmp_path)
    try:
        await load(search, [*ORG_A_CASES, B1])
        conn, _ = search._conn(T)
        for query in _DRIVEN:
            node = parse_query(query)
            source, where, params = search._matches(1, ORG_A, node)
            plan = [
                row[3]
                for row in conn.execute(f"EXPLAIN QUERY PLAN SELECT COUNT(*) FROM {source} WHERE {where}", params)
            ]
            assert any("COVERING INDEX cases_1_rid" in step for step in plan), (query, plan)
            # The same number as testing every case of the org against the whole query.
            compiler = _Compiler(1, ORG_A)
            plain = f"SELECT COUNT(*) FROM cases_1 c WHERE c.org_id = ? AND {compiler.sql(node)}"
            expected = conn.execute(plain, [ORG_A, *compiler.params]).fetchone()[0]
            assert (await search.search(T, ORG_A, node, page_size=1)).total == expected, query
            assert (await search.count(T, ORG_A, node, [])).total == expected, query
        assert (await search.search(T, ORG_A, parse_query("disk"), page_size=1)).total == 2  # C1 and C3, once each
    finally:
        await search.close()


async def test_pages_of_a_common_word_asked_case_by_case_are_the_pages_of_its_whole_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(5)
    docs = []
    for n in range(1, 41):
        doc = _varied(n, rng)
        doc["title"] = rng.choice(["disk full", "disk", "cpu high", "disk and cpu"])
        if n % 5 == 0:  # the word in a comment only
            doc["title"], doc["comments"] = "cpu high", ["the disk again"]
        doc["modified_at"] = None if n % 3 == 0 else f"2024-02-01T{n % 24:02d}:00:00Z"
        docs.append(doc)
    search = EmbeddedSearch(tmp_path)
    queries = ["disk", "disk archived:false", "cpu OR disk", "disk -status:closed", "again"]
    queries += ["service:web-store OR service:db", "-service:auth", "service:db disk", "env:prod OR disk"]

    async def pages() -> list[object]:
        answers: list[object] = []
        for query in queries:
            for sort in ("created_at", "modified_at", "priority", "status"):
                for asc in (False, True):
                    for number in range(4):
                        page = await search.search(T, ORG_A, parse_query(query), sort, asc, 7, number)
                        answers.append((query, sort, asc, number, page))
        return answers

    statements: list[str] = []
    try:
        await load(search, docs)
        conn, _ = search._conn(T)
        conn.set_trace_callback(statements.append)
        probed = await pages()
        conn.set_trace_callback(None)
        monkeypatch.setattr(embedded, "_PROBE_REACH", 0)  # every page from the whole set of matches
        assert await pages() == probed
    finally:
        await search.close()
    assert any("EXISTS (SELECT 1 FROM text_1" in s for s in statements)  # the case-by-case plans did run
    assert any("EXISTS (SELECT 1 FROM attrs_1 a" in s for s in statements)
    assert sum(len(page.ids) for *_, page in probed) > 100  # type: ignore[attr-defined]


# Queries FTS5 counts from the `facets` column and the words, and ones it must leave to the other plans.
_FACETED = [
    "",
    "disk",
    "disk -archived:true",  # archived cases not hidden: FTS5 intersects with the not-archived list
    "archived:true service:db",
    "-disk",
    "again",  # in comments only
    "proj",  # a word and a key's first half: not the key
    "proj-7",  # a key: matched apart from the words
    "proj-7 -status:closed",
    "a1",  # a word that is also a facet token (archived): looked for in title and description only
    "s0 OR r2",
    "service:web-store",
    "service:Web-Store OR service:auth",
    "service:web-store OR disk",
    "-service:db env:prod",
    "project:OPS",
    "project:(OPS OR PROJ) -assignee:jane@example.com",
    "assignee:jane@example.com disk",
    "assignee:BOB@example.com OR priority:P1",
    "status:(open OR in_progress) service:db",
    "status:nonsense disk",
    "nothing-like-this",
]


def _hiding_archived(query: str) -> Node:
    """The query as the API sends it (archived cases hidden), without its value checks (status:nonsense stays)."""
    node = parse_query(query)
    return node if "archived" in fields_in(node) else And((node, Field("archived", "false")))


def _plain_total(conn: sqlite3.Connection, org_id: str, query: str) -> int:
    """The org's cases matching the whole query, each case tested (the plan every other one must agree with)."""
    node = _hiding_archived(query)
    compiler = _Compiler(1, org_id)
    plain = f"SELECT COUNT(*) FROM cases_1 c WHERE c.org_id = ? AND {compiler.sql(node)}"
    return conn.execute(plain, [org_id, *compiler.params]).fetchone()[0]


@pytest.mark.parametrize("orgs", [[ORG_A, ORG_A, B1["org_id"]], [ORG_A]], ids=["two orgs", "one org"])
async def test_totals_counted_by_fts5_are_the_totals_of_testing_every_case_after_any_writes(
    tmp_path: Path, orgs: list[str]
) -> None:
    rng = random.Random(11)
    search = EmbeddedSearch(tmp_path)
    try:
        await search.ensure_index(T)
        for _ in range(300):
            n = rng.randint(1, 40)
            org = rng.choice(orgs)
            if rng.random() < 0.2:
                await search.delete(T, org, _varied(n, rng)["id"])
                continue
            doc = _varied(n, rng, org=org)
            doc["title"] = rng.choice(["disk full", "cpu high", "disk and cpu", "proj-7 follow-up", "a1 s0 r2 printer"])
            doc["comments"] = rng.choice([[], ["the disk again"], ["again"]])
            await search.bulk_upsert(T, [doc])
        # Found by its key alone (the word is in no title), in sight: the key's match is counted apart.
        await search.bulk_upsert(T, [{**_varied(7, rng), "title": "cpu high", "archived": False, "comments": []}])
        conn, _ = search._conn(T)
        assert search._word_elsewhere(conn, 1, ORG_A, Text("proj-7"))
        assert search._word_elsewhere(conn, 1, ORG_A, Text("again"))  # in comments written above
        # A word matched by a comment too, inside a NOT or an OR: left to the other plans.
        elsewhere_nested = {"-disk", "service:web-store OR disk"}
        for org in dict.fromkeys(orgs):
            for query in _FACETED:
                expected = _plain_total(conn, org, query)
                counted = search._fts_total(conn, 1, org, _hiding_archived(query))
                if query in elsewhere_nested:
                    assert counted is None, (org, query)
                else:
                    assert counted == expected, (org, query, counted, expected)
                assert (await search.search(T, org, _hiding_archived(query), "priority", page_size=5)).total == expected
                assert (await search.count(T, org, _hiding_archived(query), [])).total == expected, (org, query)
        assert search._fts_total(conn, 1, ORG_A, compile_filter("key:PROJ-7")) is None  # the key is no facet
    finally:
        await search.close()


async def test_a_generation_from_before_facets_answers_the_same_by_the_older_plans(tmp_path: Path) -> None:
    search = EmbeddedSearch(tmp_path)
    await load(search, [*ORG_A_CASES, B1])
    expected = await _answers(search)
    await search.close()
    with sqlite3.connect(tmp_path / DB) as conn:  # the text table stores had before: no facets column
        conn.execute(f'CREATE VIRTUAL TABLE old_text USING fts5(title, description, tokenize="{embedded._TOKENIZE}")')
        conn.execute("INSERT INTO old_text (rowid, title, description) SELECT rowid, title, description FROM text_1")
        conn.execute("DROP TABLE text_1")
        conn.execute("ALTER TABLE old_text RENAME TO text_1")

    reopened = EmbeddedSearch(tmp_path)
    try:
        assert await _answers(reopened) == expected
        conn, _ = reopened._conn(T)
        assert reopened._fts_total(conn, 1, ORG_A, compile_filter("disk")) is None
        await reopened.bulk_upsert(T, [{**B1, "id": "11111111-0000-4000-8000-000000000002"}])  # still writable
        assert (await reopened.count(T, B1["org_id"], compile_filter("disk"), [])).total == 2
    finally:
        await reopened.close()


async def test_the_same_document_written_again_is_left_in_place(tmp_path: Path) -> None:
    """case-indexer and the search-indexing flavor both write a new case at its revision: the second write of the
    very same document (same version, same checksum) leaves the stored row alone instead of rewriting it."""
    search = EmbeddedSearch(tmp_path)
    try:
        await search.ensure_index(T)
        doc = {**case(1, title="disk full on web-1"), "version": 2}
        # Another case after it: a row removed and inserted again would get a new rowid (past the other's).
        await search.bulk_upsert(T, [doc, {**case(2, title="fan loud"), "version": 1}])
        table = f"cases_{(await search.current_index(T)).rsplit('-v', 1)[1]}"

        def row() -> tuple[int, str]:
            with sqlite3.connect(tmp_path / DB) as conn:
                return conn.execute(f"SELECT rid, checksum FROM {table} WHERE id = ?", (doc["id"],)).fetchone()

        first = row()
        await search.bulk_upsert(T, [dict(doc)])
        assert row() == first  # not removed and inserted again: the same row
        await search.bulk_upsert(T, [{**doc, "title": "disk full on web-2"}])  # equal version, other content
        assert row()[0] != first[0] and row()[1] != first[1]
        assert (await search.get(T, ORG_A, doc["id"]))["title"] == "disk full on web-2"  # type: ignore[index]
        # The tally (state counts) went through each write once: two open cases.
        assert (await search.count(T, ORG_A, compile_filter(""), ["status"])).groups["status"] == {"OPEN": 2}
    finally:
        await search.close()
