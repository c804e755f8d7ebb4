"""OpenSearch / Elasticsearch adapter over the REST API (httpx).

Sticks to what OpenSearch 2.x and Elasticsearch 8.x both accept: explicit mappings with a
custom analyzer and normalizer, `_bulk`, `_aliases` actions, `search_after`, terms/missing/filter
aggregations. The engine indexes a projection of each case (folded keywords, sort ranks, epoch
millis, attribute pairs) and keeps the case document itself, unindexed, under `source`.

Documents are stored under the id `<org_id>:<case_id>`, so a get or a delete for the wrong org
finds nothing, and every search and count filters on org_id inside the engine query.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from casem.adapters import fastjson
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
)
from casem.adapters.search.port import (
    GROUP_FIELDS,
    MAX_GROUP_VALUES,
    CountResult,
    Docs,
    SearchBackendError,
    SearchPage,
    SearchPort,
    check_page,
    iterate,
    resolve_tenant,
)
from casem.domain.search_query import And, Field, MatchAll, Node, Not, Or, Text
from casem.topology.tenants import TENANTS

_BATCH = 500
# Bulk items the engine refused for a passing reason (its write queue full, a shard not ready) are sent again.
_PASSING_ITEM_STATUSES = frozenset({429, 502, 503, 504})
_ITEM_ATTEMPTS = 5
_ITEM_BACKOFF_S = 0.1
_SCAN_PAGE = 1_000
_BULK_RESPONSE_FIELDS = "items.*.status,items.*.error"

_KEYWORD_LC = {"type": "keyword", "fields": {"lc": {"type": "keyword", "normalizer": "casem_lc"}}}
_TEXT = {"type": "text", "analyzer": "casem_text"}

# Letters and digits make words; the embedded adapter's FTS5 tokenizer splits the same way.
INDEX_SETTINGS: dict[str, Any] = {
    "index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"},
    "analysis": {
        "tokenizer": {"casem_words": {"type": "pattern", "pattern": "[^\\p{L}\\p{N}]+"}},
        "analyzer": {
            "casem_text": {"type": "custom", "tokenizer": "casem_words", "filter": ["lowercase", "asciifolding"]}
        },
        "normalizer": {"casem_lc": {"type": "custom", "filter": ["lowercase"]}},
    },
}
MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "id": _KEYWORD_LC,
        "org_id": {"type": "keyword"},
        "key": _KEYWORD_LC,
        "title": _TEXT,
        "description": _TEXT,
        "comments": _TEXT,
        "status": {"type": "keyword"},
        "priority": {"type": "keyword"},
        "status_rank": {"type": "integer"},
        "priority_rank": {"type": "integer"},
        "project_id": _KEYWORD_LC,
        "project_key": _KEYWORD_LC,
        "type_id": _KEYWORD_LC,
        "type_name": _KEYWORD_LC,
        "assignee_id": _KEYWORD_LC,
        "assignee_handle": _KEYWORD_LC,
        "created_by_id": {"type": "keyword"},
        "attr": _KEYWORD_LC,  # "<key>\x1f<value>" per attribute value
        "attr_keys": {"type": "keyword"},
        "archived": {"type": "boolean"},
        "created_ms": {"type": "long"},
        "modified_ms": {"type": "long"},
        "closed_ms": {"type": "long"},
        "checksum": {"type": "keyword"},
        "source": {"type": "object", "enabled": False},
    },
}

_EITHER = {
    "project": ("project_key", "project_id"),
    "assignee": ("assignee_handle", "assignee_id"),
    "type": ("type_name", "type_id"),
}
_SORT_FIELDS = {
    "created_at": "created_ms",
    "modified_at": "modified_ms",
    "priority": "priority_rank",
    "status": "status_rank",
}
# Copied from the case document as they are (the rest of the projection is derived).
_COPIED = ("id", "org_id", "key", "title", "description", "status", "priority", "project_id")
_COPIED += ("project_key", "type_id", "type_name", "assignee_id", "assignee_handle", "created_by_id")
_LUCENE_REGEX_RESERVED = set('.?+*|{}[]()"\\#@&<>~')


def _term(field: str, value: Any) -> dict[str, Any]:
    return {"term": {field: value}}


def _any(*clauses: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"should": list(clauses), "minimum_should_match": 1}}


def compile_query(node: Node) -> dict[str, Any]:
    """The query AST as query DSL (the org filter is added around it by the caller)."""
    match node:
        case MatchAll():
            return {"match_all": {}}
        case And(children):
            return {"bool": {"filter": [compile_query(c) for c in children]}}
        case Or(children):
            return _any(*(compile_query(c) for c in children))
        case Not(child):
            return {"bool": {"must_not": [compile_query(child)]}}
        case Text(value):
            return _any(
                {"multi_match": {"query": value, "type": "phrase", "fields": ["title", "description", "comments"]}},
                _term("key.lc", fold(value)),
            )
        case Field(name=name, value=value) if node.is_attribute:
            return _term("attr.lc", fold(name) + ATTR_SEPARATOR + fold(value))
        case Field(name="status" | "priority" as name, value=value):
            return _term(name, value)
        case Field(name="key", value=value):
            return _term("key.lc", fold(value))
        case Field(name="archived", value=value):
            if value in ("true", "false"):
                return _term("archived", value == "true")
            return {"bool": {"must_not": [{"match_all": {}}]}}  # matches nothing
        case Field(name=name, value=value):
            by_name, by_id = _EITHER[name]
            return _any(_term(f"{by_name}.lc", fold(value)), _term(f"{by_id}.lc", fold(value)))
    raise TypeError(f"not a query node: {node!r}")


def projection(doc: CaseDocument) -> dict[str, Any]:
    """What the engine indexes for a (prepared) case document, but for the document itself (see `indexed_text`)."""
    pairs = attribute_pairs(doc)
    return {
        **{f: doc.get(f) for f in _COPIED},
        "comments": doc.get("comments") or [],
        "status_rank": STATUS_RANK[doc["status"]],
        "priority_rank": PRIORITY_RANK[doc["priority"]],
        "attr": [k + ATTR_SEPARATOR + v for k, v in pairs],
        "attr_keys": sorted({k for k, _ in pairs}),
        "archived": bool(doc.get("archived")),
        "created_ms": epoch_millis(doc.get("created_at")),
        "modified_ms": epoch_millis(doc.get("modified_at")),
        "closed_ms": epoch_millis(doc.get("closed_at")),
        "checksum": doc["checksum"],
    }


def indexed_text(stamped: StampedDocument) -> str:
    """A bulk request's source line for a stamped document: its projection, and the document itself under `source`
    as its text came, spliced in rather than decoded and encoded again (the bigger part of the line)."""
    projected = fastjson.text(projection(stamped.fields))
    return f'{projected[:-1]},"source":{stamped.text}}}'


def _doc_id(org_id: str, case_id: str) -> str:
    return f"{org_id}:{case_id}"


# The id of the document a bulk's probe item asks to update: no case has it (a case's id is `org:case`).
_PROBE_ID = "casem-probe"


def _probe_found(result: dict[str, Any], documents: int) -> bool:
    """Whether the probe item, the last of a bulk answer after `documents` items, found its alias: False only
    when the engine said the alias is not there; the probe's item is taken off the answer."""
    items = result.get("items") or []
    if len(items) != documents + 1:
        return True  # an answer of another length: `_settle` refuses it
    outcome = items.pop().get("update") or {}
    return (outcome.get("error") or {}).get("type") != "index_not_found_exception"


def _building(alias: str) -> str:
    """The alias of the index a reindex is building (there only while it builds)."""
    return f"{alias}-next"


DELETED = 2**62  # the version of a deleted case's tombstone: above any revision a case reaches


def _regex_literal(text: str) -> str:
    return "".join("\\" + c if c in _LUCENE_REGEX_RESERVED else c for c in text)


class OpenSearchSearch(SearchPort):
    """`index_prefix` namespaces every alias and index (tests, or clusters shared by installs)."""

    def __init__(
        self,
        url: str,
        *,
        index_prefix: str = "",
        write_refresh: str = "false",
        client: httpx.AsyncClient | None = None,
        timeout: float = 30.0,
    ) -> None:
        if index_prefix != index_prefix.lower():
            raise ValueError("index names are lower case: index_prefix must be too")
        if write_refresh not in ("false", "true", "wait_for"):
            raise ValueError("write_refresh is one of false, true, wait_for")
        self.index_prefix = index_prefix
        self.write_refresh = write_refresh
        self._http = client or httpx.AsyncClient(base_url=url.rstrip("/"), timeout=timeout)

    # --- plumbing ------------------------------------------------------------------------------

    def alias(self, tenant: str) -> str:
        return self.index_prefix + resolve_tenant(tenant).search_alias

    async def _request(
        self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201), **params: Any
    ) -> httpx.Response:
        content: bytes | None = None
        headers = {}
        if isinstance(body, list | str):  # ndjson for _bulk: lines to encode, or encoded already
            lines = body if isinstance(body, str) else (json.dumps(line, ensure_ascii=False) + "\n" for line in body)
            content = "".join(lines).encode()
            headers["content-type"] = "application/x-ndjson"
        elif body is not None:
            content = json.dumps(body, ensure_ascii=False).encode()
            headers["content-type"] = "application/json"
        try:
            response = await self._http.request(method, path, content=content, headers=headers, params=params)
        except httpx.TransportError as e:
            raise SearchBackendError(f"{method} {path}: {e!r}", unavailable=True) from e
        except httpx.HTTPError as e:
            raise SearchBackendError(f"{method} {path}: {e}") from e
        if response.status_code not in ok:
            raise SearchBackendError(
                f"{method} {path}: HTTP {response.status_code}: {response.text[:2000]}",
                unavailable=response.status_code in (429, 502, 503, 504),
            )
        return response

    async def _indices_behind(self, alias: str) -> list[str]:
        response = await self._request("GET", f"/_alias/{alias}", ok=(200, 404))
        if response.status_code == 404:
            return []
        return sorted(response.json())

    async def _versions(self, alias: str) -> list[int]:
        response = await self._request("GET", f"/_cat/indices/{alias}-v*", format="json", h="index")
        found = [re.fullmatch(re.escape(alias) + r"-v(\d+)", row["index"]) for row in response.json()]
        return sorted(int(m.group(1)) for m in found if m)

    async def _create_index(self, name: str, alias: str | None) -> bool:
        """Create an index (with the alias when given); False when it already exists."""
        body: dict[str, Any] = {"settings": INDEX_SETTINGS, "mappings": MAPPINGS}
        if alias is not None:
            body["aliases"] = {alias: {}}
        return await self._put_index(name, body)

    async def _put_index(self, name: str, body: dict[str, Any]) -> bool:
        response = await self._request("PUT", f"/{name}", body, ok=(200, 400))
        if response.status_code == 400:
            error = response.json().get("error", {})
            if error.get("type") == "resource_already_exists_exception":
                return False
            raise SearchBackendError(f"PUT /{name}: {response.text[:2000]}")
        return True

    async def _bulk(
        self,
        targets: list[str],
        docs: list[StampedDocument],
        refresh: str,
        *,
        replace_equal: bool = True,
        probe: str | None = None,
    ) -> tuple[int, bool]:
        """Write each document to each of `targets` (aliases, `require_alias`: a target that is not there, such
        as the building alias when no reindex runs, is skipped, never created). A versioned document replaces
        only a document of a lower or equal version (external_gte): a stale write is skipped. Without
        `replace_equal`, only one of a lower version (external): an equal one is a version conflict, which the
        engine settles from the version alone, without indexing the document again. Returns how many
        documents the first target took.

        Items the engine turned away for a passing reason (429 and other retryable item statuses: a full write
        queue, a shard relocating) are sent again, those items only, up to `_ITEM_ATTEMPTS` requests in all,
        after a short back-off; if some still fail, or one fails for good, the write raises (the caller retries
        the batch: a write is idempotent by version).

        With `probe` (an alias), the first request also carries an item that writes nothing: a partial update
        of a document that is never there, in the alias. The second value returned is False only when the
        engine answered that item with the alias absent; True when the alias is there, or when the answer
        cannot tell (a refused request: the caller then assumes it is there)."""
        pending: list[tuple[str, str]] = []  # (target, the item's two ndjson lines)
        for doc in docs:
            version = doc.version
            # Projected and encoded once, whatever the number of targets (the source is the big part).
            source = indexed_text(doc)
            for target in targets:
                meta: dict[str, Any] = {"_index": target, "_id": _doc_id(doc.fields["org_id"], doc.fields["id"])}
                if version is not None:
                    meta |= {"version": version, "version_type": "external_gte" if replace_equal else "external"}
                pending.append((target, fastjson.text({"index": meta}) + "\n" + source + "\n"))
        taken = 0
        probe_found = probe is not None
        for attempt in range(1, _ITEM_ATTEMPTS + 1):
            body = "".join(lines for _, lines in pending)
            if probe is not None and attempt == 1:
                body += fastjson.text({"update": {"_index": probe, "_id": _PROBE_ID}}) + '\n{"doc":{}}\n'
            response = await self._request(
                "POST",
                "/_bulk",
                body,
                refresh=refresh,
                require_alias="true",
                # Each item's status, and its error when it has one: all `_settle` reads. Without the rest (index,
                # id, version, shards, sequence numbers of every item) the answer to a bulk of 500 is a tenth of the
                # size, for the engine to write and for this process to parse.
                filter_path=_BULK_RESPONSE_FIELDS,
            )
            result = fastjson.loads(response.content)
            if probe is not None and attempt == 1:
                probe_found = _probe_found(result, len(pending))
            settled, passing = self._settle(result, [t for t, _ in pending], targets[0], "index")
            taken += settled
            if not passing:
                return taken, probe_found
            if attempt == _ITEM_ATTEMPTS:
                raise SearchBackendError(
                    f"bulk index: {len(passing)} item(s) still refused after {attempt} requests: {passing[0][1]}",
                    unavailable=True,
                )
            pending = [pending[n] for n, _ in passing]
            await asyncio.sleep(_ITEM_BACKOFF_S * 2 ** (attempt - 1))
        return taken, probe_found

    @staticmethod
    def _settle(
        result: dict[str, Any], sent: list[str], first_target: str, action: str
    ) -> tuple[int, list[tuple[int, dict[str, Any]]]]:
        """Of a bulk response to items sent to the targets `sent`, in order: how many the first target took, and
        the items refused for a passing reason (their positions and errors). Stale versions and absent building
        aliases are fine; any other refusal raises."""
        taken = 0
        passing: list[tuple[int, dict[str, Any]]] = []
        items = result.get("items") or []
        if len(items) != len(sent):
            raise SearchBackendError(f"bulk {action}: {len(items)} results for {len(sent)} items")
        for n, item in enumerate(items):
            outcome = item[action]
            target = sent[n]
            error = outcome.get("error") or {}
            if not error:
                taken += target == first_target
            elif error.get("type") == "version_conflict_engine_exception":
                continue  # a newer version is there already
            elif error.get("type") == "index_not_found_exception" and target != first_target:
                continue  # no reindex is building a next index
            elif outcome.get("status") in _PASSING_ITEM_STATUSES:
                passing.append((n, error))
            else:
                raise SearchBackendError(f"bulk {action} to {target}: {error}")
        return taken, passing

    async def _scoped_search(self, tenant: str, org_id: str | None, query: Node, **body: Any) -> dict[str, Any]:
        engine_query = compile_query(query)
        if org_id is not None:
            engine_query = {"bool": {"filter": [_term("org_id", org_id), engine_query]}}
        response = await self._request("POST", f"/{self.alias(tenant)}/_search", {"query": engine_query, **body})
        return response.json()

    # --- writes --------------------------------------------------------------------------------

    async def ensure_index(self, tenant: str) -> str:
        alias = self.alias(tenant)
        behind = await self._indices_behind(alias)
        if behind:
            return behind[-1]
        name = f"{alias}-v1"
        # Index and alias in one request: a concurrent caller either wins or finds both.
        await self._create_index(name, alias)
        behind = await self._indices_behind(alias)
        if not behind:
            raise SearchBackendError(f"index {name} exists without alias {alias}: a reindex failed midway?")
        return behind[-1]

    async def current_index(self, tenant: str) -> str | None:
        behind = await self._indices_behind(self.alias(tenant))
        return behind[-1] if behind else None

    def _targets(self, tenant: str) -> list[str]:
        """The alias, and the alias of the index a reindex is building (writes land in both until the swap)."""
        alias = self.alias(tenant)
        return [alias, _building(alias)]

    async def bulk_upsert(
        self, tenant: str, docs: Iterable[Mapping[str, Any] | StampedDocument], *, replace_equal: bool = True
    ) -> int:
        prepared = stamped_all(docs)
        if not prepared:
            return 0
        alias, building = self._targets(tenant)
        targets = [alias]
        for start in range(0, len(prepared), _BATCH):
            batch = prepared[start : start + _BATCH]
            if start == 0:
                # The first request writes to the alias alone and asks, in the same request, whether a reindex is
                # building (a probe item for the building alias). The documents were built from the database
                # before this call, and the engine resolved the probe after that: when it found no building
                # alias, a reindex that starts later creates its index, then reads the database, so it finds
                # these cases at these revisions or newer. Asking in the bulk itself, not in a request of its own
                # first, saves a round trip per batch (that request was a fifth of the indexer's busy time in
                # py-spy when batches are small, as at a steady rate).
                _, building_found = await self._bulk(
                    targets, batch, self.write_refresh, replace_equal=replace_equal, probe=building
                )
                if not building_found:
                    continue
                # A reindex is building (or the probe could not tell): this batch again, to both (a write is
                # idempotent by version), and every later batch to both. Sending both in one request, not the
                # building alias alone, keeps a swap between two requests from leaving the new index without
                # these documents: the engine resolves both aliases at once.
                targets = [alias, building]
            await self._bulk(targets, batch, self.write_refresh, replace_equal=replace_equal)
        return len(prepared)

    async def delete(self, tenant: str, org_id: str, case_id: str) -> bool:
        # A deleted case never comes back: its delete outranks every version, so a late write of its last
        # document is refused (for as long as the engine keeps the tombstone, index.gc_deletes).
        targets = self._targets(tenant)
        if not await self._indices_behind(targets[1]):
            # No reindex is building. `require_alias` does not hold back a delete: an externally versioned one
            # to the absent building alias would create a concrete index of that name, and every later reindex
            # would then fail to put its building alias there. A reindex that starts after this check reads the
            # database after creating its index, so it no longer sees the case deleted there before this call.
            targets = targets[:1]
        lines = [
            {"delete": {"_index": t, "_id": _doc_id(org_id, case_id), "version": DELETED, "version_type": "external"}}
            for t in targets
        ]
        response = await self._request("POST", "/_bulk", lines, refresh=self.write_refresh, require_alias="true")
        items = response.json().get("items") or []
        for target, item in zip(targets, items, strict=False):
            kind = (item["delete"].get("error") or {}).get("type")
            absent_building = kind == "index_not_found_exception" and target != targets[0]
            if kind and not absent_building and kind != "version_conflict_engine_exception":  # conflict: deleted
                raise SearchBackendError(f"delete from {target}: {item['delete']['error']}")
        return bool(items) and items[0]["delete"].get("result") == "deleted"

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
        order = "asc" if sort_asc else "desc"
        sort: list[dict[str, Any]] = [{_SORT_FIELDS[sort_field]: {"order": order, "missing": "_last"}}]
        if sort_field != "created_at":
            sort.append({"created_ms": {"order": "desc", "missing": "_last"}})
        sort.append({"id": {"order": "asc"}})
        result = await self._scoped_search(
            tenant,
            org_id,
            query,
            sort=sort,
            size=page_size,
            **{"from": page_number * page_size},
            # The id is the last sort value of each hit: no stored document is loaded and parsed to return it
            # (each _source holds the whole case).
            _source=False,
            track_total_hits=True,
        )
        hits = result["hits"]
        return SearchPage([h["sort"][-1] for h in hits["hits"]], hits["total"]["value"])

    async def count(self, tenant: str, org_id: str, query: Node, group_by: list[str]) -> CountResult:
        aggs: dict[str, Any] = {}
        order = [{"_count": "desc"}, {"_key": "asc"}]
        for i, name in enumerate(group_by):
            field = GROUP_FIELDS.get(name)
            if field is not None:
                aggs[f"g{i}"] = {"terms": {"field": field, "size": MAX_GROUP_VALUES, "order": order}}
                aggs[f"m{i}"] = {"missing": {"field": field}}
            else:
                include = _regex_literal(name + ATTR_SEPARATOR) + ".*"
                aggs[f"g{i}"] = {
                    "terms": {"field": "attr", "include": include, "size": MAX_GROUP_VALUES, "order": order}
                }
                aggs[f"m{i}"] = {"filter": {"bool": {"must_not": [_term("attr_keys", name)]}}}
        result = await self._scoped_search(tenant, org_id, query, size=0, track_total_hits=True, aggs=aggs)
        groups: dict[str, dict[str | None, int]] = {}
        for i, name in enumerate(group_by):
            counts: dict[str | None, int] = {}
            attribute = name not in GROUP_FIELDS
            for bucket in result["aggregations"][f"g{i}"]["buckets"]:
                key = bucket.get("key_as_string", bucket["key"])  # booleans come back as 1/0 + string
                if attribute:
                    key = key.split(ATTR_SEPARATOR, 1)[1]
                counts[key] = bucket["doc_count"]
            if missing := result["aggregations"][f"m{i}"]["doc_count"]:
                counts[None] = missing
            groups[name] = counts
        return CountResult(result["hits"]["total"]["value"], groups)

    async def get(self, tenant: str, org_id: str, case_id: str) -> CaseDocument | None:
        path = f"/{self.alias(tenant)}/_doc/{quote(_doc_id(org_id, case_id), safe='')}"
        response = await self._request("GET", path, ok=(200, 404))
        body = response.json()
        if response.status_code == 404:
            if body.get("found") is False:
                return None
            raise SearchBackendError(f"GET {path}: {response.text[:2000]}")  # no index at all
        return body["_source"]["source"]

    async def versions(self, tenant: str, refs: Sequence[tuple[str, str]]) -> dict[str, int]:
        by_doc_id = {_doc_id(org_id, case_id): case_id for org_id, case_id in refs}
        if not by_doc_id:
            return {}
        # Real time (no refresh needed): a write acknowledged a moment ago is seen. Versions only, no source.
        path = f"/{self.alias(tenant)}/_mget"
        response = await self._request("POST", path, {"ids": list(by_doc_id)}, _source="false")
        found: dict[str, int] = {}
        for doc in response.json().get("docs") or []:
            if "error" in doc:
                raise SearchBackendError(f"_mget {doc.get('_id')}: {doc['error']}")
            if doc.get("found") and doc.get("_version") is not None and doc["_id"] in by_doc_id:
                found[by_doc_id[doc["_id"]]] = int(doc["_version"])
        return found

    async def all_checksums(self, tenant: str, org_id: str | None = None) -> dict[str, str]:
        # search_after over a total order (id, org_id): complete even while writes go on.
        checksums: dict[str, str] = {}
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "size": _SCAN_PAGE,
                "sort": [{"id": "asc"}, {"org_id": "asc"}],
                # Both from doc values (the id is the first sort value), not from the stored whole case.
                "_source": False,
                "docvalue_fields": ["checksum"],
            }
            if after is not None:
                body["search_after"] = after
            result = await self._scoped_search(tenant, org_id, MatchAll(), **body)
            hits = result["hits"]["hits"]
            for hit in hits:
                checksums[hit["sort"][0]] = hit["fields"]["checksum"][0]
            if len(hits) < _SCAN_PAGE:
                return checksums
            after = hits[-1]["sort"]

    # --- index lifecycle -----------------------------------------------------------------------

    async def reindex(self, tenant: str, docs: Docs) -> str:
        alias = self.alias(tenant)
        await self.ensure_index(tenant)
        old = await self._indices_behind(alias)
        versions = await self._versions(alias)
        new = f"{alias}-v{(versions[-1] if versions else 0) + 1}"
        # The new index carries the building alias from its first moment: from then on every write through the
        # port lands in it as well as in the current one, so what changes during the build is not lost.
        if not await self._create_index(new, _building(alias)):
            raise SearchBackendError(f"index {new} already exists: is another reindex running?")
        try:
            # No refreshes while loading; one at the end makes everything visible before the swap.
            await self._request("PUT", f"/{new}/_settings", {"index": {"refresh_interval": "-1"}})
            batch: list[StampedDocument] = []
            async for doc in iterate(docs):
                batch.append(stamp(doc))
                if len(batch) >= _BATCH:
                    await self._bulk([_building(alias)], batch, "false")
                    batch = []
            if batch:
                await self._bulk([_building(alias)], batch, "false")
            await self._request("PUT", f"/{new}/_settings", {"index": {"refresh_interval": None}})
            await self._request("POST", f"/{new}/_refresh")
            actions: list[dict[str, Any]] = [
                {"add": {"index": new, "alias": alias}},
                {"remove": {"index": new, "alias": _building(alias)}},
            ]
            actions += [{"remove": {"index": index, "alias": alias}} for index in old]
            await self._request("POST", "/_aliases", {"actions": actions})
        except BaseException:
            await self._request("DELETE", f"/{new}", ok=(200, 404))
            raise
        for index in old:
            await self._request("DELETE", f"/{index}", ok=(200, 404))
        return new

    async def drop(self, tenant: str) -> None:
        alias = self.alias(tenant)
        indices = set(await self._indices_behind(alias))
        indices.update(f"{alias}-v{v}" for v in await self._versions(alias))
        for index in sorted(indices):
            await self._request("DELETE", f"/{index}", ok=(200, 404))

    async def refresh(self, tenant: str | None = None) -> None:
        names = [tenant] if tenant is not None else [t.name for t in TENANTS]
        for name in names:
            await self._request("POST", f"/{self.alias(name)}/_refresh", ok=(200, 404))

    async def close(self) -> None:
        await self._http.aclose()
