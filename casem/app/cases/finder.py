"""Finding cases: one interface, two implementations, chosen once when the context opens.

`DatabaseCaseSearch` answers from the tenant database (reads its own writes at once: the laptop default);
`EngineCaseSearch` asks the search engine kept by the indexer and the search-indexing flavor, then serves
the page's cases from the database. Both give the same answers to the same query (casem/app/search/service.py
explains how), so switching changes speed, not results.
"""

from __future__ import annotations

from typing import Protocol

from casem.adapters.search.port import SearchPort
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases import search as database
from casem.app.search import service as engine
from casem.app.search.service import AggregateGroup, AggregateResult, CountGroup
from casem.domain.cases import Case
from casem.domain.errors import InvalidInput

AGGREGATE_GROUPS = "/data/attributes/group_by/groups"
AGGREGATE_LIMIT = "/data/attributes/group_by/limit"


class CaseSearch(Protocol):
    async def search(self, uow: UnitOfWork, org_id: str, params: database.SearchParams) -> tuple[list[Case], int]:
        """The page of cases the params ask for, and how many match in all."""
        ...

    async def count(
        self, uow: UnitOfWork, org_id: str, query: str | None, group_bys: list[str], limit: int
    ) -> tuple[int, list[CountGroup]]:
        """How many cases match, and per group_by field its values with their counts, most frequent first."""
        ...

    async def aggregate(
        self, uow: UnitOfWork, org_id: str, query: str | None, groups: list[str], limit: int
    ) -> AggregateResult:
        """Datadog's CaseAggregate: one group per value of each field, in request order."""
        ...


def _check_aggregate(query: str | None, groups: list[str], limit: int) -> None:
    """The request's problems in the order a person fixes them: what to group by, the query, the limit."""
    if not groups:
        raise InvalidInput("group_by.groups must name at least one field", AGGREGATE_GROUPS)
    database.parse(query, "query_filter")
    if not 1 <= limit <= database.COUNT_LIMIT_MAX:
        raise InvalidInput(f"group_by.limit must be between 1 and {database.COUNT_LIMIT_MAX}", AGGREGATE_LIMIT)


class DatabaseCaseSearch:
    async def search(self, uow: UnitOfWork, org_id: str, params: database.SearchParams) -> tuple[list[Case], int]:
        return await database.search_cases(uow, org_id, params)

    async def count(
        self, uow: UnitOfWork, org_id: str, query: str | None, group_bys: list[str], limit: int
    ) -> tuple[int, list[CountGroup]]:
        node = database.parse(query, "query_filter")
        counted = await database.count_cases(uow, org_id, node, group_bys, limit)
        groups = [CountGroup(g["group"], [(v["value"], v["count"]) for v in g["group_values"]]) for g in counted]
        return await database.total(uow, org_id, node), groups

    async def aggregate(
        self, uow: UnitOfWork, org_id: str, query: str | None, groups: list[str], limit: int
    ) -> AggregateResult:
        _check_aggregate(query, groups, limit)
        total, counted = await self.count(uow, org_id, query, list(dict.fromkeys(groups)), limit)
        return AggregateResult(
            total=float(total),
            groups=[AggregateGroup(g.group, value, [float(n)]) for g in counted for value, n in g.group_values],
        )


class EngineCaseSearch:
    def __init__(self, engine_port: SearchPort, tenant: str) -> None:
        self.engine = engine_port
        self.tenant = tenant

    async def search(self, uow: UnitOfWork, org_id: str, params: database.SearchParams) -> tuple[list[Case], int]:
        # The engine finds and orders (scoped by org inside its query); the database serves the cases.
        ids, total = await engine.search_cases(
            self.engine,
            self.tenant,
            org_id,
            params.query,
            params.sort_field,
            params.sort_asc,
            params.page_size,
            params.page_number - 1,
        )
        return await database.cases_by_ids(uow, org_id, ids), total

    async def count(
        self, uow: UnitOfWork, org_id: str, query: str | None, group_bys: list[str], limit: int
    ) -> tuple[int, list[CountGroup]]:
        database.parse(query, "query_filter")  # a malformed query is a 400 that says where, as in the database
        return await engine.count_cases(self.engine, self.tenant, org_id, query or "", group_bys, limit)

    async def aggregate(
        self, uow: UnitOfWork, org_id: str, query: str | None, groups: list[str], limit: int
    ) -> AggregateResult:
        _check_aggregate(query, groups, limit)
        return await engine.aggregate_cases(self.engine, self.tenant, org_id, query or "", groups, limit)
