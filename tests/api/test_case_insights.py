"""Case insights through the official client: add_case_insights, remove_case_insights."""

from __future__ import annotations

import pytest
from datadog_api_client.exceptions import NotFoundException
from datadog_api_client.v2.model.case_insight import CaseInsight
from datadog_api_client.v2.model.case_insight_type import CaseInsightType
from datadog_api_client.v2.model.case_insights_attributes import CaseInsightsAttributes
from datadog_api_client.v2.model.case_insights_data import CaseInsightsData
from datadog_api_client.v2.model.case_insights_request import CaseInsightsRequest
from datadog_api_client.v2.model.case_resource_type import CaseResourceType

from tests.api.helpers import event_types, make_case, make_project, outbox
from tests.support.api_client import OrgClient


def insights_request(*items: tuple[str, str, str]) -> CaseInsightsRequest:
    return CaseInsightsRequest(
        data=CaseInsightsData(
            attributes=CaseInsightsAttributes(
                insights=[CaseInsight(type=CaseInsightType(t), resource_id=r, ref=ref) for t, r, ref in items]
            ),
            type=CaseResourceType.CASE,
        )
    )


def held(response) -> list[tuple[str, str, str]]:
    """The insights a CaseResponse says the case holds, as (type, resource_id, ref)."""
    return [(i["type"], i["resource_id"], i["ref"]) for i in response.data.attributes["insights"]]


MONITOR = ("MONITOR", "12345", "/monitors/12345?q=total")
SIGNAL = ("SECURITY_SIGNAL", "sig-9", "/security/signals/sig-9")
INCIDENT = ("INCIDENT", "42", "/incidents/42")


def test_add_and_remove_insights(org: OrgClient) -> None:
    case = make_case(org, make_project(org).id)
    other = make_case(org, make_project(org).id, "another case")
    before = len(outbox(org))

    added = org.cases.add_case_insights(case_id=case.id, body=insights_request(MONITOR, SIGNAL))
    assert added.data.id == case.id and added.data.attributes.title == case.attributes.title
    assert held(added) == [MONITOR, SIGNAL]
    # Adding again by key: the known one takes the new ref (in place), the new one is appended.
    repointed = ("MONITOR", "12345", "/monitors/12345?q=p99")
    again = org.cases.add_case_insights(case_id=case.attributes.key, body=insights_request(repointed, INCIDENT))
    assert held(again) == [repointed, SIGNAL, INCIDENT]
    unchanged = org.cases.add_case_insights(case_id=case.id, body=insights_request(INCIDENT))
    assert held(unchanged) == [repointed, SIGNAL, INCIDENT]

    # Removal goes by type and resource id; one not attached is skipped.
    removed = org.cases.remove_case_insights(
        case_id=case.id, body=insights_request(("MONITOR", "12345", "/anything"), ("WIDGET", "w-1", "/w/1"))
    )
    assert held(removed) == [SIGNAL, INCIDENT]
    assert held(org.cases.add_case_insights(case_id=other.id, body=insights_request(MONITOR))) == [MONITOR]

    events = [e for e in outbox(org)[before:] if e["caseid"] == case.id]
    assert event_types(events) == [
        "case.insight_added",
        "case.insight_added",
        "case.insight_updated",
        "case.insight_added",
        "case.insight_removed",
    ]
    assert events[2]["data"] == {
        "type": "MONITOR",
        "resource_id": "12345",
        "old_ref": MONITOR[2],
        "ref": repointed[2],
    }


@pytest.mark.parametrize(
    ("attributes", "fragment", "pointer"),
    [
        ({"insights": []}, "1 to 100 insights", "/data/attributes/insights"),
        ({"insights": [{"type": "TWEET", "resource_id": "1", "ref": "/x"}]}, "invalid value 'TWEET'", "/0/type"),
        ({"insights": [{"type": "MONITOR", "resource_id": "", "ref": "/x"}]}, "resource_id", "/0/resource_id"),
        ({"insights": [{"type": "MONITOR", "resource_id": "1"}]}, "ref must be", "/0/ref"),
        ({"insights": [{"type": "MONITOR", "resource_id": "1", "ref": "/x"}] * 101}, "1 to 100", "/insights"),
        ({}, "/data/attributes/insights is required", "/data/attributes/insights"),
    ],
)
def test_bad_insights_are_a_400_and_change_nothing(org: OrgClient, attributes: dict, fragment: str, pointer: str):
    case = make_case(org, make_project(org).id)
    body = {"data": {"type": "case", "attributes": attributes}}
    before = len(outbox(org))
    for method in ("PUT", "DELETE"):
        response = org.http.request(method, f"/api/v2/cases/{case.id}/insights", json=body)
        assert response.status_code == 400, response.text
        error = response.json()["errors"][0]
        assert fragment in error["detail"]
        assert error["source"]["pointer"].endswith(pointer)
    assert len(outbox(org)) == before
    wrong_type = {
        "data": {"type": "link", "attributes": {"insights": [{"type": "MONITOR", "resource_id": "12345", "ref": "/m"}]}}
    }
    response = org.http.put(f"/api/v2/cases/{case.id}/insights", json=wrong_type)
    assert response.status_code == 400 and "/data/type" in response.text
    assert org.http.put(f"/api/v2/cases/{case.id}/insights", json={}).status_code == 400


def test_another_orgs_cases_are_not_found(org: OrgClient, other_org: OrgClient) -> None:
    case = make_case(org, make_project(org).id)
    org.cases.add_case_insights(case_id=case.id, body=insights_request(MONITOR))
    before = len(outbox(org))
    for call in (other_org.cases.add_case_insights, other_org.cases.remove_case_insights):
        with pytest.raises(NotFoundException) as err:
            call(case_id=case.id, body=insights_request(MONITOR))
        assert case.id in str(err.value.body)
    assert len(outbox(org)) == before
    assert held(org.cases.add_case_insights(case_id=case.id, body=insights_request(MONITOR))) == [MONITOR]
