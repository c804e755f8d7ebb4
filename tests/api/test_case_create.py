from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from datadog_api_client.exceptions import NotFoundException

from casem.domain.cases import STANDARD_TYPE_ID
from tests.api.helpers import make_case, make_project
from tests.support.api_client import OrgClient


def test_create_and_get_case_by_id_and_key(org: OrgClient) -> None:
    project = make_project(org, "SEC")
    case = make_case(org, project.id, "Security breach investigation", priority="P2")
    assert case.attributes.key == "SEC-1"
    assert str(case.attributes.status) == "OPEN"
    assert str(case.attributes.status_group) == "SG_OPEN"
    assert str(case.attributes.priority) == "P2"
    assert str(case.attributes.type) == "STANDARD"
    assert case.attributes.type_id == STANDARD_TYPE_ID
    assert case.relationships.created_by.data.id == org.user_id
    assert case.relationships.project.data.id == project.id

    assert org.cases.get_case(case_id=case.id).data.attributes.title == "Security breach investigation"
    assert org.cases.get_case(case_id="SEC-1").data.id == case.id
    assert make_case(org, project.id).attributes.key == "SEC-2"


def test_unknown_project_is_a_404_and_allocates_nothing(org: OrgClient) -> None:
    project = make_project(org, "OPS")
    with pytest.raises(NotFoundException):
        make_case(org, "6f1e4c1e-0000-4000-8000-000000000000")
    assert make_case(org, project.id).attributes.key == "OPS-1"


def test_fifty_parallel_creates_get_fifty_consecutive_keys(org: OrgClient) -> None:
    project = make_project(org, "RACE")
    body = {
        "data": {
            "type": "case",
            "attributes": {"title": "parallel", "type_id": STANDARD_TYPE_ID},
            "relationships": {"project": {"data": {"id": project.id, "type": "project"}}},
        }
    }
    headers = dict(org.http.headers)

    def create(_: int) -> str:
        with httpx.Client(base_url=str(org.http.base_url), headers=headers, timeout=60) as client:
            response = client.post("/api/v2/cases", json=body)
            assert response.status_code == 201, response.text
            return response.json()["data"]["attributes"]["key"]

    with ThreadPoolExecutor(max_workers=50) as pool:
        keys = list(pool.map(create, range(50)))
    assert sorted(keys, key=lambda k: int(k.split("-")[1])) == [f"RACE-{n}" for n in range(1, 51)]
