"""Engine-backed search/count/aggregate, on both search adapters, over documents built from real cases."""

from __future__ import annotations

import pytest

from casem.adapters.search import SearchPort
from casem.app.cases import service as cases
from casem.app.cases import updates
from casem.app.context import AppContext
from casem.app.search.documents import iter_documents
from casem.app.search.service import aggregate_cases, count_cases, search_cases
from casem.domain.errors import InvalidInput
from casem.domain.search_query import QuerySyntaxError
from casem.topology.tenants import CASE_MANAGEMENT
from tests.intake.stack import Tenant, new_tenant

T = CASE_MANAGEMENT

# (title, priority, status, attributes, assigned, archived)
CASES = [
    ("disk full on web-1", "P1", "OPEN", {"service": ["web-store"]}, True, False),
    ("disk slow on db-2", "P2", "IN_PROGRESS", {"service": ["db"]}, False, False),
    ("login broken", "P1", "CLOSED", {"service": ["web-store", "auth"]}, True, False),
    ("printer jam", "NOT_DEFINED", "OPEN", {}, False, False),
    ("old disk alert", "P3", "OPEN", {"service": ["web-store"]}, False, True),
]


async def seed(context: AppContext, port: SearchPort) -> tuple[Tenant, dict[str, str]]:
    tenant = await new_tenant(context, key="SRCH")
    org, user = tenant.creds.org_id, tenant.creds.user_id
    ids: dict[str, str] = {}
    for title, priority, status, attributes, assigned, archived in CASES:
        async with context.uow() as uow:
            new = cases.NewCase(project_id=tenant.project_id, title=title, priority=priority, attributes=attributes)
            case = await cases.create_case(uow, org, user, new)
            if status != "OPEN":
                await updates.transition(uow, org, user, case.id, status)
            if assigned:
                await updates.assign(uow, org, user, case.id, user)
            if archived:
                await updates.archive(uow, org, user, case.id)
            await uow.commit()
        ids[title] = case.id
    other = await new_tenant(context)  # another org's case must never show up
    async with context.uow() as uow:
        await cases.create_case(uow, other.creds.org_id, None, cases.NewCase(project_id=other.project_id, title="disk"))
        await uow.commit()
    await port.ensure_index(T)
    async with context.uow(read_only=True) as uow:
        await port.bulk_upsert(T, [doc async for doc in iter_documents(uow)])
    await port.refresh(T)
    return tenant, ids


async def test_search_count_and_aggregate(context: AppContext, port: SearchPort) -> None:
    tenant, ids = await seed(context, port)
    org = tenant.creds.org_id

    found, total = await search_cases(port, T, org, "disk", sort_field="priority", sort_asc=True)
    assert (found, total) == ([ids["disk full on web-1"], ids["disk slow on db-2"]], 2)  # archived one hidden
    found, total = await search_cases(port, T, org, "disk archived:true")
    assert (found, total) == ([ids["old disk alert"]], 1)
    found, total = await search_cases(port, T, org, "service:web-store -status:closed")
    assert found == [ids["disk full on web-1"]]
    found, total = await search_cases(port, T, org, "", page_size=2, page_number=1)
    assert total == 4 and len(found) == 2
    _, total = await search_cases(port, T, org, f"assignee:{tenant.creds.user_id} OR project:srch priority:P2")
    assert total == 3

    total, groups = await count_cases(port, T, org, "", ["status", "priority", "service", "assignee"])
    assert total == 4
    by_name = {g.group: dict(g.group_values) for g in groups}
    assert by_name["status"] == {"OPEN": 2, "IN_PROGRESS": 1, "CLOSED": 1}
    assert by_name["priority"] == {"P1": 2, "P2": 1, "NOT_DEFINED": 1}
    assert by_name["service"] == {"web-store": 2, "db": 1, "auth": 1}
    assert by_name["assignee"] == {tenant.creds.user_id: 2}
    _, limited = await count_cases(port, T, org, "", ["service"], limit=1)
    assert limited[0].group_values == [("web-store", 2)]

    result = await aggregate_cases(port, T, org, "priority:P1", ["status", "project"], limit=10)
    assert result.total == 2.0
    assert [(g.field, g.group, g.value) for g in result.groups] == [
        ("status", "CLOSED", [1.0]),
        ("status", "OPEN", [1.0]),
        ("project", tenant.project_id, [2.0]),
    ]
    body = result.to_jsonapi("agg")
    assert body["data"]["type"] == "aggregate"  # type: ignore[index]


async def test_bad_queries(context: AppContext, port: SearchPort) -> None:
    tenant, _ = await seed(context, port)
    org = tenant.creds.org_id
    with pytest.raises(QuerySyntaxError):
        await search_cases(port, T, org, "status:(open")
    with pytest.raises(QuerySyntaxError):
        await count_cases(port, T, org, 'title:"unclosed', ["status"])
    with pytest.raises(InvalidInput):
        await search_cases(port, T, org, "status:pending")
    with pytest.raises(InvalidInput):
        await aggregate_cases(port, T, org, "", [], limit=10)
