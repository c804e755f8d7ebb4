"""Case search, count and aggregate served by the search engine, driven with datadog-api-client.

Cases are created through the API; the outbox, relay and search-indexing flavor bring them into the
engine (embedded SQLite FTS5, or OpenSearch); the official client then searches, counts and aggregates."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from datadog_api_client.exceptions import ApiException
from datadog_api_client.v2.model.case_aggregate_group_by import CaseAggregateGroupBy
from datadog_api_client.v2.model.case_aggregate_request import CaseAggregateRequest
from datadog_api_client.v2.model.case_aggregate_request_attributes import CaseAggregateRequestAttributes
from datadog_api_client.v2.model.case_aggregate_request_data import CaseAggregateRequestData
from datadog_api_client.v2.model.case_aggregate_resource_type import CaseAggregateResourceType
from datadog_api_client.v2.model.case_sortable_field import CaseSortableField

from casem.adapters.bus.embedded import EmbeddedBus
from casem.adapters.search.embedded import EmbeddedSearch
from casem.adapters.search.opensearch import OpenSearchSearch
from casem.cli.local_stack import LocalWorkers
from tests.api.helpers import make_case, make_project
from tests.backends import engine_address
from tests.support.api_client import new_org
from tests.support.live_server import LiveServer


@pytest.fixture(params=["embedded", pytest.param("opensearch", marks=pytest.mark.opensearch)])
def engine_server(request: pytest.FixtureRequest, server: LiveServer, tmp_path: Path) -> Iterator[LiveServer]:
    """The live case-api switched to engine-backed search, with the pipeline that feeds the engine."""
    if request.param == "opensearch":
        engine = OpenSearchSearch(engine_address("opensearch"), index_prefix=f"e2e{uuid.uuid4().hex[:10]}-")
    else:
        engine = EmbeddedSearch(tmp_path / "search")
    bus = EmbeddedBus(tmp_path / "bus.db")
    server.call(engine.ensure_index("case-management"))
    server.context.use_search_engine(engine)
    workers = LocalWorkers(server.context, bus)
    server.call(workers.start())
    try:
        yield server
    finally:
        server.call(workers.stop())
        server.call(bus.close())
        server.context.use_search_engine(None)
        server.call(engine.drop("case-management"))  # leave no index behind on a shared engine
        server.call(engine.close())


def _eventually(check, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "the index did not catch up in time"
        time.sleep(0.2)
    return result


def test_search_count_and_aggregate_come_from_the_engine(engine_server: LiveServer) -> None:
    org, other = new_org(engine_server), new_org(engine_server)
    project = make_project(org, "ENG")
    make_case(org, project.id, "Disk full on web-1", priority="P1")
    make_case(org, project.id, "Checkout latency", priority="P3")
    slow = make_case(org, project.id, "Disk latency on db-2", priority="P3")
    org.cases.update_status(case_id=slow.id, body={"data": {"type": "case", "attributes": {"status": "CLOSED"}}})

    def indexed():  # type: ignore[no-untyped-def]
        everything = org.cases.search_cases(filter="project:ENG", page_size=10)
        closed = org.cases.search_cases(filter="status:closed", page_size=10)
        return closed if len(everything.data) == 3 and len(closed.data) == 1 else None

    assert _eventually(indexed).data[0].id == slow.id
    disk = org.cases.search_cases(filter="disk AND priority:P3", page_size=10)
    assert [c.id for c in disk.data] == [slow.id] and disk.meta.page.total == 1
    by_priority = org.cases.search_cases(
        filter="project:ENG", sort_field=CaseSortableField.PRIORITY, sort_asc=True, page_size=10
    )
    assert [str(c.attributes.priority) for c in by_priority.data] == ["P1", "P3", "P3"]

    counted = org.cases.count_cases(group_bys="status,priority")
    groups = {g.group: {v.value: v.count for v in g.group_values} for g in counted.data.attributes.groups}
    assert groups == {"status": {"OPEN": 2, "CLOSED": 1}, "priority": {"P3": 2, "P1": 1}}

    body = CaseAggregateRequest(
        data=CaseAggregateRequestData(
            attributes=CaseAggregateRequestAttributes(
                group_by=CaseAggregateGroupBy(groups=["status"], limit=10), query_filter="project:ENG"
            ),
            type=CaseAggregateResourceType.AGGREGATE,
        )
    )
    aggregate = org.cases.aggregate_cases(body=body).data.attributes
    assert aggregate.total == 3
    assert {g.group: g.value for g in aggregate.groups} == {"OPEN": [2.0], "CLOSED": [1.0]}

    # Scoped by org inside the engine query: the other org matches nothing, even with a matching query.
    assert other.cases.search_cases(filter="disk", page_size=10).data == []
    with pytest.raises(ApiException) as err:
        org.cases.search_cases(filter="status:(open", page_size=10)
    assert err.value.status == 400 and "at position 12" in str(err.value.body)
