"""The search port's contract, run against every adapter (the `port` fixture in conftest.py)."""

from __future__ import annotations

import asyncio
import copy
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from casem.adapters.search import InvalidDocumentError, SearchPort, document_checksum
from casem.adapters.search.document import stamp, stamped
from casem.domain.search_query import parse_query
from casem.topology.tenants import CASE_MANAGEMENT, ON_CALL

T = CASE_MANAGEMENT
ORG_A = "org-a"
ORG_B = "org-b"
PROJ_ID = "0b6a3b8e-0000-4000-8000-00000000aaaa"
OPS_ID = "0b6a3b8e-0000-4000-8000-00000000bbbb"
JANE_ID = "9c1f0000-0000-4000-8000-00000000000a"
BOB_ID = "9c1f0000-0000-4000-8000-00000000000b"
STANDARD_TYPE = "7e000000-0000-4000-8000-000000000001"
SECURITY_TYPE = "7e000000-0000-4000-8000-000000000002"


def case(n: int, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "org_id": ORG_A,
        "key": f"PROJ-{n}",
        "title": "",
        "description": "",
        "status": "OPEN",
        "priority": "NOT_DEFINED",
        "project_id": PROJ_ID,
        "project_key": "PROJ",
        "type_id": STANDARD_TYPE,
        "type_name": "Standard",
        "assignee_id": None,
        "assignee_handle": None,
        "created_by_id": JANE_ID,
        "attributes": {},
        "custom_attributes": {},
        "comments": [],
        "archived": False,
        "created_at": f"2024-01-0{n}T10:00:00Z",
        "modified_at": f"2024-02-0{n}T10:00:00Z",
        "closed_at": None,
    }
    doc.update(fields)
    return doc


JANE = {"assignee_id": JANE_ID, "assignee_handle": "jane@example.com"}
OPS = {"project_id": OPS_ID, "project_key": "OPS"}

C1 = case(
    1,
    title="Disk full on web-store host",
    description="The disk is full",
    priority="P1",
    attributes={"service": ["web-store"], "env": ["prod"]},
    comments=["checked the logs"],
    custom_attributes={"impact": {"type": "TEXT", "is_multi": False, "value": "high"}},
    **JANE,
)
C2 = case(
    2,
    title="Login page slow",
    description="users report full page reloads after a cache_miss",
    status="IN_PROGRESS",
    priority="P2",
    attributes={"service": ["auth"], "env": ["prod", "staging"]},
)
C3 = case(
    3,
    key="OPS-1",
    title="Full disk alert ignored",
    description="disk alert",
    status="CLOSED",
    priority="P3",
    attributes={"team": ["site reliability"]},
    comments=["the disk was full of logs", "resolved by rotation"],
    assignee_id=BOB_ID,
    assignee_handle="bob@example.com",
    closed_at="2024-03-03T10:00:00Z",
    **OPS,
)
C4 = case(
    4,
    key="OPS-2",
    title="Certificate expiry",
    description="TLS cert expires soon",
    type_id=SECURITY_TYPE,
    type_name="Security",
    attributes={"service": ["web-store", "payments"]},
    archived=True,
    **JANE,
    **OPS,
)
C5 = case(5, title="Café menu broken", description="Unicode résumé", priority="P5", modified_at=None)
ORG_A_CASES = [C1, C2, C3, C4, C5]
# Org B has a twin of C1: same key, words and attributes, another id.
B1 = {**copy.deepcopy(C1), "id": "11111111-0000-4000-8000-000000000001", "org_id": ORG_B}


def ids(*docs: dict[str, Any]) -> set[str]:
    return {d["id"] for d in docs}


async def load(port: SearchPort, docs: list[dict[str, Any]] | None = None) -> None:
    await port.ensure_index(T)
    await port.bulk_upsert(T, copy.deepcopy(docs if docs is not None else [*ORG_A_CASES, B1]))
    await port.refresh(T)


async def found(port: SearchPort, query: str, org: str = ORG_A) -> set[str]:
    page = await port.search(T, org, parse_query(query), page_size=100)
    assert page.total == len(page.ids)
    return set(page.ids)


async def order(port: SearchPort, sort_field: str, asc: bool, query: str = "") -> list[str]:
    page = await port.search(T, ORG_A, parse_query(query), sort_field, asc, page_size=100)
    return page.ids


# --- matching ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", [C1, C2, C3, C4, C5]),
        ("disk", [C1, C3]),
        ("DISK", [C1, C3]),
        ("rotation", [C3]),  # a comment
        ("reloads", [C2]),  # a description
        ("cache", [C2]),  # '_' splits words, as '-' does
        ("cache-miss", [C2]),
        ("web", [C1]),  # 'web-store' is two words
        ("web-store", [C1]),  # ...and as a query, the phrase 'web store'
        ("cafe", [C5]),  # accents are folded both ways
        ("résumé", [C5]),
        ("PROJ-2", [C2]),  # the case key, exactly
        ("ops-1", [C3]),
        ("nothing-like-this", []),
    ],
)
async def test_free_text(port: SearchPort, query: str, expected: list[dict[str, Any]]) -> None:
    await load(port)
    assert await found(port, query) == ids(*expected)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('"disk full"', [C1]),
        ('"full disk"', [C3]),
        ('"FULL DISK alert"', [C3]),
        ('"disk was full"', [C3]),  # inside one comment
        ('"logs resolved"', []),  # never across two comments
        ('"full page reloads"', [C2]),
        ('"page full"', []),
        ('"web-store host"', [C1]),
    ],
)
async def test_phrases(port: SearchPort, query: str, expected: list[dict[str, Any]]) -> None:
    await load(port)
    assert await found(port, query) == ids(*expected)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status:open", [C1, C4, C5]),
        ("status:OPEN", [C1, C4, C5]),
        ('status:"in progress"', [C2]),
        ("status:in-progress", [C2]),
        ("status:closed", [C3]),
        ("status:nonsense", []),
        ("priority:p1", [C1]),
        ("priority:NOT_DEFINED", [C4]),
        ("project:PROJ", [C1, C2, C5]),
        ("project:ops", [C3, C4]),
        (f"project:{OPS_ID}", [C3, C4]),
        ("assignee:JANE@example.com", [C1, C4]),
        (f"assignee:{BOB_ID}", [C3]),
        ("type:security", [C4]),
        (f"type:{STANDARD_TYPE}", [C1, C2, C3, C5]),
        ("key:proj-1", [C1]),
        ("key:OPS-2", [C4]),
        ("key:PROJ", []),  # a key matches whole
        ("archived:true", [C4]),
        ("archived:false", [C1, C2, C3, C5]),
    ],
)
async def test_field_filters(port: SearchPort, query: str, expected: list[dict[str, Any]]) -> None:
    await load(port)
    assert await found(port, query) == ids(*expected)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("service:web-store", [C1, C4]),
        ("SERVICE:Web-Store", [C1, C4]),
        ("service:payments", [C4]),
        ("env:staging", [C2]),
        ("env:prod", [C1, C2]),
        ('team:"site reliability"', [C3]),
        ("team:site", []),  # values match whole
        ("service:web", []),
        ("nosuchkey:prod", []),
        ("service:(auth OR payments)", [C2, C4]),
    ],
)
async def test_attribute_filters(port: SearchPort, query: str, expected: list[dict[str, Any]]) -> None:
    await load(port)
    assert await found(port, query) == ids(*expected)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status:open AND (priority:P1 OR priority:P5)", [C1, C5]),
        ("status:open (priority:P1 OR priority:P5)", [C1, C5]),  # implicit AND
        ("disk OR certificate", [C1, C3, C4]),
        ("certificate OR disk alert", [C3, C4]),  # AND binds tighter than OR
        ("(certificate OR disk) alert", [C3]),
        ("disk full", [C1, C3]),  # both words, anywhere
        ("disk AND env:prod", [C1]),
        ("project:OPS OR service:auth", [C2, C3, C4]),
        ("status:(open OR closed) service:web-store", [C1, C4]),
    ],
)
async def test_boolean_logic(port: SearchPort, query: str, expected: list[dict[str, Any]]) -> None:
    await load(port)
    assert await found(port, query) == ids(*expected)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("-status:closed", [C1, C2, C4, C5]),
        ("NOT service:web-store", [C2, C3, C5]),
        ("disk -key:PROJ-1", [C3]),
        ("-(status:open OR status:closed)", [C2]),
        ("NOT disk NOT certificate", [C2, C5]),
        ("--disk", [C1, C3]),
        ("-env:prod", [C3, C4, C5]),  # cases without the attribute too
        ("-assignee:jane@example.com", [C2, C3, C5]),
    ],
)
async def test_negation(port: SearchPort, query: str, expected: list[dict[str, Any]]) -> None:
    await load(port)
    assert await found(port, query) == ids(*expected)


# --- sorting and paging -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort_field", "asc", "expected"),
    [
        ("created_at", False, [C5, C4, C3, C2, C1]),
        ("created_at", True, [C1, C2, C3, C4, C5]),
        # Ascending priority: most urgent first, no priority last; ties newest first.
        ("priority", True, [C1, C2, C3, C5, C4]),
        ("priority", False, [C4, C5, C3, C2, C1]),
        # Ascending status: the workflow's order; ties newest first.
        ("status", True, [C5, C4, C1, C2, C3]),
        ("status", False, [C3, C2, C5, C4, C1]),
        # A case never modified sorts last either way.
        ("modified_at", True, [C1, C2, C3, C4, C5]),
        ("modified_at", False, [C4, C3, C2, C1, C5]),
    ],
)
async def test_sorting(port: SearchPort, sort_field: str, asc: bool, expected: list[dict[str, Any]]) -> None:
    await load(port)
    assert await order(port, sort_field, asc) == [d["id"] for d in expected]


async def test_sorting_ties_are_stable(port: SearchPort) -> None:
    same_time = [case(n, created_at="2024-05-05T00:00:00Z", priority="P2") for n in (3, 1, 2)]
    await load(port, same_time)
    by_id = sorted(d["id"] for d in same_time)
    assert await order(port, "priority", True) == by_id
    assert await order(port, "created_at", False) == by_id


async def test_paging(port: SearchPort) -> None:
    await load(port)
    pages = [await port.search(T, ORG_A, parse_query(""), "created_at", False, 2, n) for n in range(4)]
    assert [p.ids for p in pages] == [[C5["id"], C4["id"]], [C3["id"], C2["id"]], [C1["id"]], []]
    assert {p.total for p in pages} == {5}
    filtered = await port.search(T, ORG_A, parse_query("status:open"), "created_at", True, 2, 1)
    assert filtered == ([C5["id"]], 3)


@pytest.mark.parametrize(
    ("sort_field", "page_size", "page_number"),
    [("title", 10, 0), ("created_at", 0, 0), ("created_at", 10, -1), ("created_at", 100, 100)],
)
async def test_bad_pages_are_refused(port: SearchPort, sort_field: str, page_size: int, page_number: int) -> None:
    await load(port)
    with pytest.raises(ValueError):
        await port.search(T, ORG_A, parse_query(""), sort_field, True, page_size, page_number)


# --- counts -----------------------------------------------------------------------------------


async def test_counts_grouped(port: SearchPort) -> None:
    await load(port)
    result = await port.count(
        T,
        ORG_A,
        parse_query(""),
        ["status", "priority", "project", "project_key", "assignee", "assignee_handle", "type_name"]
        + ["service", "env", "archived"],
    )
    assert result.total == 5
    assert result.groups == {
        "status": {"OPEN": 3, "IN_PROGRESS": 1, "CLOSED": 1},
        "priority": {"P1": 1, "P2": 1, "P3": 1, "P5": 1, "NOT_DEFINED": 1},
        "project": {PROJ_ID: 3, OPS_ID: 2},
        "project_key": {"PROJ": 3, "OPS": 2},
        "assignee": {JANE_ID: 2, BOB_ID: 1, None: 2},
        "assignee_handle": {"jane@example.com": 2, "bob@example.com": 1, None: 2},
        "type_name": {"Standard": 4, "Security": 1},
        "service": {"web-store": 2, "auth": 1, "payments": 1, None: 2},
        "env": {"prod": 2, "staging": 1, None: 3},
        "archived": {"false": 4, "true": 1},
    }


async def test_counts_follow_the_query(port: SearchPort) -> None:
    await load(port)
    result = await port.count(T, ORG_A, parse_query("status:open"), ["service", "priority"])
    assert result.total == 3
    assert result.groups == {
        "service": {"web-store": 2, "payments": 1, None: 1},
        "priority": {"P1": 1, "NOT_DEFINED": 1, "P5": 1},
    }
    nothing = await port.count(T, ORG_A, parse_query("status:nonsense"), ["status"])
    assert (nothing.total, nothing.groups) == (0, {"status": {}})
    ungrouped = await port.count(T, ORG_A, parse_query("disk"), [])
    assert (ungrouped.total, ungrouped.groups) == (2, {})


async def test_count_groups_attribute_keys_with_regex_characters(port: SearchPort) -> None:
    odd = {"a.b(c)*": ["x", "y"], "a": ["z"]}
    await load(port, [case(1, attributes=odd), case(2, attributes={"a.b(c)*": ["x"]})])
    result = await port.count(T, ORG_A, parse_query(""), ["a.b(c)*", "a"])
    assert result.groups == {"a.b(c)*": {"x": 2, "y": 1}, "a": {"z": 1, None: 1}}


# --- org and tenant isolation -----------------------------------------------------------------


async def test_org_isolation(port: SearchPort) -> None:
    await load(port)
    c1 = C1["id"]
    assert await found(port, "disk", ORG_B) == ids(B1)
    assert await found(port, "key:PROJ-1 service:web-store", ORG_B) == ids(B1)
    assert await found(port, "", ORG_B) == ids(B1)
    assert await found(port, "", "org-nobody") == set()
    assert (await port.count(T, ORG_B, parse_query(""), ["status"])).groups == {"status": {"OPEN": 1}}
    assert await port.get(T, ORG_B, c1) is None
    assert await port.delete(T, ORG_B, c1) is False
    await port.refresh(T)
    assert (await port.get(T, ORG_A, c1)) is not None
    assert await port.all_checksums(T, ORG_B) == {B1["id"]: document_checksum(B1)}


async def test_tenant_isolation(port: SearchPort) -> None:
    await load(port)
    await port.ensure_index(ON_CALL)
    assert (await port.search(T, ORG_A, parse_query(""))).total == 5
    assert await port.search(ON_CALL, ORG_A, parse_query("")) == ([], 0)
    assert await port.get(ON_CALL, ORG_A, C1["id"]) is None


# --- writes -----------------------------------------------------------------------------------


async def test_get_returns_the_document_with_its_checksum(port: SearchPort) -> None:
    await load(port)
    stored = await port.get(T, ORG_A, C1["id"])
    assert stored == {**C1, "checksum": document_checksum(C1)}


async def test_upsert_replaces(port: SearchPort) -> None:
    await load(port)
    changed = {
        **C1,
        "title": "Renamed",
        "description": "nothing to see",
        "status": "CLOSED",
        "attributes": {"service": ["billing"]},
        "comments": [],
    }
    await port.bulk_upsert(T, [changed])
    await port.refresh(T)
    assert await found(port, "disk") == ids(C3)
    assert await found(port, "renamed") == ids(C1)
    assert await found(port, "service:web-store") == ids(C4)
    assert await found(port, "service:billing status:closed") == ids(C1)
    assert (await port.search(T, ORG_A, parse_query(""))).total == 5
    assert await port.get(T, ORG_A, C1["id"]) == {**changed, "checksum": document_checksum(changed)}
    assert await found(port, "disk", ORG_B) == ids(B1)  # the twin in org B is untouched


async def test_a_stamped_document_is_written_as_it_came(port: SearchPort) -> None:
    """A document stamped by its builder (IngestCases stamps those of the cases it creates) is searchable and stored
    as the same document written plain would be, its version guarding it the same way; its text is what is stored."""
    await load(port)
    changed = {**C1, "title": "Stamped on the way", "attributes": {"service": ["billing"]}, "version": 4}
    sent = stamped(stamp(changed).text, 4)
    assert await port.bulk_upsert(T, [sent], replace_equal=False) == 1
    await port.refresh(T)
    assert await found(port, "stamped way service:billing") == ids(C1)
    plain = {k: v for k, v in changed.items() if k != "version"}
    assert await port.get(T, ORG_A, C1["id"]) == {**plain, "checksum": document_checksum(plain)}
    assert (await port.versions(T, [(ORG_A, C1["id"])]))[C1["id"]] == 4
    # An older stamped write arriving late does not replace it.
    await port.bulk_upsert(T, [stamp({**C1, "title": "Stale", "version": 3})])
    await port.refresh(T)
    assert await found(port, "stale") == set()
    assert (await port.get(T, ORG_A, C1["id"]) or {})["title"] == "Stamped on the way"


async def test_delete_removes(port: SearchPort) -> None:
    await load(port)
    assert await port.delete(T, ORG_A, C3["id"]) is True
    await port.refresh(T)
    assert await found(port, "disk") == ids(C1)
    assert await port.get(T, ORG_A, C3["id"]) is None
    assert C3["id"] not in await port.all_checksums(T, ORG_A)
    assert (await port.count(T, ORG_A, parse_query(""), ["status"])).groups["status"] == {"OPEN": 3, "IN_PROGRESS": 1}
    assert await port.delete(T, ORG_A, C3["id"]) is False


async def test_invalid_documents_are_refused(port: SearchPort) -> None:
    await port.ensure_index(T)
    for bad in (
        {**C1, "status": "DONE"},
        {**C1, "priority": "P9"},
        {**C1, "org_id": ""},
        {**C1, "attributes": {"a": "x"}},
    ):
        with pytest.raises(InvalidDocumentError):
            await port.bulk_upsert(T, [bad])


async def test_ensure_index_is_idempotent(port: SearchPort) -> None:
    assert await port.current_index(T) is None
    first = await port.ensure_index(T)
    assert first.endswith("casem-v8-v1")
    assert await port.ensure_index(T) == first == await port.current_index(T)


# --- checksums and reindex --------------------------------------------------------------------


async def test_checksums(port: SearchPort) -> None:
    await load(port)
    everything = [*ORG_A_CASES, B1]
    assert await port.all_checksums(T, ORG_A) == {d["id"]: document_checksum(d) for d in ORG_A_CASES}
    assert await port.all_checksums(T) == {d["id"]: document_checksum(d) for d in everything}
    assert len(set((await port.all_checksums(T)).values())) == len(everything)


async def test_reindex_swaps_the_alias_while_search_answers(port: SearchPort) -> None:
    await load(port)
    old_index = await port.current_index(T)
    assert old_index is not None and old_index.endswith("-v1")
    c6 = case(6, title="Added during the rebuild", attributes={"service": ["web-store"]})
    rebuilt = [*ORG_A_CASES, B1, c6]
    streamed = asyncio.Event()
    answers: list[int] = []

    async def slowly() -> AsyncIterator[dict[str, Any]]:
        for doc in copy.deepcopy(rebuilt):
            await asyncio.sleep(0.02)
            yield doc
        streamed.set()

    async def keep_searching() -> None:
        while not streamed.is_set():
            answers.append((await port.search(T, ORG_A, parse_query("service:web-store"))).total)
            await asyncio.sleep(0.005)

    searcher = asyncio.create_task(keep_searching())
    new_index = await port.reindex(T, slowly())
    await searcher
    # Searches ran while the new index was filling: each saw one whole index, the old one (2
    # matches) until the swap, then perhaps the new one (3), never a partial one or an error.
    assert answers.count(2) >= 5
    assert set(answers) <= {2, 3} and answers == sorted(answers)

    assert new_index.endswith("-v2") and new_index == await port.current_index(T)
    assert (await port.search(T, ORG_A, parse_query("service:web-store"))).total == 3
    assert await found(port, "rebuild") == ids(c6)
    assert await port.all_checksums(T) == {d["id"]: document_checksum(d) for d in rebuilt}
    assert (await port.reindex(T, [C1])).endswith("-v3")
    assert await found(port, "") == ids(C1)


async def test_failed_reindex_keeps_the_old_index(port: SearchPort) -> None:
    await load(port)
    old_index = await port.current_index(T)

    async def broken() -> AsyncIterator[dict[str, Any]]:
        yield copy.deepcopy(C1)
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError, match="went away"):
        await port.reindex(T, broken())
    assert await port.current_index(T) == old_index
    assert await found(port, "") == ids(*ORG_A_CASES)
    assert (await port.reindex(T, [C2])).endswith("-v2")  # the failed build left nothing behind


# -- versions and writes during a reindex ---------------------------------------------------------------------


async def test_an_older_version_never_overwrites_a_newer_one(port: SearchPort) -> None:
    await port.ensure_index(T)
    await port.bulk_upsert(T, [{**case(1, title="fifth"), "version": 5}])
    await port.bulk_upsert(T, [{**case(1, title="third, arriving late"), "version": 3}])
    await port.refresh(T)
    stored = await port.get(T, ORG_A, case(1)["id"])
    assert stored is not None and stored["title"] == "fifth"
    assert "version" not in stored  # the version is not part of the document
    assert stored["checksum"] == document_checksum(case(1, title="fifth"))
    await port.bulk_upsert(T, [{**case(1, title="fifth, again"), "version": 5}])  # equal: replaces
    await port.refresh(T)
    assert (await port.get(T, ORG_A, case(1)["id"]))["title"] == "fifth, again"  # type: ignore[index]
    await port.bulk_upsert(T, [{**case(1, title="sixth"), "version": 6}])
    await port.refresh(T)
    assert (await port.get(T, ORG_A, case(1)["id"]))["title"] == "sixth"  # type: ignore[index]
    # Deleted: a late write of the case's last document does not bring it back.
    assert await port.delete(T, ORG_A, case(1)["id"]) is True
    await port.bulk_upsert(T, [{**case(1, title="sixth, late"), "version": 6}])
    await port.refresh(T)
    assert await port.get(T, ORG_A, case(1)["id"]) is None


async def test_a_writer_that_keeps_an_equal_version_rewrites_only_older_documents(port: SearchPort) -> None:
    await port.ensure_index(T)
    await port.bulk_upsert(T, [{**case(1, title="fifth"), "version": 5}, {**case(2, title="second"), "version": 2}])
    # Equal (case 1): kept as stored. Newer (case 2) and absent (case 3): written. Older: refused as ever.
    await port.bulk_upsert(
        T,
        [
            {**case(1, title="fifth, written again"), "version": 5},
            {**case(2, title="third"), "version": 3},
            {**case(3, title="first"), "version": 1},
        ],
        replace_equal=False,
    )
    await port.bulk_upsert(T, [{**case(2, title="first, late"), "version": 1}], replace_equal=False)
    await port.refresh(T)
    titles = {n: (await port.get(T, ORG_A, case(n)["id"]) or {}).get("title") for n in (1, 2, 3)}
    assert titles == {1: "fifth", 2: "third", 3: "first"}
    assert await port.versions(T, [(ORG_A, case(n)["id"]) for n in (1, 2, 3)]) == {
        case(1)["id"]: 5,
        case(2)["id"]: 3,
        case(3)["id"]: 1,
    }
    # A deleted case stays deleted; the default still replaces an equal version (a repair).
    await port.delete(T, ORG_A, case(3)["id"])
    await port.bulk_upsert(T, [{**case(3, title="first, late"), "version": 1}], replace_equal=False)
    await port.bulk_upsert(T, [{**case(1, title="fifth, repaired"), "version": 5}])
    await port.refresh(T)
    assert await port.get(T, ORG_A, case(3)["id"]) is None
    assert (await port.get(T, ORG_A, case(1)["id"]) or {}).get("title") == "fifth, repaired"


async def test_versions_are_read_back_per_case_of_its_org(port: SearchPort) -> None:
    await port.ensure_index(T)
    one, two, three = case(1), case(2), case(3)
    await port.bulk_upsert(T, [{**one, "version": 4}, {**two, "version": 1}, {**three, "version": 2}])
    await port.delete(T, ORG_A, three["id"])
    # No refresh: a writer reads the versions right after its write (or another process's).
    wanted = [(ORG_A, one["id"]), (ORG_A, two["id"]), (ORG_A, three["id"]), (ORG_A, case(4)["id"])]
    assert await port.versions(T, wanted) == {one["id"]: 4, two["id"]: 1}  # deleted and absent: not there
    assert await port.versions(T, [(ORG_B, one["id"])]) == {}  # another org's case of that id
    assert await port.versions(T, []) == {}
    await port.bulk_upsert(T, [{**one, "version": 7}])
    assert await port.versions(T, [(ORG_A, one["id"])]) == {one["id"]: 7}


async def test_writes_during_a_reindex_land_in_both_indices(port: SearchPort) -> None:
    await port.ensure_index(T)
    await port.bulk_upsert(T, [{**case(n, title=f"case {n} v1"), "version": 1} for n in (1, 2, 3)])
    building = asyncio.Event()
    resume = asyncio.Event()

    async def snapshot() -> AsyncIterator[dict[str, Any]]:
        """The database as the reindex read it: version 1 of every case, read before the writes below."""
        yield {**case(1, title="case 1 v1"), "version": 1}
        building.set()
        await resume.wait()
        for n in (2, 3):
            yield {**case(n, title=f"case {n} v1"), "version": 1}

    task = asyncio.create_task(port.reindex(T, snapshot()))
    await asyncio.wait_for(building.wait(), 30)
    # Meanwhile (another process, through the port): case 1 and 2 change, case 3 is deleted, case 4 is new.
    await port.bulk_upsert(T, [{**case(n, title=f"case {n} v2"), "version": 2} for n in (1, 2)])
    await port.delete(T, ORG_A, case(3)["id"])
    await port.bulk_upsert(T, [{**case(4, title="case 4 v1"), "version": 1}])
    resume.set()
    await asyncio.wait_for(task, 60)
    await port.refresh(T)
    titles = {n: (await port.get(T, ORG_A, case(n)["id"]) or {}).get("title") for n in (1, 2, 3, 4)}
    assert titles == {1: "case 1 v2", 2: "case 2 v2", 3: None, 4: "case 4 v1"}
    assert set(await port.all_checksums(T, ORG_A)) == {case(n)["id"] for n in (1, 2, 4)}


# -- counts stay exact through every kind of write ----------------------------------------------------------------

_STATE_QUERIES = ["", "status:open", "-status:closed priority:P1", "status:(open OR in_progress)", "archived:true"]
_GROUPS = ["status", "priority", "archived", "project", "assignee_handle", "type_name", "service", "env"]


def _varied(n: int, rng: random.Random, org: str = ORG_A) -> dict[str, Any]:
    """Case n with a random state, assignee and attributes (some multi-valued, one value twice, some absent)."""
    attributes: dict[str, list[str]] = {}
    if rng.random() < 0.7:
        attributes["service"] = rng.sample(["web-store", "db", "auth"], rng.randint(1, 2))
    if rng.random() < 0.3:
        attributes["env"] = ["prod", "prod"] if rng.random() < 0.5 else ["staging"]
    return {
        **case(1),
        "id": f"00000000-0000-4000-8000-{n:012d}",
        "org_id": org,
        "key": f"PROJ-{n}",
        "status": rng.choice(["OPEN", "IN_PROGRESS", "CLOSED"]),
        "priority": rng.choice(["NOT_DEFINED", "P1", "P2", "P5"]),
        "archived": rng.random() < 0.2,
        "attributes": attributes,
        "created_at": f"2024-01-01T{n % 24:02d}:{n % 60:02d}:00Z",
        **(rng.choice([{}, JANE, {"assignee_id": BOB_ID, "assignee_handle": "bob@example.com"}])),
        **(OPS if rng.random() < 0.5 else {}),
    }


def _expected_count(docs: list[dict[str, Any]], query: str) -> tuple[int, dict[str, dict[str | None, int]]]:
    """The count the port must give, worked out from the documents themselves."""
    status = {"": None, "status:open": {"OPEN"}, "status:(open OR in_progress)": {"OPEN", "IN_PROGRESS"}}
    matching = [
        d
        for d in docs
        if (query not in status or status[query] is None or d["status"] in status[query])
        and (query != "-status:closed priority:P1" or (d["status"] != "CLOSED" and d["priority"] == "P1"))
        and (query != "archived:true" or d["archived"])
    ]
    groups: dict[str, dict[str | None, int]] = {}
    for name in _GROUPS:
        counted: dict[str | None, int] = {}
        for d in matching:
            if name in ("service", "env"):
                values: list[str | None] = sorted(set(d["attributes"].get(name, []))) or [None]
            elif name == "archived":
                values = ["true" if d["archived"] else "false"]
            else:
                values = [d[{"project": "project_id"}.get(name, name)]]
            for value in values:
                counted[value] = counted.get(value, 0) + 1
        groups[name] = counted
    return len(matching), groups


async def _assert_counts_exact(port: SearchPort, docs: dict[str, dict[str, Any]]) -> None:
    await port.refresh(T)
    for query in _STATE_QUERIES:
        total, groups = _expected_count(list(docs.values()), query)
        result = await port.count(T, ORG_A, parse_query(query), _GROUPS)
        assert (result.total, result.groups) == (total, groups), query
        assert (await port.search(T, ORG_A, parse_query(query), page_size=1)).total == total, query


async def test_counts_stay_exact_through_updates_deletes_and_reindex(port: SearchPort) -> None:
    rng = random.Random(14)
    await port.ensure_index(T)
    docs = {d["id"]: d for d in (_varied(n, rng) for n in range(1, 41))}
    await port.bulk_upsert(T, copy.deepcopy(list(docs.values())))
    await port.bulk_upsert(T, [_varied(n, rng, org=ORG_B) for n in range(1, 6)])  # never counted for org A
    await _assert_counts_exact(port, docs)
    # Updates that move cases between states, assignees and attribute values; deletes; an upsert of the same doc.
    for n in rng.sample(range(1, 41), 15):
        changed = _varied(n, rng)
        docs[changed["id"]] = changed
        await port.bulk_upsert(T, [copy.deepcopy(changed)])
    for n in rng.sample(range(1, 41), 8):
        assert await port.delete(T, ORG_A, docs.pop(f"00000000-0000-4000-8000-{n:012d}")["id"]) is True
    await port.bulk_upsert(T, copy.deepcopy(list(docs.values())[:5]))
    await _assert_counts_exact(port, docs)
    # A reindex from the documents, then more writes to the new index.
    await port.reindex(T, copy.deepcopy(list(docs.values())))
    await _assert_counts_exact(port, docs)
    for n in range(41, 46):
        new = _varied(n, rng)
        docs[new["id"]] = new
        await port.bulk_upsert(T, [copy.deepcopy(new)])
    assert await port.delete(T, ORG_A, docs.pop(next(iter(docs)))["id"]) is True
    await _assert_counts_exact(port, docs)
