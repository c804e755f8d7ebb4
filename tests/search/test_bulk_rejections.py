"""Bulk writes the engine partly turns away (a full write queue answers 429 per item): the adapter sends again
only the refused documents, loses none, and raises once they keep being refused.

The engine is the real OpenSearch node; between it and the adapter sits a proxy (an httpx transport) that plays
the node's write queue being full for chosen documents: it forwards the rest of each `_bulk` request to the node
and answers for the chosen items as the node does when it rejects them (status 429,
es_rejected_execution_exception), in their place among the node's own results."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from casem.adapters.search import OpenSearchSearch, SearchBackendError
from casem.topology.tenants import CASE_MANAGEMENT
from tests.backends import engine_address
from tests.search.test_contract import case

pytestmark = pytest.mark.opensearch


class FullWriteQueue(httpx.AsyncBaseTransport):
    """Forwards everything to the node, except `_bulk` items for the alias whose document id is in `refuse`:
    each is answered 429 while its count of refusals lasts (or, in `broken`, 400 as a document the node cannot
    parse). Records the document ids each `_bulk` carried."""

    def __init__(self, alias: str, refuse: dict[str, int], broken: frozenset[str] = frozenset()) -> None:
        self.node = httpx.AsyncHTTPTransport()
        self.alias = alias
        self.refuse = dict(refuse)
        self.broken = broken
        self.bulks: list[list[str]] = []  # ids written to the alias, per _bulk request
        self.targets: list[list[str]] = []  # the target of every document item, per _bulk request
        self.probes: list[list[str]] = []  # the target of every other item (the adapter's probes), per request

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/_bulk":
            return await self.node.handle_async_request(request)
        lines = (await request.aread()).decode().splitlines()
        pairs = [(json.loads(lines[i]), lines[i + 1]) for i in range(0, len(lines), 2)]
        documents = [meta["index"] for meta, _ in pairs if "index" in meta]
        self.bulks.append([_case_id(target) for target in documents if target["_index"] == self.alias])
        self.targets.append([target["_index"] for target in documents])
        self.probes.append([target["_index"] for meta, _ in pairs if "index" not in meta for target in meta.values()])
        refused: dict[int, dict[str, Any]] = {}
        kept: list[str] = []
        for n, (meta, source) in enumerate(pairs):
            target = meta.get("index") or {"_index": None}
            case_id = _case_id(target) if "index" in meta else None
            if target["_index"] == self.alias and case_id in self.broken:
                refused[n] = _refusal(target, 400, "mapper_parsing_exception", "failed to parse")
            elif target["_index"] == self.alias and self.refuse.get(case_id, 0) > 0:
                self.refuse[case_id] -= 1
                refused[n] = _refusal(target, 429, "es_rejected_execution_exception", "write queue full")
            else:
                kept += [json.dumps(meta), source]
        answered: list[dict[str, Any]] = []
        if kept:
            forwarded = httpx.Request(
                "POST",
                request.url,
                headers={"content-type": "application/x-ndjson"},
                content=("\n".join(kept) + "\n").encode(),
            )
            response = await self.node.handle_async_request(forwarded)
            await response.aread()
            answered = response.json()["items"]
        node_items = iter(answered)
        items = [refused[n] if n in refused else next(node_items) for n in range(len(pairs))]
        return httpx.Response(200, json={"took": 1, "errors": bool(refused), "items": items})

    async def aclose(self) -> None:
        await self.node.aclose()


def _refusal(target: dict[str, Any], status: int, kind: str, reason: str) -> dict[str, Any]:
    return {
        "index": {
            "_index": target["_index"],
            "_id": target["_id"],
            "status": status,
            "error": {"type": kind, "reason": reason},
        }
    }


def _case_id(target: dict[str, Any]) -> str:
    return str(target["_id"]).split(":", 1)[1]


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    prefix = f"t{uuid.uuid4().hex[:12]}-"
    yield prefix
    cleanup = OpenSearchSearch(engine_address("opensearch"), index_prefix=prefix)
    await cleanup.drop(CASE_MANAGEMENT)
    await cleanup.close()


def _port(
    prefix: str, refuse: dict[str, int], broken: frozenset[str] = frozenset()
) -> tuple[OpenSearchSearch, FullWriteQueue]:
    alias = OpenSearchSearch("http://unused", index_prefix=prefix).alias(CASE_MANAGEMENT)
    proxy = FullWriteQueue(alias, refuse, broken)
    client = httpx.AsyncClient(base_url=engine_address("opensearch").rstrip("/"), transport=proxy, timeout=30)
    return OpenSearchSearch(engine_address("opensearch"), index_prefix=prefix, client=client), proxy


DOCS = [case(n, title=f"case {n}", version=1) for n in range(1, 9)]
IDS = [d["id"] for d in DOCS]


async def test_refused_items_are_sent_again_alone_and_none_is_lost(prefix: str) -> None:
    refused_twice, refused_once = IDS[2], IDS[5]
    port, proxy = _port(prefix, {refused_twice: 2, refused_once: 1})
    try:
        await port.ensure_index(CASE_MANAGEMENT)
        assert await port.bulk_upsert(CASE_MANAGEMENT, DOCS) == len(DOCS)
        await port.refresh(CASE_MANAGEMENT)
        stored = await port.all_checksums(CASE_MANAGEMENT)
    finally:
        await port.close()
    assert sorted(stored) == sorted(IDS)
    # The whole batch once, then only what was refused: both, then the one refused twice.
    assert proxy.bulks == [IDS, [refused_twice, refused_once], [refused_twice]]


async def test_items_refused_past_the_attempts_raise_and_the_rest_is_stored(prefix: str) -> None:
    stubborn = IDS[0]
    port, proxy = _port(prefix, {stubborn: 1_000})
    try:
        await port.ensure_index(CASE_MANAGEMENT)
        with pytest.raises(SearchBackendError, match="still refused") as raised:
            await port.bulk_upsert(CASE_MANAGEMENT, DOCS)
        assert raised.value.unavailable  # the caller waits and writes the batch again; nothing is dropped
        await port.refresh(CASE_MANAGEMENT)
        stored = await port.all_checksums(CASE_MANAGEMENT)
    finally:
        await port.close()
    assert sorted(stored) == sorted(IDS[1:])
    assert proxy.bulks[0] == IDS
    assert all(bulk == [stubborn] for bulk in proxy.bulks[1:]) and len(proxy.bulks) > 1


async def test_an_item_refused_for_good_raises_at_once(prefix: str) -> None:
    port, proxy = _port(prefix, {IDS[1]: 1}, broken=frozenset({IDS[4]}))
    try:
        await port.ensure_index(CASE_MANAGEMENT)
        with pytest.raises(SearchBackendError, match="mapper_parsing_exception") as raised:
            await port.bulk_upsert(CASE_MANAGEMENT, DOCS)
        assert not raised.value.unavailable
    finally:
        await port.close()
    assert len(proxy.bulks) == 1  # not sent again: no later request would take it


async def test_documents_go_to_the_building_index_only_while_a_reindex_builds_one(prefix: str) -> None:
    """Without a reindex, each document is sent once, to the alias (it used to go to the absent building alias too,
    to be turned away), in one request that also asks whether the building alias is there; while one builds (its
    index carries the building alias), that request's answer says so and the documents go again, to both, and both
    store them."""
    port, proxy = _port(prefix, {})
    alias = port.alias(CASE_MANAGEMENT)
    try:
        await port.ensure_index(CASE_MANAGEMENT)
        requests_before = len(proxy.targets)
        await port.bulk_upsert(CASE_MANAGEMENT, DOCS[:4], replace_equal=False)
        assert proxy.targets[requests_before:] == [[alias] * 4]  # one request, no second one for the absent alias
        assert proxy.probes[requests_before:] == [[f"{alias}-next"]]

        building = f"{alias}-v99"  # as `reindex` creates it, with the building alias from its first moment
        response = await port._http.put(f"/{building}", json={"aliases": {f"{alias}-next": {}}})
        assert response.status_code == 200, response.text
        await port.bulk_upsert(CASE_MANAGEMENT, DOCS[4:], replace_equal=False)
        assert proxy.targets[requests_before + 1 :] == [[alias] * 4, [alias, f"{alias}-next"] * 4]
        assert proxy.probes[requests_before + 1 :] == [[f"{alias}-next"], []]
        await port.refresh(CASE_MANAGEMENT)
        stored = await port.all_checksums(CASE_MANAGEMENT)  # through the alias: the current index
        assert sorted(stored) == sorted(IDS)
        await port._http.post(f"/{building}/_refresh")
        found = await port._http.post(f"/{building}/_search", json={"size": 0, "track_total_hits": True})
        assert found.json()["hits"]["total"]["value"] == 4
    finally:
        await port._http.delete(f"/{alias}-v99")
        await port.close()
