"""search_cases and count_cases through the official client: query language, paging, sorting, facets."""

from __future__ import annotations

import pytest
from datadog_api_client.exceptions import ApiException
from datadog_api_client.v2.model.case_sortable_field import CaseSortableField

from tests.api.helpers import add_user, make_case, make_project
from tests.support.api_client import OrgClient


def keys(response) -> list[str]:
    return [c.attributes.key for c in response.data]


def search_keys(org: OrgClient, query: str, **kwargs) -> set[str]:
    return {c.attributes.key for c in org.cases.search_cases(filter=query, page_size=100, **kwargs).data}


def post(org: OrgClient, case_id: str, path: str, attributes: dict | None = None) -> None:
    body: dict = {"data": {"type": "case"}}
    if attributes is not None:
        body["data"]["attributes"] = attributes
    response = org.http.post(f"/api/v2/cases/{case_id}/{path}", json=body)
    assert response.status_code == 200, response.text


@pytest.fixture
def corpus(org: OrgClient) -> dict[str, str]:
    """Six cases across two projects; returns user ids by name."""
    sec, ops = make_project(org, "SEC"), make_project(org, "OPS")
    jane = add_user(org, "jane@example.com")
    s1 = make_case(org, sec.id, "Disk full on web-1", priority="P1")  # SEC-1
    s2 = make_case(org, sec.id, "Phishing 100% confirmed", priority="P3")  # SEC-2
    s3 = make_case(org, sec.id, "Stolen laptop")  # SEC-3
    o1 = make_case(org, ops.id, "Disk latency on db-2", priority="P2")  # OPS-1
    o2 = make_case(org, ops.id, "Certificate expiry")  # OPS-2
    o3 = make_case(org, ops.id, "Old noise", priority="P5")  # OPS-3
    post(org, s1.id, "description", {"description": "The /var partition is at 100%"})
    post(org, s1.id, "attributes", {"attributes": {"service": ["web-store", "Web-API"], "env": ["prod"]}})
    post(org, o1.id, "attributes", {"attributes": {"service": ["db"], "env": ["prod"]}})
    post(org, s2.id, "attributes", {"attributes": {"team": ["site reliability"], "note": ["50%_off"]}})
    post(org, s2.id, "status", {"status": "IN_PROGRESS"})
    post(org, o2.id, "status", {"status": "CLOSED"})
    post(org, s3.id, "status", {"status": "CLOSED"})
    post(org, s1.id, "assign", {"assignee_id": jane})
    post(org, o2.id, "assign", {"assignee_id": org.user_id})
    post(org, o3.id, "archive")
    return {"jane": jane, "sec": sec.id, "ops": ops.id}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"SEC-1", "SEC-2", "SEC-3", "OPS-1", "OPS-2"}),
        ("disk", {"SEC-1", "OPS-1"}),
        ("DISK web", {"SEC-1"}),
        ('"disk full"', {"SEC-1"}),
        ("partition", {"SEC-1"}),  # description
        ("ops-2", {"OPS-2"}),  # key, as free text
        ("100%", {"SEC-1", "SEC-2"}),  # % is literal, not a LIKE wildcard
        ("status:open", {"SEC-1", "OPS-1"}),
        ("status:(in_progress OR closed)", {"SEC-2", "SEC-3", "OPS-2"}),
        ("-status:closed", {"SEC-1", "SEC-2", "OPS-1"}),
        ("priority:P1 OR priority:p2", {"SEC-1", "OPS-1"}),
        ("project:SEC status:closed", {"SEC-3"}),
        ("project:ops", {"OPS-1", "OPS-2"}),
        ("assignee:jane@example.com", {"SEC-1"}),
        ("assignee:JANE@example.com OR assignee:admin@example.com", {"SEC-1", "OPS-2"}),
        ("-assignee:jane@example.com", {"SEC-2", "SEC-3", "OPS-1", "OPS-2"}),  # unassigned cases stay
        ("key:sec-2", {"SEC-2"}),
        ("type:standard", {"SEC-1", "SEC-2", "SEC-3", "OPS-1", "OPS-2"}),
        ("type:00000000-0000-0000-0000-000000000001 status:closed", {"SEC-3", "OPS-2"}),
        ("service:web-api", {"SEC-1"}),  # attribute values compare case-insensitively
        ("service:web", set()),  # ... and whole: no substring match
        ("env:prod -service:db", {"SEC-1"}),
        ('team:"site reliability"', {"SEC-2"}),
        ("note:50%_off", {"SEC-2"}),
        ("note:50%", set()),
        ("archived:true", {"OPS-3"}),
        ("archived:true OR archived:false", {"SEC-1", "SEC-2", "SEC-3", "OPS-1", "OPS-2", "OPS-3"}),
        ("noise", set()),  # archived cases are left out unless asked for
        ("(disk OR laptop) AND NOT priority:P2", {"SEC-1", "SEC-3"}),
    ],
)
def test_query_language(org: OrgClient, corpus: dict[str, str], query: str, expected: set[str]) -> None:
    assert search_keys(org, query) == expected


def test_assignee_by_id_and_project_by_id(org: OrgClient, corpus: dict[str, str]) -> None:
    assert search_keys(org, f"assignee:{corpus['jane']}") == {"SEC-1"}
    assert search_keys(org, f"project:{corpus['ops']}") == {"OPS-1", "OPS-2"}


def test_sorting(org: OrgClient, corpus: dict[str, str]) -> None:
    newest_first = org.cases.search_cases()
    assert keys(newest_first) == ["OPS-2", "OPS-1", "SEC-3", "SEC-2", "SEC-1"]
    assert keys(org.cases.search_cases(sort_field=CaseSortableField("created_at"), sort_asc=True)) == [
        "SEC-1",
        "SEC-2",
        "SEC-3",
        "OPS-1",
        "OPS-2",
    ]
    # Priority in urgency order, NOT_DEFINED last; ties broken by creation time.
    by_priority = org.cases.search_cases(sort_field=CaseSortableField("priority"), sort_asc=True)
    assert keys(by_priority) == ["SEC-1", "OPS-1", "SEC-2", "SEC-3", "OPS-2"]
    by_status = org.cases.search_cases(sort_field=CaseSortableField("status"), sort_asc=True)
    assert keys(by_status) == ["SEC-1", "OPS-1", "SEC-2", "SEC-3", "OPS-2"]


def test_pages_are_one_based_and_carry_the_total(org: OrgClient, corpus: dict[str, str]) -> None:
    first = org.cases.search_cases(page_size=2, sort_asc=True)
    assert keys(first) == ["SEC-1", "SEC-2"]
    page = first.meta.page
    assert (page.current, page.size, page.total) == (1, 2, 5)
    third = org.cases.search_cases(page_size=2, page_number=3, sort_asc=True)
    assert keys(third) == ["OPS-2"]
    assert third.meta.page.current == 3
    assert org.cases.search_cases(page_size=2, page_number=4).data == []
    default = org.cases.search_cases()
    assert (default.meta.page.current, default.meta.page.size) == (1, 10)


def test_paginated_iteration_visits_every_case_once(org: OrgClient) -> None:
    project = make_project(org, "MANY")
    for n in range(7):
        make_case(org, project.id, f"case {n}")
    seen = [c.attributes.key for c in org.cases.search_cases_with_pagination(page_size=2, sort_asc=True)]
    assert seen == [f"MANY-{n}" for n in range(1, 8)]
    closed = list(org.cases.search_cases_with_pagination(page_size=2, filter="status:closed"))
    assert closed == []


def test_search_is_scoped_to_the_org(org: OrgClient, other_org: OrgClient, corpus: dict[str, str]) -> None:
    make_case(other_org, make_project(other_org, "SEC").id, "Disk full elsewhere")
    assert search_keys(other_org, "disk") == {"SEC-1"}
    assert len(org.cases.search_cases(filter="disk").data) == 2
    assert search_keys(other_org, "assignee:jane@example.com") == set()


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"page[size]": "0"}, "page[size] must be between 1 and 100"),
        ({"page[size]": "101"}, "page[size] must be between 1 and 100"),
        ({"page[size]": "ten"}, "page[size] must be an integer"),
        ({"page[number]": "0"}, "page[number] must be between 1"),
        ({"sort[field]": "title"}, "sort[field] must be one of created_at, priority, status"),
        ({"sort[asc]": "maybe"}, "sort[asc] must be true or false"),
        ({"filter": "status:(open"}, "position 12"),
        ({"filter": "disk AND"}, "position 8: expected a term"),
        ({"filter": "status:opened"}, "status:OPENED is not a status"),
        ({"filter": "archived:yes"}, "archived:true or archived:false"),
    ],
)
def test_bad_search_parameters_are_a_400(org: OrgClient, params: dict[str, str], fragment: str) -> None:
    response = org.http.get("/api/v2/cases", params=params)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["errors"][0]["detail"]


def test_bad_search_through_the_client_is_a_400(org: OrgClient) -> None:
    with pytest.raises(ApiException) as err:
        org.cases.search_cases(filter='title:"unterminated')
    assert err.value.status == 400
    assert "closing" in err.value.body["errors"][0]["detail"]


def groups(response) -> dict[str, dict[str, int]]:
    return {g.group: {v.value: v.count for v in g.group_values} for g in response.data.attributes.groups}


def test_count_cases_grouped_by_fields_and_attributes(org: OrgClient, corpus: dict[str, str]) -> None:
    counted = org.cases.count_cases(group_bys="status,priority,project,assignee,service,env")
    assert groups(counted) == {
        "status": {"OPEN": 2, "CLOSED": 2, "IN_PROGRESS": 1},
        "priority": {"NOT_DEFINED": 2, "P1": 1, "P2": 1, "P3": 1},
        "project": {corpus["sec"]: 3, corpus["ops"]: 2},
        "assignee": {corpus["jane"]: 1, org.user_id: 1},
        "service": {"web-store": 1, "Web-API": 1, "db": 1},
        "env": {"prod": 2},
    }
    assert counted.data.attributes.total == 5
    assert [v.value for v in counted.data.attributes.groups[0].group_values] == ["CLOSED", "OPEN", "IN_PROGRESS"]

    filtered = org.cases.count_cases(query_filter="project:SEC OR archived:true", group_bys="status", limit=1)
    assert groups(filtered) == {"status": {"OPEN": 2}}  # SEC-1 and the archived OPS-3
    assert filtered.data.attributes.total == 4
    assert org.cases.count_cases().data.attributes.groups == []


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"query_filter": "(disk"}, "query_filter: query syntax error at position 5"),
        ({"group_bys": "status,,priority"}, "comma-separated"),
        ({"limit": "0"}, "limit must be between 1"),
        ({"limit": "many"}, "limit must be an integer"),
    ],
)
def test_bad_count_parameters_are_a_400(org: OrgClient, params: dict[str, str], fragment: str) -> None:
    response = org.http.get("/api/v2/cases/count", params=params)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["errors"][0]["detail"]
