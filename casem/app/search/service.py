"""Search, count and aggregate cases through the search engine (the search port), for the HTTP API.

Same meaning as the database-backed search in casem/app/cases/search.py, so switching
the API to the engine changes speed, not answers: archived cases are left out unless the query names
`archived:`, an unknown `status:`/`priority:`/`archived:` value is invalid input (not an empty result),
and a malformed query raises the parser's QuerySyntaxError (the caller turns it into a 400).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from casem.adapters.search.document import PRIORITY_RANK, STATUS_RANK
from casem.adapters.search.port import MAX_GROUP_VALUES, SearchPort
from casem.domain.errors import InvalidInput
from casem.domain.search_query import And, Field, Node, Not, Or, fields_in, parse_query

COUNT_LIMIT_DEFAULT = 100
COUNT_LIMIT_MAX = MAX_GROUP_VALUES
AGGREGATE_RESOURCE_TYPE = "aggregate"


def _check_values(node: Node) -> None:
    match node:
        case Field(name="status", value=value) if value not in STATUS_RANK:
            raise InvalidInput(f"status:{value} is not a status: use one of {', '.join(STATUS_RANK)}")
        case Field(name="priority", value=value) if value not in PRIORITY_RANK:
            raise InvalidInput(f"priority:{value} is not a priority: use one of {', '.join(PRIORITY_RANK)}")
        case Field(name="archived", value=value) if value not in ("true", "false"):
            raise InvalidInput(f"archived:{value} must be archived:true or archived:false")
        case Not(child):
            _check_values(child)
        case And(children) | Or(children):
            for child in children:
                _check_values(child)


def compile_filter(query: str | None) -> Node:
    """Parse (QuerySyntaxError when malformed), check enumerated values, hide archived cases unless asked."""
    node = parse_query(query or "")
    _check_values(node)
    if "archived" not in fields_in(node):
        hidden = Field("archived", "false")
        node = And((*node.children, hidden)) if isinstance(node, And) else And((node, hidden))
    return node


async def search_cases(
    search: SearchPort,
    tenant: str,
    org_id: str,
    query: str,
    sort_field: str = "created_at",
    sort_asc: bool = False,
    page_size: int = 10,
    page_number: int = 0,
) -> tuple[list[str], int]:
    """(case ids of the page in order, total matching). `page_number` counts from 0, as the port does;
    the HTTP API's 1-based page[number] is `page_number - 1` here."""
    page = await search.search(tenant, org_id, compile_filter(query), sort_field, sort_asc, page_size, page_number)
    return page.ids, page.total


@dataclass(frozen=True)
class CountGroup:
    group: str
    group_values: list[tuple[str, int]]  # (value, cases), most frequent first


async def count_cases(
    search: SearchPort,
    tenant: str,
    org_id: str,
    query: str,
    group_bys: list[str],
    limit: int = COUNT_LIMIT_DEFAULT,
) -> tuple[int, list[CountGroup]]:
    """(total, per group_by field its values and counts): the shape of CaseCountResponse.

    Cases without a value (unassigned, attribute absent) are not listed, as in the database count."""
    if not 1 <= limit <= COUNT_LIMIT_MAX:
        raise InvalidInput(f"limit must be between 1 and {COUNT_LIMIT_MAX}, got {limit}")
    result = await search.count(tenant, org_id, compile_filter(query), list(dict.fromkeys(group_bys)))
    groups = []
    for name in dict.fromkeys(group_bys):
        counts = [(value, n) for value, n in result.groups.get(name, {}).items() if value is not None]
        counts.sort(key=lambda item: (-item[1], item[0]))
        groups.append(CountGroup(name, counts[:limit]))
    return result.total, groups


@dataclass(frozen=True)
class AggregateGroup:
    field: str  # the group_by field this value belongs to
    group: str  # the value, e.g. OPEN
    value: list[float]  # [cases], CaseAggregateGroup.value


@dataclass(frozen=True)
class AggregateResult:
    total: float
    groups: list[AggregateGroup] = field(default_factory=list)

    def to_jsonapi(self, result_id: str) -> dict[str, object]:
        """The body of CaseAggregateResponse."""
        return {
            "data": {
                "id": result_id,
                "type": AGGREGATE_RESOURCE_TYPE,
                "attributes": {
                    "total": self.total,
                    "groups": [{"group": g.group, "value": g.value} for g in self.groups],
                },
            }
        }


async def aggregate_cases(
    search: SearchPort, tenant: str, org_id: str, query_filter: str, groups: list[str], limit: int
) -> AggregateResult:
    """POST /api/v2/cases/aggregate (CaseAggregateRequest: group_by {groups, limit}, query_filter).

    Each CaseAggregateGroup is one value of a group_by field with `value` = [cases with it]; with several
    fields their groups follow one another in request order, each field's most frequent first, at most
    `limit` per field. Group names: status, priority, project (id), project_key, assignee (id),
    assignee_handle, type (id), type_name, archived, or any attribute key."""
    if not groups:
        raise InvalidInput("group_by.groups must name at least one field", "/data/attributes/group_by/groups")
    if not 1 <= limit <= COUNT_LIMIT_MAX:
        raise InvalidInput(f"group_by.limit must be between 1 and {COUNT_LIMIT_MAX}", "/data/attributes/group_by/limit")
    total, counted = await count_cases(search, tenant, org_id, query_filter, groups, limit)
    return AggregateResult(
        total=float(total),
        groups=[AggregateGroup(g.group, value, [float(n)]) for g in counted for value, n in g.group_values],
    )
